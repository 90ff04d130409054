// The fake libcuda.so.1's cuGetProcAddress: the table is generated from the one list of entry
// points (src/abi/cuda_hooks.def + cuda_internal.def: base name, version introduced, _ptsz
// variant) and answered as the real driver does for a requested cudaVersion.
#include <string.h>

#include "abi/cuda_proc.h"
#include "fakegpu/fake_cuda_driver.h"

namespace hami::fakegpu::driver {
namespace {
struct ProcEntry {
  const char* base;
  int version;
  void* fn;
  bool ptsz;  // served instead of the same (base, version) entry for per-thread streams
};

#define HAMI_CU(name, params, args, base, since, role) \
  {#base, since, reinterpret_cast<void*>(&name), abi::CuRole::role == abi::CuRole::kPtsz},
const ProcEntry kProcTable[] = {
#include "abi/cuda_hooks.def"
#include "abi/cuda_internal.def"
};
#undef HAMI_CU

}  // namespace

CUresult GetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~static_cast<cuuint64_t>(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                                       CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  const ProcEntry* best = nullptr;
  bool known = false;
  for (const ProcEntry& e : kProcTable) {
    if (strcmp(e.base, symbol) != 0) continue;
    known = true;
    if (!e.ptsz && e.version <= version && (best == nullptr || e.version > best->version))
      best = &e;
  }
  *pfn = nullptr;
  if (best == nullptr) {
    if (status)
      *status =
          known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_ERROR_NOT_FOUND;
  }
  *pfn = best->fn;
  if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) {
    for (const ProcEntry& e : kProcTable)
      if (e.ptsz && e.version == best->version && strcmp(e.base, symbol) == 0) *pfn = e.fn;
  }
  if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

}  // namespace hami::fakegpu::driver
