// The real driver and NVML entry points, resolved once from libcuda.so.1 and
// libnvidia-ml.so.1 with the real dlsym (our exported dlsym would hand back our wrappers).
#pragma once

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"

namespace hami::vgpu {

struct RealCuda {
#define HAMI_CU(name, params, args, ...) CUresult(*name) params;
#include "abi/cuda_hooks.def"
#include "abi/cuda_internal.def"
#undef HAMI_CU
};

struct RealNvml {
#define HAMI_NVML(name, params, args) nvmlReturn_t(*name) params;
#include "abi/nvml_hooks.def"
#include "abi/nvml_internal.def"
#undef HAMI_NVML
};

using DlsymFn = void* (*)(void*, const char*);

extern RealCuda g_cuda;
extern RealNvml g_nvml;

// glibc's dlsym, found with dlvsym so our own export is skipped.
DlsymFn RealDlsym();
// Loads libcuda.so.1 and fills g_cuda (idempotent, thread-safe). False if the driver is
// missing, in which case every wrapper reports CUDA_ERROR_NOT_INITIALIZED.
bool LoadRealCuda();
// Same for NVML; false when libnvidia-ml.so.1 is missing.
bool LoadRealNvml();
// Handle of libcuda.so.1 (after LoadRealCuda).
void* CudaHandle();

}  // namespace hami::vgpu
