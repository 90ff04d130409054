// Load generator for bench/gpu/compute_limits.py: fixed-work kernels that fill the whole GPU,
// calibrated once to a target duration, launched in a loop, as CUDA-graph replays or as
// latency-measured requests. Prints key=value lines.
//
//   compute_load loop     --kernel-us K --seconds S [--sync N] [--warmup-ms W] [--start-at MS]
//   compute_load graph    --kernel-us K --graph-kernels G --seconds S [--warmup-ms W]
//   compute_load requests --kernel-us K --per-request R --gap-us G --seconds S [--warmup-ms W]
//   compute_load calibrate --kernel-us K        (prints the work count for K us)
//
// --contexts N: first one kernel in each of N-1 new contexts (driver API), then everything in
// another new one; --ctx-churn N: first N contexts created, used once and destroyed, then
// everything in a new one (a tenant's ways around a per-context limiter, issue 17).
//
// --work N skips calibration (the script calibrates once, unlimited, and passes N to every
// run so limited and unlimited runs do identical work). --start-at: CLOCK_REALTIME ms at which
// the measurement window opens (aligns several processes).
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#define CK(x)                                                                 \
  do {                                                                        \
    cudaError_t e_ = (x);                                                     \
    if (e_ != cudaSuccess) {                                                  \
      fprintf(stderr, "%s failed: %s\n", #x, cudaGetErrorString(e_));         \
      printf("error=%d\n", static_cast<int>(e_));                             \
      exit(3);                                                                \
    }                                                                         \
  } while (0)

__global__ void Work(float* out, long long n) {
  float a = threadIdx.x * 1e-3f, b = 1.0001f, c = 0.9999f;
  for (long long i = 0; i < n; ++i) {
    a = fmaf(a, b, c);
    b = fmaf(b, c, a * 1e-7f);
  }
  if (a == 12345.678f) out[blockIdx.x] = a + b;  // never true; keeps the loop alive
}

static double NowS() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double RealMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct Opts {
  std::string mode;
  double kernel_us = 1000, seconds = 3, warmup_ms = 500, start_at = 0, gap_us = 10000;
  int sync = 4, graph_kernels = 10, per_request = 10;
  long long work = 0;
  int contexts = 1, ctx_churn = 0;
};

#define CU(x)                                                             \
  do {                                                                    \
    CUresult r_ = (x);                                                    \
    if (r_ != CUDA_SUCCESS) {                                             \
      fprintf(stderr, "%s failed: %d\n", #x, static_cast<int>(r_));       \
      printf("error=%d\n", static_cast<int>(r_));                         \
      exit(3);                                                            \
    }                                                                     \
  } while (0)

static void NewContext(CUcontext* c) {
#if CUDA_VERSION >= 13000
  CU(cuCtxCreate(c, nullptr, 0, 0));
#else
  CU(cuCtxCreate(c, 0, 0));
#endif
}

// --contexts / --ctx-churn: leaves the last new context current; the runtime then uses it.
static void SetUpContexts(const Opts& o) {
  if (o.contexts <= 1 && o.ctx_churn == 0) return;
  CU(cuInit(0));
  CUcontext c;
  for (int i = 0; i < o.contexts - 1 + o.ctx_churn; ++i) {
    NewContext(&c);
    Work<<<1, 32>>>(nullptr, 1);
    CK(cudaDeviceSynchronize());
    if (i >= o.contexts - 1) CU(cuCtxDestroy(c));  // the churned ones
  }
  NewContext(&c);
}

static int g_blocks = 0;
static float* g_out = nullptr;
static cudaStream_t g_stream;

static void Launch(long long work) { Work<<<g_blocks, 256, 0, g_stream>>>(g_out, work); }

// Work count for `us` microseconds of one launch, measured unlimited.
static long long Calibrate(double us) {
  long long n = 1000;
  for (int round = 0; round < 8; ++round) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    Launch(n);
    CK(cudaEventRecord(a, g_stream));
    for (int i = 0; i < 5; ++i) Launch(n);
    CK(cudaEventRecord(b, g_stream));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    double per = ms * 1000.0 / 5;
    long long next = static_cast<long long>(n * us / std::max(per, 0.5));
    if (next < 1) next = 1;
    if (std::abs(per - us) / us < 0.03) return n;
    n = next;
  }
  return n;
}

static double Pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: compute_load loop|graph|requests|calibrate [options]\n");
    return 2;
  }
  Opts o;
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--kernel-us") o.kernel_us = atof(v);
    else if (k == "--seconds") o.seconds = atof(v);
    else if (k == "--warmup-ms") o.warmup_ms = atof(v);
    else if (k == "--start-at") o.start_at = atof(v);
    else if (k == "--sync") o.sync = atoi(v);
    else if (k == "--graph-kernels") o.graph_kernels = atoi(v);
    else if (k == "--per-request") o.per_request = atoi(v);
    else if (k == "--gap-us") o.gap_us = atof(v);
    else if (k == "--work") o.work = atoll(v);
    else if (k == "--contexts") o.contexts = atoi(v);
    else if (k == "--ctx-churn") o.ctx_churn = atoi(v);
    else {
      fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  SetUpContexts(o);
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  g_blocks = sms * 4;  // every SM busy
  CK(cudaMalloc(&g_out, g_blocks * sizeof(float)));
  CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  long long work = o.work ? o.work : Calibrate(o.kernel_us);
  if (o.mode == "calibrate") {
    printf("work=%lld sms=%d\n", work, sms);
    return 0;
  }

  cudaGraphExec_t exec = nullptr;
  if (o.mode == "graph") {
    cudaGraph_t g;
    CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < o.graph_kernels; ++i) Launch(work);
    CK(cudaStreamEndCapture(g_stream, &g));
    CK(cudaGraphInstantiate(&exec, g, 0));
  }

  // Measurement window: [t_measure, t_end) on this process's monotonic clock.
  double t_measure = NowS() + o.warmup_ms / 1e3;
  if (o.start_at > 0) t_measure = NowS() + std::max(0.0, (o.start_at - RealMs()) / 1e3);
  double t_end = t_measure + o.seconds;

  if (o.mode == "loop" || o.mode == "graph") {
    long long iters = 0, since = 0;
    bool measuring = false;
    double t0 = 0;
    for (;;) {
      double now = NowS();
      if (!measuring && now >= t_measure) {
        CK(cudaStreamSynchronize(g_stream));
        measuring = true;
        iters = 0;
        t0 = NowS();
      }
      if (measuring && now >= t_end) break;
      if (exec) {
        CK(cudaGraphLaunch(exec, g_stream));
      } else {
        Launch(work);
      }
      ++iters;
      if (++since >= (exec ? 1 : std::max(o.sync, 1))) {
        CK(cudaStreamSynchronize(g_stream));
        since = 0;
      }
    }
    CK(cudaStreamSynchronize(g_stream));
    CK(cudaGetLastError());
    double wall = NowS() - t0;
    printf("iters=%lld wall_s=%.4f iters_per_s=%.3f work=%lld\n", iters, wall, iters / wall, work);
  } else if (o.mode == "requests") {
    std::vector<double> lat;
    for (;;) {
      double a = NowS();
      if (a >= t_end) break;
      for (int i = 0; i < o.per_request; ++i) Launch(work);
      CK(cudaStreamSynchronize(g_stream));
      double b = NowS();
      if (a >= t_measure) lat.push_back((b - a) * 1e6);
      timespec ts{0, static_cast<long>(o.gap_us * 1000)};
      nanosleep(&ts, nullptr);
    }
    double sum = 0;
    for (double x : lat) sum += x;
    printf("requests=%zu mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f work=%lld\n",
           lat.size(), lat.empty() ? 0 : sum / lat.size(), Pct(lat, 0.5), Pct(lat, 0.9),
           Pct(lat, 0.99), work);
  } else {
    fprintf(stderr, "unknown mode %s\n", o.mode.c_str());
    return 2;
  }
  return 0;
}
