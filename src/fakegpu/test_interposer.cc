// Preloaded by the fakegpu_InternalCallsIgnoreInterposers test: driver symbols that must
// never be reached through the fake driver's own internal calls.
#include <stdio.h>
#include <stdlib.h>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"

#define TRAP(name)                                                              \
  fprintf(stderr, "interposed %s reached from inside the fake driver\n", name); \
  abort()

extern "C" {
__attribute__((visibility("default"))) CUresult cuMemAllocAsync(CUdeviceptr*, size_t, CUstream) {
  TRAP("cuMemAllocAsync");
}
__attribute__((visibility("default"))) CUresult cuMemFree_v2(CUdeviceptr) { TRAP("cuMemFree_v2"); }
__attribute__((visibility("default"))) CUresult cuMemAlloc_v2(CUdeviceptr*, size_t) {
  TRAP("cuMemAlloc_v2");
}
__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetCount_v2(unsigned*) {
  TRAP("nvmlDeviceGetCount_v2");
}
}
