// Launch hooks: every kernel and graph launch path passes the compute limiter. Nothing here
// allocates or locks; with no limit in force the cost is one branch.
#include <stdint.h>

#include "compute.h"
#include "hooks.h"
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
inline CUresult Copy(CUstream stream, Call call, bool per_thread = false) {
  if (__builtin_expect(!g_compute_enabled, 1)) return call();
  if (per_thread && stream == nullptr)
    stream = reinterpret_cast<CUstream>(static_cast<uintptr_t>(2));  // CU_STREAM_PER_THREAD
  ComputeBeforeCopy(stream);
  return call();
}

}  // namespace

#define HAMI_COPY_HOOK(name, dst_t, src_t, per_thread)                             \
  CUresult Hook_##name(dst_t dst, src_t src, size_t n, CUstream stream) noexcept { \
    return Copy(                                                                   \
        stream, [&] { return g_cuda.name(dst, src, n, stream); }, per_thread);     \
  }
HAMI_COPY_HOOK(cuMemcpyAsync, CUdeviceptr, CUdeviceptr, false)
HAMI_COPY_HOOK(cuMemcpyAsync_ptsz, CUdeviceptr, CUdeviceptr, true)
HAMI_COPY_HOOK(cuMemcpyHtoDAsync_v2, CUdeviceptr, const void*, false)
HAMI_COPY_HOOK(cuMemcpyHtoDAsync_v2_ptsz, CUdeviceptr, const void*, true)
HAMI_COPY_HOOK(cuMemcpyDtoHAsync_v2, void*, CUdeviceptr, false)
HAMI_COPY_HOOK(cuMemcpyDtoHAsync_v2_ptsz, void*, CUdeviceptr, true)
HAMI_COPY_HOOK(cuMemcpyDtoDAsync_v2, CUdeviceptr, CUdeviceptr, false)
HAMI_COPY_HOOK(cuMemcpyDtoDAsync_v2_ptsz, CUdeviceptr, CUdeviceptr, true)
HAMI_COPY_HOOK(cuMemsetD8Async, CUdeviceptr, unsigned char, false)
HAMI_COPY_HOOK(cuMemsetD8Async_ptsz, CUdeviceptr, unsigned char, true)
HAMI_COPY_HOOK(cuMemsetD32Async, CUdeviceptr, unsigned int, false)
HAMI_COPY_HOOK(cuMemsetD32Async_ptsz, CUdeviceptr, unsigned int, true)

#define HAMI_COPY_ND_HOOK(name, param_t, per_thread)                    \
  CUresult Hook_##name(const param_t* copy, CUstream stream) noexcept { \
    return Copy(                                                        \
        stream, [&] { return g_cuda.name(copy, stream); }, per_thread); \
  }
HAMI_COPY_ND_HOOK(cuMemcpy2DAsync_v2, CUDA_MEMCPY2D, false)
HAMI_COPY_ND_HOOK(cuMemcpy2DAsync_v2_ptsz, CUDA_MEMCPY2D, true)
HAMI_COPY_ND_HOOK(cuMemcpy3DAsync_v2, CUDA_MEMCPY3D, false)
HAMI_COPY_ND_HOOK(cuMemcpy3DAsync_v2_ptsz, CUDA_MEMCPY3D, true)

HAMI_COPY_ND_HOOK(cuMemcpy3DPeerAsync, CUDA_MEMCPY3D_PEER, false)
HAMI_COPY_ND_HOOK(cuMemcpy3DPeerAsync_ptsz, CUDA_MEMCPY3D_PEER, true)
#undef HAMI_COPY_ND_HOOK

HAMI_COPY_HOOK(cuMemsetD16Async, CUdeviceptr, unsigned short, false)
HAMI_COPY_HOOK(cuMemsetD16Async_ptsz, CUdeviceptr, unsigned short, true)
#undef HAMI_COPY_HOOK

#define HAMI_MEMSET_2D_HOOK(name, value_t, per_thread)                                            \
  CUresult Hook_##name(CUdeviceptr dst, size_t pitch, value_t value, size_t width, size_t height, \
                       CUstream stream) noexcept {                                                \
    return Copy(                                                                                  \
        stream, [&] { return g_cuda.name(dst, pitch, value, width, height, stream); },            \
        per_thread);                                                                              \
  }
HAMI_MEMSET_2D_HOOK(cuMemsetD2D8Async, unsigned char, false)
HAMI_MEMSET_2D_HOOK(cuMemsetD2D8Async_ptsz, unsigned char, true)
HAMI_MEMSET_2D_HOOK(cuMemsetD2D16Async, unsigned short, false)
HAMI_MEMSET_2D_HOOK(cuMemsetD2D16Async_ptsz, unsigned short, true)
HAMI_MEMSET_2D_HOOK(cuMemsetD2D32Async, unsigned int, false)
HAMI_MEMSET_2D_HOOK(cuMemsetD2D32Async_ptsz, unsigned int, true)
#undef HAMI_MEMSET_2D_HOOK

#define HAMI_PEER_HOOK(name, per_thread)                                                       \
  CUresult Hook_##name(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, \
                       size_t bytes, CUstream stream) noexcept {                               \
    return Copy(                                                                               \
        stream, [&] { return g_cuda.name(dst, dst_ctx, src, src_ctx, bytes, stream); },        \
        per_thread);                                                                           \
  }
HAMI_PEER_HOOK(cuMemcpyPeerAsync, false)
HAMI_PEER_HOOK(cuMemcpyPeerAsync_ptsz, true)
#undef HAMI_PEER_HOOK

#define HAMI_ARRAY_HOOK(name, dst_t, src_t, per_thread)                                    \
  CUresult Hook_##name(dst_t dst, src_t src, size_t offset, size_t bytes,                  \
                       CUstream stream) noexcept {                                         \
    return Copy(                                                                           \
        stream, [&] { return g_cuda.name(dst, src, offset, bytes, stream); }, per_thread); \
  }
HAMI_ARRAY_HOOK(cuMemcpyAtoHAsync_v2, void*, CUarray, false)
HAMI_ARRAY_HOOK(cuMemcpyAtoHAsync_v2_ptsz, void*, CUarray, true)
#undef HAMI_ARRAY_HOOK

CUresult Hook_cuMemcpyHtoAAsync_v2(CUarray dst, size_t offset, const void* src, size_t bytes,
                                   CUstream stream) noexcept {
  return Copy(stream, [&] { return g_cuda.cuMemcpyHtoAAsync_v2(dst, offset, src, bytes, stream); });
}
CUresult Hook_cuMemcpyHtoAAsync_v2_ptsz(CUarray dst, size_t offset, const void* src, size_t bytes,
                                        CUstream stream) noexcept {
  return Copy(
      stream, [&] { return g_cuda.cuMemcpyHtoAAsync_v2_ptsz(dst, offset, src, bytes, stream); },
      true);
}

namespace {
template <typename Call>
inline CUresult Synchronized(Call call) {
  CUresult r = call();
  if (__builtin_expect(g_compute_enabled, 0)) ComputeAfterSync();
  return r;
}
}  // namespace

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
