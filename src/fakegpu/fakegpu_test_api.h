// Test-only entry points exported by the fake libcuda.so.1 (src/fakegpu). A real driver has
// none of them: tests reach them by linking the fake or through dlsym. They model kernels
// (fixed run time) and graphs so the compute limiter can be tested without a GPU.
#pragma once

#include <stdint.h>

#include "abi/cuda_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

// A kernel that occupies the whole device for duration_ns per launch, whatever the grid.
// Errors: CUDA_ERROR_INVALID_VALUE (f is NULL).
CUresult fakegpuKernelCreate(CUfunction* f, uint64_t duration_ns);
// Errors: CUDA_ERROR_INVALID_HANDLE (unknown f).
CUresult fakegpuKernelDestroy(CUfunction f);
// An executable graph of `count` launches of f; cuGraphLaunch runs them back to back.
// Errors: CUDA_ERROR_INVALID_VALUE (g NULL), CUDA_ERROR_INVALID_HANDLE (unknown f).
CUresult fakegpuGraphCreate(CUgraphExec* g, CUfunction f, unsigned count);
CUresult fakegpuGraphDestroy(CUgraphExec g);
// Kernel time ever scheduled on device `dev` (CUDA ordinal) by all processes of the state
// file, in ns, including work queued but not yet finished.
// Errors: CUDA_ERROR_NOT_INITIALIZED, CUDA_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_VALUE.
CUresult fakegpuDeviceBusyNs(CUdevice dev, uint64_t* busy_ns);
// Context switches on device `dev` so far: kernels scheduled right after another process's
// kernel. With FAKEGPU_CONTEXT_SWITCH_US=N each costs N us of device time (default 0).
// Errors as fakegpuDeviceBusyNs.
CUresult fakegpuDeviceContextSwitches(CUdevice dev, uint64_t* switches);
// Bytes charged on device `dev` by this process and by all live processes.
// Either pointer may be NULL. Errors as fakegpuDeviceBusyNs.
CUresult fakegpuMemUsage(CUdevice dev, uint64_t* process_bytes, uint64_t* device_bytes);

#ifdef __cplusplus
}
#endif
