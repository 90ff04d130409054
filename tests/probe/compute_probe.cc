// Load generator for the compute-limiter tests: fake kernels of a fixed duration launched
// through any launch path, in a loop or as latency-measured "requests". Runs under
// libvgpu.so against the fake driver (src/fakegpu); prints key=value lines for the tests.
//
//   compute_probe loop     --kernel-us K --seconds S [--warmup-ms W] [--sync N]
//                          [--path kernel|ptsz|ex|ex_ptsz|coop|coop_ptsz|graph|launch|grid|
//                                  grid_async|multi_device]
//                          [--graph-count C] [--stream default|new] [--host-us H]
//                          [--launch-gap-us G] [--streams N] [--copy-kib B] [--copy-dims 1|2|3]
//                          [--copy-op copy|peer|peer3d|htoa|memset16|memset2d]
//                          [--batch-threads 1] [--contexts N] [--ctx-churn N]
//                          [--primary-restarts N] [--stream-churn 1] [--mix-us M]
//   compute_probe requests --kernel-us K --per-request R --gap-us G --seconds S [--warmup-ms W]
//                          [--request-sync N]
//
// loop: own GPU time (launches x kernel time) over wall time after the warm-up, iterations
// per second, and the share of wall time spent outside launch calls; --sync N synchronises after
// every N launches (1: launch-bound);
// --host-us H spins H us on the CPU after each synchronize (an application's own work);
// --launch-gap-us G spins G us before every launch (a framework's per-launch host work: with
// short kernels the GPU idles between them, the loop is launch-bound);
// --streams N launches round-robin on N new streams (with FAKEGPU_STREAM_OVERLAP=1 their
// kernels run concurrently) and synchronises the context;
// --copy-kib B queues an asynchronous B KiB host-to-device copy on a copy stream before every
// launch (input prefetch; on the fake a copy engine moves FAKEGPU_COPY_GBPS) and synchronises
// the context; --copy-dims 2 or 3 makes it a cuMemcpy2DAsync / cuMemcpy3DAsync of 1 KiB rows;
// --copy-op peer|peer3d|htoa|memset16|memset2d makes it a cuMemcpyPeerAsync,
// cuMemcpy3DPeerAsync, cuMemcpyHtoAAsync, cuMemsetD16Async or cuMemsetD2D32Async of B KiB;
// --batch-threads 1 runs each batch of --sync launches and its synchronise on a new thread that
// then exits (a server's short-lived worker threads);
// --contexts N first launches one kernel in each of N-1 new contexts, then runs the loop in
// another new one (a process with many contexts);
// --ctx-churn N first creates a context, launches one kernel in it, synchronises and destroys
// it, N times, then runs the loop in a context created after that;
// --primary-restarts N first releases the primary context (so that it is destroyed with
// everything in it), retains it again and launches one kernel in it, N times, then runs the
// loop in it;
// --stream-churn 1 runs each batch of --sync launches on a new stream, destroyed after the
// batch's synchronise (a server's stream per request);
// --mix-us M (path kernel) makes each launch, at random (a fixed sequence), a kernel of K or of
// M us: a training step's mix of short and long kernels.
// requests: R launches then a synchronize, then G us idle; latency percentiles
// (--request-sync N: a synchronise after every N launches of a request too, dependent steps).
// --phase-limits FILE:L1,L2,... (loop): before each phase writes CUDA_DEVICE_SM_LIMIT=Li into
// the limits file FILE (a new file renamed over it), then warms up and measures a window as
// above, printing phase=i limit=Li before the window's line: a running process's share
// changed by its limits file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "abi/cuda_api.h"
#include "fakegpu/fakegpu_test_api.h"

namespace {

#define CHECK(call)                                              \
  do {                                                           \
    CUresult r_ = (call);                                        \
    if (r_ != CUDA_SUCCESS) {                                    \
      printf("error=%d call=%s\n", static_cast<int>(r_), #call); \
      fflush(stdout);                                            \
      exit(3);                                                   \
    }                                                            \
  } while (0)

uint64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct Opts {
  std::string mode;
  uint64_t kernel_us = 1000;
  double seconds = 2;
  uint64_t warmup_ms = 300;
  int sync = 4;
  std::string path = "kernel";
  unsigned graph_count = 4;
  std::string stream = "default";
  int per_request = 4;
  uint64_t gap_us = 5000;
  uint64_t host_us = 0;
  uint64_t launch_gap_us = 0;
  int streams = 1;
  uint64_t copy_kib = 0;
  int copy_dims = 1;             // 1: cuMemcpyHtoDAsync_v2; 2, 3: the 2D / 3D asynchronous copy
  std::string copy_op = "copy";  // or peer, peer3d, htoa, memset16, memset2d
  bool batch_threads = false;
  int contexts = 1;
  int ctx_churn = 0;
  int primary_restarts = 0;
  bool stream_churn = false;
  uint64_t mix_us = 0;     // loop: half the launches, at random, run this long instead
  int request_sync = 0;    // requests: synchronise after every N launches too (0: at the end)
  std::string phase_file;  // loop: the limits file rewritten before each phase
  std::vector<int> phase_limits;
};

Opts Parse(int argc, char** argv) {
  Opts o;
  if (argc < 2) {
    fprintf(stderr, "usage: compute_probe loop|requests [options]\n");
    exit(2);
  }
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--kernel-us")
      o.kernel_us = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--seconds")
      o.seconds = atof(v.c_str());
    else if (k == "--warmup-ms")
      o.warmup_ms = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--sync")
      o.sync = atoi(v.c_str());
    else if (k == "--path")
      o.path = v;
    else if (k == "--graph-count")
      o.graph_count = static_cast<unsigned>(atoi(v.c_str()));
    else if (k == "--stream")
      o.stream = v;
    else if (k == "--per-request")
      o.per_request = atoi(v.c_str());
    else if (k == "--gap-us")
      o.gap_us = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--host-us")
      o.host_us = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--launch-gap-us")
      o.launch_gap_us = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--streams")
      o.streams = std::max(1, atoi(v.c_str()));
    else if (k == "--copy-kib")
      o.copy_kib = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--copy-dims" && (v == "1" || v == "2" || v == "3"))
      o.copy_dims = atoi(v.c_str());
    else if (k == "--copy-op" && (v == "copy" || v == "peer" || v == "peer3d" || v == "htoa" ||
                                  v == "memset16" || v == "memset2d"))
      o.copy_op = v;
    else if (k == "--batch-threads" && (v == "0" || v == "1"))
      o.batch_threads = v == "1";
    else if (k == "--contexts")
      o.contexts = std::max(1, atoi(v.c_str()));
    else if (k == "--ctx-churn")
      o.ctx_churn = atoi(v.c_str());
    else if (k == "--primary-restarts")
      o.primary_restarts = atoi(v.c_str());
    else if (k == "--mix-us")
      o.mix_us = strtoull(v.c_str(), nullptr, 10);
    else if (k == "--request-sync")
      o.request_sync = atoi(v.c_str());
    else if (k == "--phase-limits") {
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) {
        fprintf(stderr, "--phase-limits wants FILE:L1,L2,...\n");
        exit(2);
      }
      o.phase_file = v.substr(0, colon);
      for (size_t at = colon + 1; at <= v.size();) {
        size_t comma = v.find(',', at);
        o.phase_limits.push_back(atoi(v.substr(at, comma - at).c_str()));
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (k == "--stream-churn" && (v == "0" || v == "1"))
      o.stream_churn = v == "1";
    else {
      fprintf(stderr, "unknown option %s\n", k.c_str());
      exit(2);
    }
  }
  return o;
}

// --phase-limits: the whole limits file, replaced at once (a reader never sees half of it).
void WriteLimits(const std::string& path, int limit) {
  std::string tmp = path + ".new";
  FILE* f = fopen(tmp.c_str(), "w");
  if (!f || fchmod(fileno(f), 0644) != 0 ||  // never group-writable: it would be refused
      fprintf(f, "CUDA_DEVICE_SM_LIMIT=%d\n", limit) < 0 || fclose(f) != 0 ||
      rename(tmp.c_str(), path.c_str()) != 0) {
    fprintf(stderr, "cannot write %s\n", path.c_str());
    exit(1);
  }
}

CUfunction g_fn, g_fn_mix;
CUgraphExec g_graph;
CUstream g_stream = nullptr;
std::vector<CUstream> g_streams;   // --streams N > 1
CUstream g_copy_stream = nullptr;  // --copy-kib
CUdeviceptr g_copy_dst = 0;
CUcontext g_ctx = nullptr;

void Spin(uint64_t us) {
  uint64_t until = Now() + us * 1000;
  while (Now() < until) {
  }
}

// The --copy-kib copy before a launch: one asynchronous host-to-device copy of B KiB, flat or
// as 1 KiB rows (2D), or as 1 KiB rows in slices of 16 (3D).
void CopyOnce(const Opts& o, const void* host_src) {
  const size_t row = 1024, rows = o.copy_kib;
  auto host_to_device_rows = [&](auto* c, size_t height) {  // the fields 2D and 3D share
    c->srcMemoryType = CU_MEMORYTYPE_HOST;
    c->srcHost = host_src;
    c->dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c->dstDevice = g_copy_dst;
    c->dstPitch = row;
    c->WidthInBytes = row;
    c->Height = height;
  };
  const size_t bytes = o.copy_kib << 10;
  if (o.copy_op == "peer") {
    CHECK(cuMemcpyPeerAsync(g_copy_dst, g_ctx, g_copy_dst, g_ctx, bytes, g_copy_stream));
  } else if (o.copy_op == "peer3d") {
    CUDA_MEMCPY3D_PEER c = {};
    c.srcMemoryType = c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = c.dstDevice = g_copy_dst;
    c.srcContext = c.dstContext = g_ctx;
    c.srcPitch = c.dstPitch = row;
    c.srcHeight = c.dstHeight = 16;
    c.WidthInBytes = row;
    c.Height = 16;
    c.Depth = rows / 16;
    CHECK(cuMemcpy3DPeerAsync(&c, g_copy_stream));
  } else if (o.copy_op == "htoa") {  // the fake keeps no arrays: only the copy's time counts
    CHECK(cuMemcpyHtoAAsync_v2(nullptr, 0, host_src, bytes, g_copy_stream));
  } else if (o.copy_op == "memset16") {
    CHECK(cuMemsetD16Async(g_copy_dst, 0, bytes / 2, g_copy_stream));
  } else if (o.copy_op == "memset2d") {  // 1 KiB rows of 32-bit values
    CHECK(cuMemsetD2D32Async(g_copy_dst, row, 0, row / 4, rows, g_copy_stream));
  } else if (o.copy_dims == 2) {
    CUDA_MEMCPY2D c = {};
    host_to_device_rows(&c, rows);
    CHECK(cuMemcpy2DAsync_v2(&c, g_copy_stream));
  } else if (o.copy_dims == 3) {
    CUDA_MEMCPY3D c = {};
    host_to_device_rows(&c, 16);
    c.dstHeight = 16;
    c.Depth = rows / 16;
    CHECK(cuMemcpy3DAsync_v2(&c, g_copy_stream));
  } else {
    CHECK(cuMemcpyHtoDAsync_v2(g_copy_dst, host_src, bytes, g_copy_stream));
  }
}

// One launch through `path`; returns the kernel time it queues, in us.
uint64_t LaunchOnce(const Opts& o) {
  const std::string& p = o.path;
  if (p == "kernel" && o.mix_us) {
    static uint32_t lcg = 12345;
    lcg = lcg * 1664525u + 1013904223u;
    bool other = (lcg >> 16) & 1;
    CHECK(
        cuLaunchKernel(other ? g_fn_mix : g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr, nullptr));
    return other ? o.mix_us : o.kernel_us;
  } else if (p == "kernel") {
    CHECK(cuLaunchKernel(g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr, nullptr));
  } else if (p == "ptsz") {
    CHECK(cuLaunchKernel_ptsz(g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr, nullptr));
  } else if (p == "ex" || p == "ex_ptsz") {
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 32;
    cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.hStream = g_stream;
    CHECK(p == "ex" ? cuLaunchKernelEx(&cfg, g_fn, nullptr, nullptr)
                    : cuLaunchKernelEx_ptsz(&cfg, g_fn, nullptr, nullptr));
  } else if (p == "coop") {
    CHECK(cuLaunchCooperativeKernel(g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr));
  } else if (p == "coop_ptsz") {
    CHECK(cuLaunchCooperativeKernel_ptsz(g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr));
  } else if (p == "launch") {  // the deprecated launches
    CHECK(cuLaunch(g_fn));
  } else if (p == "grid") {
    CHECK(cuLaunchGrid(g_fn, 1, 1));
  } else if (p == "grid_async") {
    CHECK(cuLaunchGridAsync(g_fn, 1, 1, g_stream));
  } else if (p == "multi_device") {
    CUDA_LAUNCH_PARAMS lp = {g_fn, 1, 1, 1, 32, 1, 1, 0, g_stream, nullptr};
    CHECK(cuLaunchCooperativeKernelMultiDevice(&lp, 1, 0));
  } else if (p == "graph") {
    CHECK(cuGraphLaunch(g_graph, g_stream));
    return o.kernel_us * o.graph_count;
  } else if (p == "graph_ptsz") {
    CHECK(cuGraphLaunch_ptsz(g_graph, g_stream));
    return o.kernel_us * o.graph_count;
  } else {
    fprintf(stderr, "unknown path %s\n", p.c_str());
    exit(2);
  }
  return o.kernel_us;
}

void Sync() {
  CHECK(g_stream && g_streams.empty() && !g_copy_stream ? cuStreamSynchronize(g_stream)
                                                        : cuCtxSynchronize());
}

// One kernel in the current context, waited for (the context is in use).
void LaunchOnceAndWait() {
  CHECK(cuLaunchKernel(g_fn, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr));
  CHECK(cuCtxSynchronize());
}

// --ctx-churn: contexts created, used once and destroyed before the loop, which then runs in
// a context created after them.
void ChurnContexts(const Opts& o, CUdevice dev) {
  for (int i = 0; i < o.ctx_churn; ++i) {
    CUcontext c;
    CHECK(cuCtxCreate_v2(&c, 0, dev));
    LaunchOnceAndWait();
    CHECK(cuCtxDestroy_v2(c));
  }
  CHECK(cuCtxCreate_v2(&g_ctx, 0, dev));
}

// --primary-restarts: the primary context released to nothing and retained again (the same
// handle, a new context behind it), with one launch each time.
void RestartThePrimaryContext(const Opts& o, CUdevice dev) {
  for (int i = 0; i < o.primary_restarts; ++i) {
    CHECK(cuDevicePrimaryCtxRelease_v2(dev));
    CHECK(cuDevicePrimaryCtxRetain(&g_ctx, dev));
    CHECK(cuCtxSetCurrent(g_ctx));
    LaunchOnceAndWait();
  }
}

uint64_t Pct(std::vector<uint64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Opts o = Parse(argc, argv);
  CHECK(cuInit(0));
  CUdevice dev;
  // PROBE_DEVICE: the visible ordinal to run on (multi-card tests), 0 by default.
  CHECK(cuDeviceGet(&dev, getenv("PROBE_DEVICE") ? atoi(getenv("PROBE_DEVICE")) : 0));
  CHECK(cuDevicePrimaryCtxRetain(&g_ctx, dev));
  CHECK(cuCtxSetCurrent(g_ctx));
  CHECK(fakegpuKernelCreate(&g_fn, o.kernel_us * 1000));
  if (o.mix_us) CHECK(fakegpuKernelCreate(&g_fn_mix, o.mix_us * 1000));
  CHECK(fakegpuGraphCreate(&g_graph, g_fn, o.graph_count));
  if (o.ctx_churn) ChurnContexts(o, dev);
  if (o.primary_restarts) RestartThePrimaryContext(o, dev);
  for (int i = 0; o.contexts > 1 && i < o.contexts; ++i) {
    CHECK(cuCtxCreate_v2(&g_ctx, 0, dev));
    if (i == o.contexts - 1) break;
    LaunchOnceAndWait();
  }
  CHECK(cuCtxSetCurrent(g_ctx));
  if (o.stream == "new" || o.stream_churn) CHECK(cuStreamCreate(&g_stream, 0));
  for (int i = 0; o.streams > 1 && i < o.streams; ++i) {
    CUstream s;
    CHECK(cuStreamCreate(&s, 0));
    g_streams.push_back(s);
  }

  static char host_src[1];  // the fake moves no data
  if (o.copy_kib) {
    CHECK(cuStreamCreate(&g_copy_stream, 0));
    CHECK(cuMemAlloc_v2(&g_copy_dst, o.copy_kib << 10));
  }

  const size_t phases = o.phase_limits.empty() ? 1 : o.phase_limits.size();
  for (size_t ph = 0; o.mode == "loop" && ph < phases; ++ph) {
    uint64_t t_start = Now(), t_measure = t_start + o.warmup_ms * 1000000ull;
    uint64_t t_end = t_measure + static_cast<uint64_t>(o.seconds * 1e9);
    if (!o.phase_limits.empty()) {
      WriteLimits(o.phase_file, o.phase_limits[ph]);
      printf("phase=%zu limit=%d\n", ph, o.phase_limits[ph]);
    }
    uint64_t gpu_us = 0, iters = 0, since_sync = 0, in_launch_ns = 0;
    bool measuring = false;
    uint64_t t0 = t_start;
    for (;;) {
      uint64_t now = Now();
      if (!measuring && now >= t_measure) {
        Sync();  // count only work launched inside the window
        measuring = true;
        gpu_us = iters = in_launch_ns = 0;
        t0 = Now();
      }
      if (measuring && now >= t_end) break;
      if (o.batch_threads) {
        std::thread worker([&] {
          CHECK(cuCtxSetCurrent(g_ctx));
          for (int i = 0; i < std::max(1, o.sync); ++i, ++iters) gpu_us += LaunchOnce(o);
          Sync();
        });
        worker.join();
        if (o.host_us) Spin(o.host_us);
        continue;
      }
      if (o.launch_gap_us) Spin(o.launch_gap_us);
      if (!g_streams.empty()) g_stream = g_streams[iters % g_streams.size()];
      if (o.copy_kib) CopyOnce(o, host_src);
      uint64_t l0 = Now();
      gpu_us += LaunchOnce(o);
      in_launch_ns += Now() - l0;
      ++iters;
      if (++since_sync >= static_cast<uint64_t>(o.sync > 0 ? o.sync : 64)) {
        Sync();
        since_sync = 0;
        if (o.stream_churn) {
          CHECK(cuStreamDestroy_v2(g_stream));
          CHECK(cuStreamCreate(&g_stream, 0));
        }
        if (o.host_us) Spin(o.host_us);
      }
    }
    Sync();
    double wall = static_cast<double>(Now() - t0) / 1e9;
    uint64_t switches = 0;
    CHECK(fakegpuDeviceContextSwitches(0, &switches));  // all processes, since the state reset
    printf("context_switches=%llu\n", static_cast<unsigned long long>(switches));
    // outside_launch_pct: wall time spent outside launch calls (where a limiter sleeps).
    printf(
        "iters=%llu gpu_us=%llu wall_s=%.4f share_pct=%.2f iters_per_s=%.1f "
        "outside_launch_pct=%.2f\n",
        static_cast<unsigned long long>(iters), static_cast<unsigned long long>(gpu_us), wall,
        100.0 * static_cast<double>(gpu_us) / 1e6 / wall, static_cast<double>(iters) / wall,
        100.0 * (1.0 - static_cast<double>(in_launch_ns) / 1e9 / wall));
    fflush(stdout);
  }
  if (o.mode == "requests") {
    const uint64_t t_measure = Now() + o.warmup_ms * 1000000ull;
    const uint64_t t_end = t_measure + static_cast<uint64_t>(o.seconds * 1e9);
    std::vector<uint64_t> lat;
    for (;;) {
      uint64_t a = Now();
      if (a >= t_end) break;
      for (int i = 0; i < o.per_request; ++i) {
        LaunchOnce(o);
        if (o.request_sync > 0 && (i + 1) % o.request_sync == 0) Sync();  // dependent steps
      }
      Sync();
      uint64_t b = Now();
      if (a >= t_measure) lat.push_back((b - a) / 1000);
      timespec ts{static_cast<time_t>(o.gap_us / 1000000),
                  static_cast<long>(o.gap_us % 1000000 * 1000)};  // tv_nsec < 1 s, or EINVAL
      nanosleep(&ts, nullptr);
    }
    uint64_t sum = 0;
    for (uint64_t x : lat) sum += x;
    printf("requests=%zu mean_us=%llu p50_us=%llu p90_us=%llu p99_us=%llu\n", lat.size(),
           static_cast<unsigned long long>(lat.empty() ? 0 : sum / lat.size()),
           static_cast<unsigned long long>(Pct(lat, 0.5)),
           static_cast<unsigned long long>(Pct(lat, 0.9)),
           static_cast<unsigned long long>(Pct(lat, 0.99)));
  } else if (o.mode != "loop") {
    fprintf(stderr, "unknown mode %s\n", o.mode.c_str());
    return 2;
  }
  fflush(stdout);
  return 0;
}
