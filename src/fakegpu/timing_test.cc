// The kernel execution model: asynchronous launches on stream timelines, one device-wide
// timeline shared by all processes, events, graphs and the utilization NVML reports.
#include <time.h>

#include <gtest/gtest.h>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"
#include "fakegpu/fakegpu_test_api.h"
#include "fakegpu/test_util.h"

namespace hami::fakegpu::testing {
namespace {

constexpr uint64_t kMs = 1000000;

void InitCtx() {
  CUcontext ctx;
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
}

using FakeGpuTiming = FakeGpuTest;

TEST_F(FakeGpuTiming, LaunchesAreAsynchronousAndEventsTimeThem) {
  ExpectChildOk([] {
    InitCtx();
    CUfunction k;
    ASSERT_EQ(fakegpuKernelCreate(&k, 40 * kMs), CUDA_SUCCESS);
    CUstream s;
    ASSERT_EQ(cuStreamCreate(&s, 0), CUDA_SUCCESS);
    CUevent start, end, untimed;
    ASSERT_EQ(cuEventCreate(&start, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&end, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&untimed, 0x2), CUDA_SUCCESS);
    EXPECT_EQ(cuEventQuery(end), CUDA_SUCCESS);  // never recorded
    uint64_t t0 = MonotonicNs();
    ASSERT_EQ(cuEventRecord(start, s), CUDA_SUCCESS);
    for (int i = 0; i < 5; ++i)
      ASSERT_EQ(cuLaunchKernel(k, 132, 1, 1, 128, 1, 1, 0, s, nullptr, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(end, s), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(untimed, s), CUDA_SUCCESS);
    EXPECT_LT(MonotonicNs() - t0, 100 * kMs);  // launches did not wait
    EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    EXPECT_EQ(cuEventQuery(end), CUDA_ERROR_NOT_READY);
    float ms = 0;
    EXPECT_EQ(cuEventElapsedTime(&ms, start, end), CUDA_ERROR_NOT_READY);
    ASSERT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
    EXPECT_GE(MonotonicNs() - t0, 200 * kMs);
    EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);
    EXPECT_EQ(cuEventQuery(end), CUDA_SUCCESS);
    ASSERT_EQ(cuEventElapsedTime(&ms, start, end), CUDA_SUCCESS);
    EXPECT_GE(ms, 200.0f);
    EXPECT_LT(ms, 240.0f);  // start-to-first-launch gap on a loaded host
    EXPECT_EQ(cuEventElapsedTime(&ms, start, untimed), CUDA_ERROR_INVALID_HANDLE);
    uint64_t busy = 0;
    EXPECT_EQ(fakegpuDeviceBusyNs(0, &busy), CUDA_SUCCESS);
    EXPECT_EQ(busy, 200 * kMs);

    // A graph of 4 launches on the legacy default stream, then cuCtxSynchronize.
    CUgraphExec g;
    CUfunction k10;
    ASSERT_EQ(fakegpuKernelCreate(&k10, 10 * kMs), CUDA_SUCCESS);
    ASSERT_EQ(fakegpuGraphCreate(&g, k10, 4), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(start, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuGraphLaunch(g, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(end, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
    ASSERT_EQ(cuEventElapsedTime(&ms, start, end), CUDA_SUCCESS);
    EXPECT_GE(ms, 40.0f);
    EXPECT_LT(ms, 80.0f);
    EXPECT_EQ(fakegpuDeviceBusyNs(0, &busy), CUDA_SUCCESS);
    EXPECT_EQ(busy, 240 * kMs);

    CUlaunchConfig cfg{};
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.hStream = reinterpret_cast<CUstream>(2);  // CU_STREAM_PER_THREAD
    EXPECT_EQ(cuLaunchKernelEx_ptsz(&cfg, k10, nullptr, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuLaunchCooperativeKernel(k10, 1, 1, 1, 1, 1, 1, 0, s, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuGraphLaunch_ptsz(g, s), CUDA_SUCCESS);
    EXPECT_EQ(cuEventSynchronize(end), CUDA_SUCCESS);
    // Errors.
    CUfunction bogus = reinterpret_cast<CUfunction>(&cfg);
    EXPECT_EQ(cuLaunchKernel(bogus, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr),
              CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuLaunchKernel(k, 0, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr),
              CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLaunchKernel(k, 1, 1, 1, 2048, 1, 1, 0, s, nullptr, nullptr),
              CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(
        cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, reinterpret_cast<CUstream>(&cfg), nullptr, nullptr),
        CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuLaunchKernelEx(nullptr, k, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuGraphLaunch(nullptr, s), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuStreamDestroy_v2(s), CUDA_SUCCESS);
    EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_EQ(cuCtxSetCurrent(nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr),
              CUDA_ERROR_INVALID_CONTEXT);
  });
}

// Events are processed in device order: start/end events around a kernel that waited
// behind another process's work time the kernel, not the wait (what a limiter measures).
TEST_F(FakeGpuTiming, EventsAroundAQueuedKernelTimeOnlyThatKernel) {
  Pipe busy;
  pid_t a = Spawn([&] {
    InitCtx();
    CUfunction k;
    ASSERT_EQ(fakegpuKernelCreate(&k, 150 * kMs), CUDA_SUCCESS);
    ASSERT_EQ(cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_SUCCESS);
    busy.Send(1);
    EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  });
  ASSERT_EQ(busy.Recv(), 1u);
  ExpectChildOk([] {
    InitCtx();
    CUfunction k;
    ASSERT_EQ(fakegpuKernelCreate(&k, 10 * kMs), CUDA_SUCCESS);
    CUevent start, end;
    ASSERT_EQ(cuEventCreate(&start, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&end, 0), CUDA_SUCCESS);
    uint64_t t0 = MonotonicNs();
    ASSERT_EQ(cuEventRecord(start, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(end, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuEventSynchronize(end), CUDA_SUCCESS);
    EXPECT_GE(MonotonicNs() - t0, 50 * kMs);  // it did wait behind the other process
    float ms = 0;
    ASSERT_EQ(cuEventElapsedTime(&ms, start, end), CUDA_SUCCESS);
    EXPECT_GE(ms, 10.0f);
    EXPECT_LT(ms, 12.0f);
  });
  EXPECT_EQ(Wait(a), 0);
}

// Two processes launching back to back on one fake GPU each get about half of it.
TEST_F(FakeGpuTiming, TwoSaturatingProcessesShareTheDevice) {
  constexpr uint64_t kRun = 600 * kMs, kKernel = 4 * kMs;
  Pipe ready, go, counts;
  auto worker = [&](bool report_util) {
    return Spawn([&, report_util] {
      InitCtx();
      CUfunction k;
      ASSERT_EQ(fakegpuKernelCreate(&k, kKernel), CUDA_SUCCESS);
      ready.Send(1);
      uint64_t start = go.Recv();
      uint64_t n = 0;
      while (MonotonicNs() < start + kRun) {
        ASSERT_EQ(cuLaunchKernel(k, 80, 1, 1, 256, 1, 1, 0, nullptr, nullptr, nullptr),
                  CUDA_SUCCESS);
        ASSERT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
        ++n;
      }
      if (report_util) {
        ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
        nvmlDevice_t d;
        nvmlUtilization_t u;
        ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
        ASSERT_EQ(nvmlDeviceGetUtilizationRates(d, &u), NVML_SUCCESS);
        EXPECT_GE(u.gpu, 60u);
      }
      counts.Send(n);
    });
  };
  pid_t a = worker(true), b = worker(false);
  ready.Recv();
  ready.Recv();
  uint64_t start = MonotonicNs() + 20 * kMs;
  go.Send(start);
  go.Send(start);
  uint64_t na = counts.Recv(), nb = counts.Recv();
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(Wait(b), 0);
  double total = static_cast<double>(na + nb);
  ASSERT_GT(total, 0);
  EXPECT_GT(na / total, 0.3) << na << " vs " << nb;
  EXPECT_GT(nb / total, 0.3) << na << " vs " << nb;
  // Together they kept the device busy most of the time.
  EXPECT_GT(State().BusyNsTotal(0), kRun * 6 / 10);
  EXPECT_EQ(State().BusyNsTotal(0), (na + nb) * kKernel);
  // Idle afterwards.
  EXPECT_EQ(State().Utilization(0, MonotonicNs() + 200 * kMs, 100 * kMs), 0u);
}

}  // namespace
}  // namespace hami::fakegpu::testing
