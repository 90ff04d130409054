// Context hooks: a context is charged what the driver reports it took (measured while the
// container's other processes are kept from creating contexts), primary contexts once per
// device, and a primary-context reset drops everything of that device (docs/accounting.md).
#include <unistd.h>

#include "compute.h"
#include "hooks.h"
#include "memory_internal.h"

namespace hami::vgpu {
namespace {

constexpr uint64_t kDefaultContextBytes = 256 * kMiB;  // when NVML cannot measure it
constexpr uint64_t kMaxContextBytes = 4096 * kMiB;

// Creates a context and charges what it took on the GPU (measured through NVML), refusing
// it when that does not fit the limit.
template <typename Create, typename Destroy>
CUresult ChargedContext(int ord, Create create, Destroy destroy, uint64_t* cost_out) {
  uint64_t before = 0, after = 0;
  // Exact when the driver's per-process figure is readable; else the device-wide change,
  // serialised against the container's other processes (other containers may still add
  // noise: docs/accounting.md).
  g_state.acct.LockCreation();
  uint64_t proc = 0;
  bool exact = ProcessUsed(ord, &proc);
  bool measured = exact || NvmlUsed(g_state.dev[ord].uuid, &before);
  // In a PID namespace of its own, this creation tells which host PID is ours.
  nvmlProcessInfo_t listed[kMaxProcs];
  unsigned nlisted = 0;
  bool learn = !exact && DriverPid() == 0 && DriverProcesses(ord, listed, &nlisted);
  CUresult r = create();
  if (r == CUDA_SUCCESS && learn) {
    nvmlProcessInfo_t now[kMaxProcs];
    unsigned nnow = 0;
    uint32_t pid = DriverProcesses(ord, now, &nnow) ? JoinedPid(listed, nlisted, now, nnow) : 0;
    if (pid) {
      LearnDriverPid(pid);
      VGPU_LOG(kLogInfo, "device %d: this process is PID %u to the driver", ord, pid);
      exact = true;
    }
  }
  if (r == CUDA_SUCCESS && exact) {
    exact = ProcessUsed(ord, &after);
    const DeviceState& d = g_state.dev[ord];
    uint64_t counted = d.entry >= 0 ? g_state.acct.MyUsed(d.entry) : 0;
    before = counted;
  } else if (r == CUDA_SUCCESS) {
    measured = measured && NvmlUsed(g_state.dev[ord].uuid, &after);
  }
  g_state.acct.UnlockCreation();
  if (r != CUDA_SUCCESS) return r;
  uint64_t cost = measured ? (after > before ? after - before : 0) : kDefaultContextBytes;
  if (cost > kMaxContextBytes) cost = kMaxContextBytes;
  if (!Reserve(ord, cost)) {
    destroy();
    VGPU_LOG(kLogError, "context on device %d needs %llu MiB, over the %llu MiB limit", ord,
             static_cast<unsigned long long>(cost >> 20),
             static_cast<unsigned long long>(g_state.dev[ord].limit >> 20));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *cost_out = cost;
  return CUDA_SUCCESS;
}

template <typename Create>
CUresult CreateContext(CUcontext* pctx, CUdevice dev, Create create) {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = OrdinalOf(dev);
  if (gate == Gate::kPassThrough || ord < 0) return create();
  uint64_t cost = 0;
  CUresult r = ChargedContext(
      ord, create, [&] { g_cuda.cuCtxDestroy_v2(*pctx); }, &cost);
  if (r == CUDA_SUCCESS) Book().Track(kContext, reinterpret_cast<uint64_t>(*pctx), ord, cost);
  return r;
}

// After a successful release of the primary context: the last release frees its memory.
void PrimaryReleased(CUdevice dev) {
  int ord = OrdinalOf(dev);
  if (!g_state.accounting || ord < 0) return;
  ChargeBook& b = Book();
  b.LockPrimary();
  if (b.PrimaryRefsLocked(ord) > 0 && --b.PrimaryRefsLocked(ord) == 0) {
    ReleaseDevice(ord);  // the context's memory goes with it
    Release(ord, b.PrimaryCostLocked(ord));
    b.PrimaryCostLocked(ord) = 0;
  }
  b.UnlockPrimary();
}

// After a successful reset: every allocation of the device is gone.
void PrimaryReset(CUdevice dev) {
  int ord = OrdinalOf(dev);
  if (!g_state.accounting || ord < 0) return;
  ChargeBook& b = Book();
  b.LockPrimary();
  ReleaseDevice(ord);
  Release(ord, b.PrimaryCostLocked(ord));
  b.PrimaryCostLocked(ord) = 0;
  b.PrimaryRefsLocked(ord) = 0;
  b.UnlockPrimary();
}

}  // namespace

void ReleaseDevice(int ord) {
  uint64_t total = Book().DropDevice(ord);
  total += TakeDriverOverhead(ord);
  Release(ord, total);
}

CUresult Hook_cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = OrdinalOf(dev);
  if (gate == Gate::kPassThrough || ord < 0) return g_cuda.cuDevicePrimaryCtxRetain(pctx, dev);
  // The driver keeps one primary context per device; charge it on the first retain.
  ChargeBook& b = Book();
  b.LockPrimary();
  CUresult r;
  if (b.PrimaryRefsLocked(ord) > 0) {
    r = g_cuda.cuDevicePrimaryCtxRetain(pctx, dev);
    if (r == CUDA_SUCCESS) b.PrimaryRefsLocked(ord)++;
  } else {
    uint64_t cost = 0;
    r = ChargedContext(
        ord, [&] { return g_cuda.cuDevicePrimaryCtxRetain(pctx, dev); },
        [&] { g_cuda.cuDevicePrimaryCtxRelease_v2(dev); }, &cost);
    if (r == CUDA_SUCCESS) {
      b.PrimaryRefsLocked(ord) = 1;
      b.PrimaryCostLocked(ord) = cost;
    }
  }
  b.UnlockPrimary();
  return r;
}

CUresult Hook_cuDevicePrimaryCtxRelease_v2(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxRelease_v2(dev);
  if (r == CUDA_SUCCESS) PrimaryReleased(dev);
  return r;
}

// The pre-11.0 variant the CUDA runtime may still ask cuGetProcAddress for.
CUresult Hook_cuDevicePrimaryCtxRelease(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxRelease(dev);
  if (r == CUDA_SUCCESS) PrimaryReleased(dev);
  return r;
}

CUresult Hook_cuDevicePrimaryCtxReset_v2(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxReset_v2(dev);
  if (r == CUDA_SUCCESS) PrimaryReset(dev);
  return r;
}

CUresult Hook_cuDevicePrimaryCtxReset(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxReset(dev);
  if (r == CUDA_SUCCESS) PrimaryReset(dev);
  return r;
}

CUresult Hook_cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) noexcept {
  return CreateContext(pctx, dev, [&] { return g_cuda.cuCtxCreate_v2(pctx, flags, dev); });
}

// The pre-3.2 variant (same parameters): without this hook cuGetProcAddress("cuCtxCreate",
// 2000) would hand out an uncharged way to create contexts.
CUresult Hook_cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) noexcept {
  return CreateContext(pctx, dev, [&] { return g_cuda.cuCtxCreate(pctx, flags, dev); });
}

CUresult Hook_cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int num,
                             unsigned int flags, CUdevice dev) noexcept {
  return CreateContext(pctx, dev,
                       [&] { return g_cuda.cuCtxCreate_v3(pctx, params, num, flags, dev); });
}

CUresult Hook_cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                             CUdevice dev) noexcept {
  return CreateContext(pctx, dev, [&] { return g_cuda.cuCtxCreate_v4(pctx, params, flags, dev); });
}

// A stack size (for every resident thread: 64 KiB on an H100 is about 17 GiB), printf FIFO or
// malloc heap is device memory the driver reserves at once, with no allocation call to hook.
// Measured like a context creation (what the driver holds for this process, else the device's
// use, around the call); over the limit the old value is put back and the call fails with
// CUDA_ERROR_OUT_OF_MEMORY. Lowering it gives back what raising it was charged.
CUresult Hook_cuCtxSetLimit(CUlimit limit, size_t value) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = CurrentOrdinal();
  if (gate == Gate::kPassThrough || ord < 0) return g_cuda.cuCtxSetLimit(limit, value);
  size_t old = 0;
  const bool restorable = g_cuda.cuCtxGetLimit(&old, limit) == CUDA_SUCCESS;
  const char* uuid = g_state.dev[ord].uuid;
  uint64_t before = 0, after = 0;
  g_state.acct.LockCreation();
  const bool exact = ProcessUsed(ord, &before);
  bool measured = exact || NvmlUsed(uuid, &before);
  CUresult r = g_cuda.cuCtxSetLimit(limit, value);
  if (r == CUDA_SUCCESS && measured)
    measured = exact ? ProcessUsed(ord, &after) : NvmlUsed(uuid, &after);
  g_state.acct.UnlockCreation();
  if (r != CUDA_SUCCESS || !measured) return r;
  if (after > before) {
    if (!Reserve(ord, after - before)) {
      if (restorable) g_cuda.cuCtxSetLimit(limit, old);
      VGPU_LOG(kLogError,
               "cuCtxSetLimit(%d, %zu) on device %d takes %llu MiB, over the %llu MiB limit", limit,
               value, ord, static_cast<unsigned long long>((after - before) >> 20),
               static_cast<unsigned long long>(g_state.dev[ord].limit >> 20));
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    AddDriverOverhead(ord, after - before);
  } else if (before > after) {
    ReturnDriverOverhead(ord, before - after);
  }
  return r;
}

CUresult Hook_cuCtxDestroy_v2(CUcontext ctx) noexcept {
  if (__builtin_expect(g_compute_enabled, 0)) ComputeContextGone(ctx);
  if (!g_state.accounting) return g_cuda.cuCtxDestroy_v2(ctx);
  return Uncharged(kContext, reinterpret_cast<uint64_t>(ctx), [](uint64_t k) {
    return g_cuda.cuCtxDestroy_v2(reinterpret_cast<CUcontext>(k));
  });
}

CUresult Hook_cuCtxDestroy(CUcontext ctx) noexcept {
  if (__builtin_expect(g_compute_enabled, 0)) ComputeContextGone(ctx);
  if (!g_state.accounting) return g_cuda.cuCtxDestroy(ctx);
  return Uncharged(kContext, reinterpret_cast<uint64_t>(ctx),
                   [](uint64_t k) { return g_cuda.cuCtxDestroy(reinterpret_cast<CUcontext>(k)); });
}

}  // namespace hami::vgpu
