// Run with LD_PRELOAD=libfakegpu_test_interposer.so: loads the fake driver with dlopen and
// checks that its internal calls and cuGetProcAddress answers stay inside it.
#include <dlfcn.h>
#include <stdio.h>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"

#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                  \
    }                                                            \
  } while (0)

template <typename F>
F Sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

int main() {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  CHECK(cuda != nullptr && nvml != nullptr);
  auto init = Sym<decltype(&cuInit)>(cuda, "cuInit");
  auto retain = Sym<decltype(&cuDevicePrimaryCtxRetain)>(cuda, "cuDevicePrimaryCtxRetain");
  auto set_current = Sym<decltype(&cuCtxSetCurrent)>(cuda, "cuCtxSetCurrent");
  auto alloc_async_ptsz = Sym<decltype(&cuMemAllocAsync_ptsz)>(cuda, "cuMemAllocAsync_ptsz");
  auto free_v1 = Sym<CUresult (*)(unsigned)>(cuda, "cuMemFree");
  auto alloc_v1 = Sym<decltype(&cuMemAlloc)>(cuda, "cuMemAlloc");
  auto gpa = Sym<decltype(&cuGetProcAddress_v2)>(cuda, "cuGetProcAddress_v2");
  CHECK(init(0) == CUDA_SUCCESS);
  CUcontext ctx;
  CHECK(retain(&ctx, 0) == CUDA_SUCCESS);
  CHECK(set_current(ctx) == CUDA_SUCCESS);
  CUdeviceptr p;
  CHECK(alloc_async_ptsz(&p, 1 << 20, nullptr) == CUDA_SUCCESS);
  unsigned p32;
  CHECK(alloc_v1(&p32, 4096) == CUDA_SUCCESS);
  CHECK(free_v1(p32) == CUDA_SUCCESS);
  void* fn = nullptr;
  CUdriverProcAddressQueryResult st;
  CHECK(gpa("cuMemAlloc", &fn, 12000, 0, &st) == CUDA_SUCCESS);
  CHECK(fn == dlsym(cuda, "cuMemAlloc_v2"));
  CHECK(fn != dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"));  // the interposer's
  auto nvml_init = Sym<decltype(&nvmlInit_v2)>(nvml, "nvmlInit_v2");
  auto count_v1 = Sym<decltype(&nvmlDeviceGetCount)>(nvml, "nvmlDeviceGetCount");
  unsigned n = 0;
  CHECK(nvml_init() == NVML_SUCCESS);
  CHECK(count_v1(&n) == NVML_SUCCESS && n == 2);
  printf("ok\n");
  return 0;
}
