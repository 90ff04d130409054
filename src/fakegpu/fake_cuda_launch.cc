// The fake libcuda.so.1's launches, streams and events on the device timeline, and the test
// API of fakegpu_test_api.h (see fake_cuda_driver.h).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakegpu/fake_cuda_driver.h"

using namespace hami::fakegpu;          // NOLINT: the C entry points below are thin
using namespace hami::fakegpu::driver;  // NOLINT

extern "C" {

// ---- launches ----

// Asynchronous copies and memsets (no data moves: only their time on the stream).
CUresult cuMemcpyAsync(CUdeviceptr, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyAsync_ptsz(CUdeviceptr, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void*, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr, const void*, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyDtoHAsync_v2(void*, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyDtoHAsync_v2_ptsz(void*, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr, CUdeviceptr, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemsetD8Async(CUdeviceptr, unsigned char, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemsetD8Async_ptsz(CUdeviceptr, unsigned char, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemsetD32Async(CUdeviceptr, unsigned int, size_t n, CUstream s) {
  return CopyAsyncCommon(4 * static_cast<uint64_t>(n), s);
}
CUresult cuMemsetD32Async_ptsz(CUdeviceptr, unsigned int, size_t n, CUstream s) {
  return CopyAsyncCommon(4 * static_cast<uint64_t>(n), s);
}

CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* p, CUstream s) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return CopyAsyncCommon(static_cast<uint64_t>(p->WidthInBytes) * p->Height, s);
}
CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* p, CUstream s) {
  return cuMemcpy2DAsync_v2(p, s);
}
CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D* p, CUstream s) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return CopyAsyncCommon(static_cast<uint64_t>(p->WidthInBytes) * p->Height * p->Depth, s);
}
CUresult cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D* p, CUstream s) {
  return cuMemcpy3DAsync_v2(p, s);
}
CUresult cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER* p, CUstream s) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return CopyAsyncCommon(static_cast<uint64_t>(p->WidthInBytes) * p->Height * p->Depth, s);
}
CUresult cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER* p, CUstream s) {
  return cuMemcpy3DPeerAsync(p, s);
}
CUresult cuMemcpyPeerAsync(CUdeviceptr, CUcontext, CUdeviceptr, CUcontext, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr d, CUcontext dc, CUdeviceptr src, CUcontext sc,
                                size_t n, CUstream s) {
  return cuMemcpyPeerAsync(d, dc, src, sc, n, s);
}
CUresult cuMemcpyHtoAAsync_v2(CUarray, size_t, const void*, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyHtoAAsync_v2_ptsz(CUarray a, size_t o, const void* h, size_t n, CUstream s) {
  return cuMemcpyHtoAAsync_v2(a, o, h, n, s);
}
CUresult cuMemcpyAtoHAsync_v2(void*, CUarray, size_t, size_t n, CUstream s) {
  return CopyAsyncCommon(n, s);
}
CUresult cuMemcpyAtoHAsync_v2_ptsz(void* h, CUarray a, size_t o, size_t n, CUstream s) {
  return cuMemcpyAtoHAsync_v2(h, a, o, n, s);
}
CUresult cuMemsetD16Async(CUdeviceptr, unsigned short, size_t n, CUstream s) {
  return CopyAsyncCommon(2 * static_cast<uint64_t>(n), s);
}
CUresult cuMemsetD16Async_ptsz(CUdeviceptr d, unsigned short v, size_t n, CUstream s) {
  return cuMemsetD16Async(d, v, n, s);
}
// 2D memsets: `width` elements of 1, 2 or 4 bytes in each of `height` rows.
CUresult cuMemsetD2D8Async(CUdeviceptr, size_t, unsigned char, size_t w, size_t h, CUstream s) {
  return CopyAsyncCommon(static_cast<uint64_t>(w) * h, s);
}
CUresult cuMemsetD2D16Async(CUdeviceptr, size_t, unsigned short, size_t w, size_t h, CUstream s) {
  return CopyAsyncCommon(2 * static_cast<uint64_t>(w) * h, s);
}
CUresult cuMemsetD2D32Async(CUdeviceptr, size_t, unsigned int, size_t w, size_t h, CUstream s) {
  return CopyAsyncCommon(4 * static_cast<uint64_t>(w) * h, s);
}
CUresult cuMemsetD2D8Async_ptsz(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h,
                                CUstream s) {
  return cuMemsetD2D8Async(d, p, v, w, h, s);
}
CUresult cuMemsetD2D16Async_ptsz(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h,
                                 CUstream s) {
  return cuMemsetD2D16Async(d, p, v, w, h, s);
}
CUresult cuMemsetD2D32Async_ptsz(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h,
                                 CUstream s) {
  return cuMemsetD2D32Async(d, p, v, w, h, s);
}

// The deprecated launches: the block shape (cuFuncSetBlockShape) does not change a fake
// kernel's duration.
CUresult cuLaunch(CUfunction f) { return LaunchCommon(f, 1, 1, 1, 1, 1, 1, nullptr); }
CUresult cuLaunchGrid(CUfunction f, int w, int h) {
  if (w <= 0 || h <= 0) return CUDA_ERROR_INVALID_VALUE;
  return LaunchCommon(f, static_cast<unsigned>(w), static_cast<unsigned>(h), 1, 1, 1, 1, nullptr);
}
CUresult cuLaunchGridAsync(CUfunction f, int w, int h, CUstream stream) {
  if (w <= 0 || h <= 0) return CUDA_ERROR_INVALID_VALUE;
  return LaunchCommon(f, static_cast<unsigned>(w), static_cast<unsigned>(h), 1, 1, 1, 1, stream);
}
CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS* list, unsigned int n,
                                              unsigned int) {
  if (list == nullptr || n == 0) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < n; ++i) {
    const CUDA_LAUNCH_PARAMS& p = list[i];
    CUresult r = LaunchCommon(p.function, p.gridDimX, p.gridDimY, p.gridDimZ, p.blockDimX,
                              p.blockDimY, p.blockDimZ, p.hStream);
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                        CUstream stream, void**, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                             unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                             CUstream stream, void**, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void**, void**) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return LaunchCommon(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                      config->blockDimY, config->blockDimZ, config->hStream);
}
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params,
                               void** extra) {
  return cuLaunchKernelEx(config, f, params, extra);
}
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                   unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                                   CUstream stream, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                        unsigned int gz, unsigned int bx, unsigned int by,
                                        unsigned int bz, unsigned int, CUstream stream, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  return GraphLaunchCommon(exec, stream);
}
CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream stream) {
  return GraphLaunchCommon(exec, stream);
}

// ---- streams and events ----

CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (stream == nullptr || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* s = new Stream{c, 0};
  D().streams.insert(s);
  *stream = reinterpret_cast<CUstream>(s);
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream stream) { return StreamDestroyCommon(stream); }
CUresult cuStreamDestroy(CUstream stream) { return StreamDestroyCommon(stream); }

CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  *status = CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
  uint64_t t;
  int phys;
  Stream* ss = nullptr;
  Ctx* cc = nullptr;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    Stream* s;
    Ctx* c;
    if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
    t = TailOf(s, c);
    phys = c->phys;
    ss = s;
    cc = c;
  }
  SleepUntil(t);
  Lock l(D().mu);
  CompletePendingFreesLocked([&](const PendingFree& f) { return f.stream == ss && f.ctx == cc; });
  TrimDeviceLocked(phys);
  return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize_ptsz(CUstream stream) { return cuStreamSynchronize(stream); }

CUresult cuStreamQuery(CUstream stream) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  return MonotonicNs() >= TailOf(s, c) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventCreate(CUevent* event, unsigned int flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (event == nullptr || (flags & ~0xFu)) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* e = new Event{flags, false, 0, c};
  D().events.insert(e);
  *event = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent event) { return EventDestroyCommon(event); }
CUresult cuEventDestroy(CUevent event) { return EventDestroyCommon(event); }

CUresult cuEventRecord(CUevent event, CUstream stream) {
  Lock l(D().mu);
  REQUIRE_INIT();
  auto* e = reinterpret_cast<Event*>(event);
  if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  // The device processes an event in order with kernels: after the stream's previous work,
  // and, on an idle stream, not before the device (busy with other work, possibly of other
  // processes) would get to it. So start/end events around a launch time the kernel itself.
  uint64_t now = MonotonicNs(), tail = TailOf(s, c);
  e->t = tail > now ? tail
                    : std::max(now, D().state->StartBound(c->phys, D().owner, D().stream_overlap));
  e->recorded = true;
  return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent event) {
  Lock l(D().mu);
  REQUIRE_INIT();
  auto* e = reinterpret_cast<Event*>(event);
  if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  return !e->recorded || MonotonicNs() >= e->t ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventSynchronize(CUevent event) {
  uint64_t t;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    auto* e = reinterpret_cast<Event*>(event);
    if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
    t = e->recorded ? e->t : 0;
  }
  SleepUntil(t);
  Lock l(D().mu);
  CompletePendingFreesLocked([](const PendingFree&) { return true; });
  return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto* a = reinterpret_cast<Event*>(start);
  auto* b = reinterpret_cast<Event*>(end);
  if (!D().events.count(a) || !D().events.count(b)) return CUDA_ERROR_INVALID_HANDLE;
  constexpr unsigned kDisableTiming = 0x2;
  if (!a->recorded || !b->recorded || ((a->flags | b->flags) & kDisableTiming))
    return CUDA_ERROR_INVALID_HANDLE;
  uint64_t now = MonotonicNs();
  if (now < a->t || now < b->t) return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>((static_cast<double>(b->t) - static_cast<double>(a->t)) / 1e6);
  return CUDA_SUCCESS;
}

// ---- test API ----

CUresult fakegpuKernelCreate(CUfunction* f, uint64_t duration_ns) {
  if (f == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  auto* k = new Kernel{duration_ns, false};
  D().kernels.insert(k);
  *f = reinterpret_cast<CUfunction>(k);
  return CUDA_SUCCESS;
}

CUresult fakegpuKernelDestroy(CUfunction f) {
  Lock l(D().mu);
  auto* k = reinterpret_cast<Kernel*>(f);
  if (!D().kernels.count(k)) return CUDA_ERROR_INVALID_HANDLE;
  D().kernels.erase(k);
  delete k;
  return CUDA_SUCCESS;
}

CUresult fakegpuGraphCreate(CUgraphExec* g, CUfunction f, unsigned count) {
  if (g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  auto* k = reinterpret_cast<Kernel*>(f);
  if (!D().kernels.count(k)) return CUDA_ERROR_INVALID_HANDLE;
  auto* graph = new Graph{k, count};
  D().graphs.insert(graph);
  *g = reinterpret_cast<CUgraphExec>(graph);
  return CUDA_SUCCESS;
}

CUresult fakegpuGraphDestroy(CUgraphExec g) {
  Lock l(D().mu);
  auto* graph = reinterpret_cast<Graph*>(g);
  if (!D().graphs.count(graph)) return CUDA_ERROR_INVALID_VALUE;
  D().graphs.erase(graph);
  delete graph;
  return CUDA_SUCCESS;
}

CUresult fakegpuDeviceBusyNs(CUdevice dev, uint64_t* busy_ns) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (busy_ns == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *busy_ns = D().state->BusyNsTotal(phys);
  return CUDA_SUCCESS;
}

CUresult fakegpuDeviceContextSwitches(CUdevice dev, uint64_t* switches) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (switches == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *switches = D().state->ContextSwitches(phys);
  return CUDA_SUCCESS;
}

CUresult fakegpuMemUsage(CUdevice dev, uint64_t* process_bytes, uint64_t* device_bytes) {
  Lock l(D().mu);
  REQUIRE_INIT();
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  if (process_bytes) *process_bytes = D().state->OwnUsed(phys);
  if (device_bytes) *device_bytes = D().state->DeviceUsed(phys);
  return CUDA_SUCCESS;
}

}  // extern "C"
