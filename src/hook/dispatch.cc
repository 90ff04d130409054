// The exported surface of libvgpu.so, generated from the .def lists: one wrapper per hooked
// entry point, the name -> wrapper table used by dlsym, and the real-pointer -> wrapper map
// used by cuGetProcAddress (the driver resolves the version and per-thread-stream variant;
// we hand back the wrapper of exactly the variant it chose).
#include <dlfcn.h>
#include <string.h>

#include "abi/cuda_proc.h"
#include "compute.h"
#include "hooks.h"
#include "log.h"
#include "real.h"
#include "state.h"

#define HAMI_EXPORT extern "C" __attribute__((visibility("default")))
#define HAMI_HIDDEN extern "C" __attribute__((visibility("hidden")))

// Hidden wrappers (their addresses never resolve to another library's symbol), each
// exported under the driver's name through an alias.
#define HAMI_CU(name, params, args, ...)                                   \
  HAMI_HIDDEN CUresult hami_w_##name params noexcept {                     \
    if (__builtin_expect(hami::vgpu::g_cuda.name == nullptr, 0)) {         \
      if (!hami::vgpu::LoadRealCuda()) return CUDA_ERROR_NOT_INITIALIZED;  \
      if (hami::vgpu::g_cuda.name == nullptr) return CUDA_ERROR_NOT_FOUND; \
    }                                                                      \
    return hami::vgpu::Hook_##name args;                                   \
  }                                                                        \
  HAMI_EXPORT CUresult name params noexcept __attribute__((alias("hami_w_" #name)));
#include "abi/cuda_hooks.def"
#undef HAMI_CU

#define HAMI_NVML(name, params, args)                                               \
  HAMI_HIDDEN nvmlReturn_t hami_w_##name params noexcept {                          \
    if (__builtin_expect(hami::vgpu::g_nvml.name == nullptr, 0)) {                  \
      if (!hami::vgpu::LoadRealNvml()) return NVML_ERROR_LIBRARY_NOT_FOUND;         \
      if (hami::vgpu::g_nvml.name == nullptr) return NVML_ERROR_FUNCTION_NOT_FOUND; \
    }                                                                               \
    return hami::vgpu::Hook_##name args;                                            \
  }                                                                                 \
  HAMI_EXPORT nvmlReturn_t name params noexcept __attribute__((alias("hami_w_" #name)));
#include "abi/nvml_hooks.def"
#undef HAMI_NVML

namespace hami::vgpu {
namespace {

struct Entry {
  const char* name;
  void* wrapper;
  void** real;
  bool cuda;
};

const Entry kEntries[] = {
#define HAMI_CU(name, params, args, ...) \
  {#name, reinterpret_cast<void*>(&hami_w_##name), reinterpret_cast<void**>(&g_cuda.name), true},
#include "abi/cuda_hooks.def"
#undef HAMI_CU
#define HAMI_NVML(name, params, args) \
  {#name, reinterpret_cast<void*>(&hami_w_##name), reinterpret_cast<void**>(&g_nvml.name), false},
#include "abi/nvml_hooks.def"
#undef HAMI_NVML
};

// Wrapper for a hooked name whose real counterpart exists, else nullptr.
void* WrapperByName(const char* symbol) {
  if (!((symbol[0] == 'c' && symbol[1] == 'u') || strncmp(symbol, "nvml", 4) == 0)) return nullptr;
  for (const Entry& e : kEntries) {
    if (strcmp(e.name, symbol) != 0) continue;
    bool loaded = e.cuda ? LoadRealCuda() : LoadRealNvml();
    return loaded && *e.real ? e.wrapper : nullptr;
  }
  return nullptr;
}

void MapProcAddress(const char* symbol, void** pfn) {
  for (const Entry& e : kEntries) {
    if (e.cuda && *e.real && *e.real == *pfn) {
      *pfn = e.wrapper;
      return;
    }
  }
  // A limit-relevant name answered with a variant we do not know (a newer _vN): the limits
  // could be bypassed, so say so.
  if (symbol && abi::MustBeHooked(symbol)) {
    VGPU_LOG(kLogWarn,
             "cuGetProcAddress(%s) returned an entry point libvgpu does not know; "
             "it is not intercepted",
             symbol);
  }
}

}  // namespace

CUresult Hook_cuInit(unsigned int flags) noexcept {
  if (!EnsureConfig()) return CUDA_ERROR_NOT_INITIALIZED;  // fail closed on bad limits
  CUresult r = g_cuda.cuInit(flags);
  if (r != CUDA_SUCCESS) return r;
  if (!EnsureCudaDevices()) return CUDA_ERROR_NOT_INITIALIZED;
  static bool compute_ready = false;
  if (!__atomic_exchange_n(&compute_ready, true, __ATOMIC_ACQ_REL)) ComputeInit();
  return r;
}

CUresult Hook_cuGetProcAddress(const char* symbol, void** pfn, int version,
                               cuuint64_t flags) noexcept {
  CUresult r = g_cuda.cuGetProcAddress(symbol, pfn, version, flags);
  if (r == CUDA_SUCCESS && pfn && *pfn) MapProcAddress(symbol, pfn);
  return r;
}

CUresult Hook_cuGetProcAddress_v2(const char* symbol, void** pfn, int version, cuuint64_t flags,
                                  CUdriverProcAddressQueryResult* status) noexcept {
  CUresult r = g_cuda.cuGetProcAddress_v2(symbol, pfn, version, flags, status);
  if (r == CUDA_SUCCESS && pfn && *pfn) MapProcAddress(symbol, pfn);
  return r;
}

}  // namespace hami::vgpu

// dlsym is interposed so that code which dlopen()s libcuda.so.1 or libnvidia-ml.so.1 and
// looks entry points up by name gets the wrappers. Everything else goes to glibc's dlsym as
// a tail call, so glibc still sees the original caller's return address and RTLD_NEXT keeps
// meaning "next after the caller" for other interposers.
HAMI_EXPORT void* dlsym(void* handle, const char* symbol) {
  const char* name = symbol;
  asm("" : "+r"(name));  // glibc declares symbol nonnull; callers still pass NULL
  if (name) {
    void* w = hami::vgpu::WrapperByName(name);
    if (w) return w;
  }
  return hami::vgpu::RealDlsym()(handle, symbol);
}
