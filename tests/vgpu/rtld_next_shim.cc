// Another interposer preloaded after libvgpu.so: it wraps an entry point libvgpu does not
// hook and finds the real one with dlsym(RTLD_NEXT). If libvgpu's dlsym broke RTLD_NEXT
// (glibc resolving "next" relative to libvgpu instead of this library), the lookup would
// return this very function and recurse forever.
#include <dlfcn.h>

#include "abi/cuda_abi.h"

extern "C" __attribute__((visibility("default"))) CUresult cuDeviceGetCount(int* count) {
  using Fn = CUresult (*)(int*);
  static Fn next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "cuDeviceGetCount"));
  if (!next || next == &cuDeviceGetCount) return CUDA_ERROR_NOT_FOUND;
  CUresult r = next(count);
  if (r == CUDA_SUCCESS) *count += 100;  // proves the shim ran and reached the driver
  return r;
}
