#include <cstddef>

#include <cuda.h>
#include "abi/layout.h"

namespace hami::abi {
Layout ToolkitLayout() {
  return Layout{
      sizeof(CUDA_ARRAY_DESCRIPTOR),
      offsetof(CUDA_ARRAY_DESCRIPTOR, Format),
      offsetof(CUDA_ARRAY_DESCRIPTOR, NumChannels),
      sizeof(CUDA_ARRAY3D_DESCRIPTOR),
      offsetof(CUDA_ARRAY3D_DESCRIPTOR, Flags),
      sizeof(CUmemAllocationProp),
      offsetof(CUmemAllocationProp, location),
      offsetof(CUmemAllocationProp, allocFlags),
      sizeof(CUlaunchConfig),
      offsetof(CUlaunchConfig, hStream),
      offsetof(CUlaunchConfig, attrs),
      sizeof(CUuuid),
      {CUDA_ERROR_OUT_OF_MEMORY, CUDA_ERROR_INVALID_DEVICE, CUDA_ERROR_NOT_SUPPORTED,
       CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, CU_MEMPOOL_ATTR_USED_MEM_CURRENT,
       CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, CU_MEM_LOCATION_TYPE_DEVICE, CU_AD_FORMAT_FLOAT,
       CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, CU_STREAM_CAPTURE_STATUS_ACTIVE,
       CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, CU_MEM_ALLOCATION_TYPE_PINNED}};
}
}  // namespace hami::abi
