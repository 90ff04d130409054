// Launch hooks: every kernel and graph launch path passes the compute limiter. Nothing here
// allocates or locks; with no limit in force the cost is one branch.
#include <stdint.h>

#include "abi/cuda_proc.h"
#include "compute.h"
#include "hooks.h"
#include "log.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {
namespace {

// Identity of "the same launch again" (function and shape, or graph), which the limiter
// uses to tell a kernel's own run time from time it spent behind another container's work.
inline uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}
inline uint64_t KernelSig(const void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                          unsigned by, unsigned bz, unsigned shmem) {
  uint64_t h = reinterpret_cast<uintptr_t>(f);
  h = Mix(h, (static_cast<uint64_t>(gx) << 32) | gy);
  h = Mix(h, (static_cast<uint64_t>(gz) << 32) | bx);
  h = Mix(h, (static_cast<uint64_t>(by) << 32) | bz);
  return Mix(h, shmem);
}

// The per-thread-stream entry points (per_thread) name the calling thread's default stream
// with a null handle; the limiter records its events there, so it must say so explicitly.
// `sig` is only evaluated when the limiter is on.
template <typename Sig, typename Call>
inline CUresult Launch(CUstream stream, LaunchKind kind, Sig sig, Call call,
                       bool per_thread = false) {
  if (__builtin_expect(!g_compute_enabled, 1)) return call();
  if (per_thread && stream == nullptr)
    stream = reinterpret_cast<CUstream>(static_cast<uintptr_t>(2));  // CU_STREAM_PER_THREAD
  ComputeBeforeLaunch(stream, kind, sig());
  CUresult r = call();
  ComputeAfterLaunch(stream, kind, r);
  return r;
}

inline uint64_t ExSig(const CUlaunchConfig* c, CUfunction f) {
  if (!c) return reinterpret_cast<uintptr_t>(f);
  return KernelSig(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY,
                   c->blockDimZ, c->sharedMemBytes);
}

// A deprecated launch's block shape was set beforehand (cuFuncSetBlockShape): the grid alone.
inline uint64_t GridSig(CUfunction f, int w, int h) {
  return KernelSig(f, static_cast<unsigned>(w), static_cast<unsigned>(h), 1, 0, 0, 0, 0);
}

inline void AfterGraph(CUresult r) {
  // Graph memory nodes allocate when the graph runs: charge what the driver reserved.
  if (r == CUDA_SUCCESS &&
      __builtin_expect(__atomic_load_n(&g_graph_memory_seen, __ATOMIC_RELAXED), 0))
    ReconcileGraphMemory(CurrentOrdinal());
}

}  // namespace

CUresult Hook_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned shmem, CUstream stream,
                             void** params, void** extra) noexcept {
  return Launch(
      stream, LaunchKind::kKernel, [&] { return KernelSig(f, gx, gy, gz, bx, by, bz, shmem); },
      [&] {
        return g_cuda.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra);
      });
}

CUresult Hook_cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                  unsigned by, unsigned bz, unsigned shmem, CUstream stream,
                                  void** params, void** extra) noexcept {
  return Launch(
      stream, LaunchKind::kKernel, [&] { return KernelSig(f, gx, gy, gz, bx, by, bz, shmem); },
      [&] {
        return g_cuda.cuLaunchKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra);
      },
      true);
}

CUresult Hook_cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params,
                               void** extra) noexcept {
  return Launch(
      config ? config->hStream : nullptr, LaunchKind::kKernel, [&] { return ExSig(config, f); },
      [&] { return g_cuda.cuLaunchKernelEx(config, f, params, extra); });
}

CUresult Hook_cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params,
                                    void** extra) noexcept {
  return Launch(
      config ? config->hStream : nullptr, LaunchKind::kKernel, [&] { return ExSig(config, f); },
      [&] { return g_cuda.cuLaunchKernelEx_ptsz(config, f, params, extra); }, true);
}

CUresult Hook_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                        unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                        CUstream stream, void** params) noexcept {
  return Launch(
      stream, LaunchKind::kCooperative, [&] { return KernelSig(f, gx, gy, gz, bx, by, bz, shmem); },
      [&] {
        return g_cuda.cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shmem, stream, params);
      });
}

CUresult Hook_cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                             unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                             CUstream stream, void** params) noexcept {
  return Launch(
      stream, LaunchKind::kCooperative, [&] { return KernelSig(f, gx, gy, gz, bx, by, bz, shmem); },
      [&] {
        return g_cuda.cuLaunchCooperativeKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, stream,
                                                     params);
      },
      true);
}

// The deprecated launches run on the legacy default stream (cuLaunch, cuLaunchGrid) or the
// one given.
CUresult Hook_cuLaunch(CUfunction f) noexcept {
  return Launch(
      nullptr, LaunchKind::kKernel, [&] { return GridSig(f, 1, 1); },
      [&] { return g_cuda.cuLaunch(f); });
}

CUresult Hook_cuLaunchGrid(CUfunction f, int w, int h) noexcept {
  return Launch(
      nullptr, LaunchKind::kKernel, [&] { return GridSig(f, w, h); },
      [&] { return g_cuda.cuLaunchGrid(f, w, h); });
}

CUresult Hook_cuLaunchGridAsync(CUfunction f, int w, int h, CUstream stream) noexcept {
  return Launch(
      stream, LaunchKind::kKernel, [&] { return GridSig(f, w, h); },
      [&] { return g_cuda.cuLaunchGridAsync(f, w, h, stream); });
}

// One cooperative launch over several devices at once (deprecated since CUDA 11.3): the
// limiter admits a launch in the calling thread's context, which this call does not have to
// be in, so with a compute limit or priority in force it is refused (the application can use
// cuLaunchCooperativeKernel per device) rather than run unlimited.
CUresult Hook_cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS* list, unsigned n,
                                                   unsigned flags) noexcept {
  if (__builtin_expect(!g_compute_enabled, 1))
    return g_cuda.cuLaunchCooperativeKernelMultiDevice(list, n, flags);
  VGPU_LOG(kLogWarn,
           "cuLaunchCooperativeKernelMultiDevice refused under a compute limit; launch with "
           "cuLaunchCooperativeKernel on each device");
  return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult Hook_cuGraphLaunch(CUgraphExec exec, CUstream stream) noexcept {
  CUresult r = Launch(
      stream, LaunchKind::kGraph, [&] { return Mix(reinterpret_cast<uintptr_t>(exec), 1); },
      [&] { return g_cuda.cuGraphLaunch(exec, stream); });
  AfterGraph(r);
  return r;
}

CUresult Hook_cuGraphLaunch_ptsz(CUgraphExec exec, CUstream stream) noexcept {
  CUresult r = Launch(
      stream, LaunchKind::kGraph, [&] { return Mix(reinterpret_cast<uintptr_t>(exec), 1); },
      [&] { return g_cuda.cuGraphLaunch_ptsz(exec, stream); }, true);
  AfterGraph(r);
  return r;
}

}  // namespace hami::vgpu

// Asynchronous copies and memsets: only pace mode holds them (ComputeBeforeCopy); and
// synchronisations, which pace mode counts as the application running (ComputeAfterSync).
namespace hami::vgpu {
namespace {

template <typename Call>
inline CUresult Copy(CUstream stream, Call call, bool per_thread) {
  if (__builtin_expect(!g_compute_enabled, 1)) return call();
  if (per_thread && stream == nullptr)
    stream = reinterpret_cast<CUstream>(static_cast<uintptr_t>(2));  // CU_STREAM_PER_THREAD
  ComputeBeforeCopy(stream);
  return call();
}

}  // namespace

// One hook per row of the copy list, each through the gate; the _ptsz forms name the
// per-thread default stream with a null stream.
#define HAMI_CU(name, params, args, base, since, role)                                      \
  CUresult Hook_##name params noexcept {                                                    \
    return Copy(                                                                            \
        stream, [&] { return g_cuda.name args; }, abi::CuRole::role == abi::CuRole::kPtsz); \
  }
#include "abi/cuda_copy_hooks.def"
#undef HAMI_CU

namespace {
template <typename Call>
inline CUresult Synchronized(Call call) {
  CUresult r = call();
  if (__builtin_expect(g_compute_enabled, 0)) ComputeAfterSync();
  return r;
}
}  // namespace

// The compute limiter forgets a destroyed stream (its table of streams would fill up with
// them: a server that takes a new stream per request).
CUresult Hook_cuStreamDestroy_v2(CUstream stream) noexcept {
  if (__builtin_expect(g_compute_enabled, 0)) ComputeStreamGone(stream);
  return g_cuda.cuStreamDestroy_v2(stream);
}
CUresult Hook_cuStreamDestroy(CUstream stream) noexcept {
  if (__builtin_expect(g_compute_enabled, 0)) ComputeStreamGone(stream);
  return g_cuda.cuStreamDestroy(stream);
}

CUresult Hook_cuCtxSynchronize() noexcept {
  return Synchronized([] { return g_cuda.cuCtxSynchronize(); });
}
CUresult Hook_cuStreamSynchronize(CUstream stream) noexcept {
  return Synchronized([&] { return g_cuda.cuStreamSynchronize(stream); });
}
CUresult Hook_cuStreamSynchronize_ptsz(CUstream stream) noexcept {
  return Synchronized([&] { return g_cuda.cuStreamSynchronize_ptsz(stream); });
}
CUresult Hook_cuEventSynchronize(CUevent event) noexcept {
  return Synchronized([&] { return g_cuda.cuEventSynchronize(event); });
}

}  // namespace hami::vgpu
