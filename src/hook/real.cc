#include "real.h"

#include <dlfcn.h>
#include <pthread.h>

#include "log.h"

namespace hami::vgpu {

RealCuda g_cuda;
RealNvml g_nvml;

namespace {
void* g_cuda_handle = nullptr;
bool g_cuda_ok = false;
bool g_nvml_ok = false;
pthread_once_t g_cuda_once = PTHREAD_ONCE_INIT;
pthread_once_t g_nvml_once = PTHREAD_ONCE_INIT;

void LoadCudaOnce() {
  DlsymFn sym = RealDlsym();
  g_cuda_handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!g_cuda_handle || !sym) {
    VGPU_LOG(kLogError, "cannot load libcuda.so.1: %s", dlerror());
    return;
  }
#define HAMI_CU(name, params, args, ...) \
  g_cuda.name = reinterpret_cast<decltype(g_cuda.name)>(sym(g_cuda_handle, #name));
#include "abi/cuda_hooks.def"
#include "abi/cuda_internal.def"
#undef HAMI_CU
  g_cuda_ok = g_cuda.cuInit != nullptr;
}

void LoadNvmlOnce() {
  DlsymFn sym = RealDlsym();
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!h || !sym) {
    VGPU_LOG(kLogDebug, "libnvidia-ml.so.1 not available: %s", dlerror());
    return;
  }
#define HAMI_NVML(name, params, args) \
  g_nvml.name = reinterpret_cast<decltype(g_nvml.name)>(sym(h, #name));
#include "abi/nvml_hooks.def"
#include "abi/nvml_internal.def"
#undef HAMI_NVML
  g_nvml_ok = g_nvml.nvmlInit_v2 != nullptr;
}

DlsymFn FindRealDlsym() {
  void* p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (!p) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  return reinterpret_cast<DlsymFn>(p);
}
}  // namespace

DlsymFn RealDlsym() {
  static DlsymFn fn = FindRealDlsym();
  return fn;
}

bool LoadRealCuda() {
  pthread_once(&g_cuda_once, LoadCudaOnce);
  return g_cuda_ok;
}

bool LoadRealNvml() {
  pthread_once(&g_nvml_once, LoadNvmlOnce);
  return g_nvml_ok;
}

void* CudaHandle() { return g_cuda_handle; }

}  // namespace hami::vgpu
