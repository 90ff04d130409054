// Spatial partitioning with CUDA green contexts (CUDA 12.4+), as a reference point for
// libvgpu's time-slicing limiter (docs/compute-limiter.md): one process, two green contexts
// splitting the SMs about A:B, each fed by its own thread with the same full-GPU kernel loop
// that bench/gpu/compute_load.cu runs. Prints key=value lines:
//   solo_ips            full GPU, primary context
//   a_alone_ips         partition A alone           (fraction of solo = what A gets)
//   a_ips b_ips         both partitions saturated at once
//   a_req_p99_us_alone  request latency in A alone, a_req_p99_us_busy with B saturated
//
//   compute_green --work N --a-pct 30 [--seconds S]
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#define CU(x)                                                                  \
  do {                                                                         \
    CUresult r_ = (x);                                                         \
    if (r_ != CUDA_SUCCESS) {                                                  \
      const char* s_ = nullptr;                                                \
      cuGetErrorString(r_, &s_);                                               \
      printf("error=%d call=%s msg=\"%s\"\n", static_cast<int>(r_), #x, s_ ? s_ : ""); \
      exit(3);                                                                 \
    }                                                                          \
  } while (0)
#define CK(x)                                                                  \
  do {                                                                         \
    cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess) {                                                   \
      printf("error=%d call=%s msg=\"%s\"\n", static_cast<int>(e_), #x, cudaGetErrorString(e_)); \
      exit(3);                                                                 \
    }                                                                          \
  } while (0)

__global__ void Work(float* out, long long n) {
  float a = threadIdx.x * 1e-3f, b = 1.0001f, c = 0.9999f;
  for (long long i = 0; i < n; ++i) {
    a = fmaf(a, b, c);
    b = fmaf(b, c, a * 1e-7f);
  }
  if (a == 12345.678f) out[blockIdx.x] = a + b;
}

static double NowS() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Part {
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  float* out = nullptr;
  unsigned sms = 0;
};

static int g_blocks;
static long long g_work;

// Kernel loop in `p` for `seconds`, 4 launches per synchronize; iterations per second.
static double Loop(const Part& p, double seconds) {
  CU(cuCtxSetCurrent(p.ctx));
  cudaStream_t s = reinterpret_cast<cudaStream_t>(p.stream);
  for (int i = 0; i < 4; ++i) Work<<<g_blocks, 256, 0, s>>>(p.out, g_work);
  CK(cudaStreamSynchronize(s));
  long long iters = 0;
  double t0 = NowS(), end = t0 + seconds;
  while (NowS() < end) {
    for (int i = 0; i < 4; ++i) Work<<<g_blocks, 256, 0, s>>>(p.out, g_work);
    iters += 4;
    CK(cudaStreamSynchronize(s));
  }
  CK(cudaGetLastError());
  return iters / (NowS() - t0);
}

// Requests of 5 kernels then 15 ms idle, for `seconds`; p99 latency in us.
static double Requests(const Part& p, double seconds) {
  CU(cuCtxSetCurrent(p.ctx));
  cudaStream_t s = reinterpret_cast<cudaStream_t>(p.stream);
  std::vector<double> lat;
  double end = NowS() + seconds;
  while (NowS() < end) {
    double a = NowS();
    for (int i = 0; i < 5; ++i) Work<<<g_blocks, 256, 0, s>>>(p.out, g_work);
    CK(cudaStreamSynchronize(s));
    lat.push_back((NowS() - a) * 1e6);
    timespec ts{0, 15000000};
    nanosleep(&ts, nullptr);
  }
  std::sort(lat.begin(), lat.end());
  return lat.empty() ? 0 : lat[std::min(lat.size() - 1, static_cast<size_t>(0.99 * (lat.size() - 1) + 0.5))];
}

static Part MakeGreen(CUdevice dev, CUdevResource* res) {
  Part p;
  CUdevResourceDesc desc;
  CU(cuDevResourceGenerateDesc(&desc, res, 1));
  CUgreenCtx g;
  CU(cuGreenCtxCreate(&g, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM));
  CU(cuCtxFromGreenCtx(&p.ctx, g));
  CU(cuGreenCtxStreamCreate(&p.stream, g, CU_STREAM_NON_BLOCKING, 0));
  CU(cuCtxSetCurrent(p.ctx));
  CK(cudaMalloc(&p.out, g_blocks * sizeof(float)));
  p.sms = res->sm.smCount;
  return p;
}

int main(int argc, char** argv) {
  double a_pct = 30, seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--work") g_work = atoll(argv[i + 1]);
    else if (k == "--a-pct") a_pct = atof(argv[i + 1]);
    else if (k == "--seconds") seconds = atof(argv[i + 1]);
    else {
      fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (g_work <= 0) {
    fprintf(stderr, "--work N is required (compute_load calibrate prints it)\n");
    return 2;
  }
  CU(cuInit(0));
  CUdevice dev;
  CU(cuDeviceGet(&dev, 0));
  int sms = 0;
  CU(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  g_blocks = sms * 4;  // sized for the whole GPU, as libraries do

  Part solo;
  CU(cuDevicePrimaryCtxRetain(&solo.ctx, dev));
  CU(cuCtxSetCurrent(solo.ctx));
  CU(cuStreamCreate(&solo.stream, CU_STREAM_NON_BLOCKING));
  CK(cudaMalloc(&solo.out, g_blocks * sizeof(float)));
  double solo_ips = Loop(solo, seconds);

  CUdevResource all;
  CU(cuDeviceGetDevResource(dev, &all, CU_DEV_RESOURCE_TYPE_SM));
  unsigned want = static_cast<unsigned>(all.sm.smCount * a_pct / 100.0 + 0.5);
  CUdevResource a_res, rest;
  unsigned groups = 1;
  CU(cuDevSmResourceSplitByCount(&a_res, &groups, &all, &rest, 0, want));
  Part a = MakeGreen(dev, &a_res);
  Part b = MakeGreen(dev, &rest);
  printf("sms_total=%u sms_a=%u sms_b=%u\n", all.sm.smCount, a.sms, b.sms);

  double a_alone = Loop(a, seconds);
  double a_ips = 0, b_ips = 0;
  {
    std::thread tb([&] { b_ips = Loop(b, seconds); });
    a_ips = Loop(a, seconds);
    tb.join();
  }
  double p99_alone = Requests(a, seconds);
  double p99_busy = 0;
  {
    std::thread tb([&] { Loop(b, seconds + 0.5); });
    p99_busy = Requests(a, seconds);
    tb.join();
  }
  printf("solo_ips=%.3f a_alone_ips=%.3f a_ips=%.3f b_ips=%.3f a_req_p99_us_alone=%.1f "
         "a_req_p99_us_busy=%.1f\n",
         solo_ips, a_alone, a_ips, b_ips, p99_alone, p99_busy);
  return 0;
}
