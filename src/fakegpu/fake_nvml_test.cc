// The fake libnvidia-ml.so.1: device identity, memory and processes seen through the shared
// state, per-process utilization, reference-counted init, and XID events when a device turns
// unhealthy.
#include <time.h>

#include <gtest/gtest.h>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"
#include "fakegpu/fakegpu_test_api.h"
#include "fakegpu/test_util.h"

namespace hami::fakegpu::testing {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMs = 1000000;

uint64_t RealtimeUs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// A process with a context (and `bytes` of memory, so that NVML lists it) on device 0.
void HoldContext(size_t bytes = 64 * kMiB) {
  CUcontext ctx;
  CUdeviceptr p;
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAlloc_v2(&p, bytes), CUDA_SUCCESS);
}

nvmlDevice_t Dev(unsigned i) {
  nvmlDevice_t d = nullptr;
  EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS);
  return d;
}

using FakeNvmlTest = FakeGpuTest;

TEST_F(FakeNvmlTest, InitIsReferenceCounted) {
  ExpectChildOk([] {
    unsigned n = 0;
    EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
    EXPECT_EQ(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvmlInitWithFlags(0), NVML_SUCCESS);
    EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
    EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
    EXPECT_EQ(nvmlDeviceGetCount(&n), NVML_ERROR_UNINITIALIZED);
  });
}

TEST_F(FakeNvmlTest, DeviceIdentity) {
  WriteConfig(
      "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 mem=80g "
      "bus=0000:3b:00.0 numa=1 mig=disabled\n"
      "mem=8g bus=0001:86:00.0\n");
  setenv("CUDA_VISIBLE_DEVICES", "1", 1);  // NVML ignores it
  ExpectChildOk([] {
    ASSERT_EQ(nvmlInit(), NVML_SUCCESS);
    unsigned n = 0;
    ASSERT_EQ(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
    EXPECT_EQ(n, 2u);
    nvmlDevice_t d0 = Dev(0), d1 = Dev(1), byuuid = nullptr, bad;
    EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(2, &bad), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ(nvmlDeviceGetHandleByUUID("GPU-11111111-2222-3333-4444-555555555555", &byuuid),
              NVML_SUCCESS);
    EXPECT_EQ(byuuid, d0);
    EXPECT_EQ(nvmlDeviceGetHandleByUUID("GPU-1111", &bad), NVML_ERROR_NOT_FOUND);
    unsigned idx = 9;
    EXPECT_EQ(nvmlDeviceGetIndex(d1, &idx), NVML_SUCCESS);
    EXPECT_EQ(idx, 1u);
    char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    EXPECT_EQ(nvmlDeviceGetUUID(d0, buf, sizeof buf), NVML_SUCCESS);
    EXPECT_STREQ(buf, "GPU-11111111-2222-3333-4444-555555555555");
    EXPECT_EQ(nvmlDeviceGetUUID(d0, buf, 10), NVML_ERROR_INSUFFICIENT_SIZE);
    EXPECT_EQ(nvmlDeviceGetName(d0, buf, sizeof buf), NVML_SUCCESS);
    EXPECT_STREQ(buf, "NVIDIA H100 80GB HBM3");
    nvmlPciInfo_t pci;
    ASSERT_EQ(nvmlDeviceGetPciInfo_v3(d0, &pci), NVML_SUCCESS);
    EXPECT_STREQ(pci.busId, "00000000:3B:00.0");
    EXPECT_STREQ(pci.busIdLegacy, "0000:3B:00.0");
    EXPECT_EQ(pci.bus, 0x3bu);
    ASSERT_EQ(nvmlDeviceGetPciInfo_v3(d1, &pci), NVML_SUCCESS);
    EXPECT_STREQ(pci.busId, "00000001:86:00.0");
    unsigned numa = 0;
    EXPECT_EQ(nvmlDeviceGetNumaNodeId(d0, &numa), NVML_SUCCESS);
    EXPECT_EQ(numa, 1u);
    unsigned cur = 5, pend = 5;
    EXPECT_EQ(nvmlDeviceGetMigMode(d0, &cur, &pend), NVML_SUCCESS);
    EXPECT_EQ(cur, 0u);
    EXPECT_EQ(nvmlDeviceGetMigMode(d1, &cur, &pend), NVML_ERROR_NOT_SUPPORTED);
    char ver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    EXPECT_EQ(nvmlSystemGetDriverVersion(ver, sizeof ver), NVML_SUCCESS);
    int cuda = 0;
    EXPECT_EQ(nvmlSystemGetCudaDriverVersion(&cuda), NVML_SUCCESS);
    EXPECT_EQ(cuda, 13000);
    EXPECT_EQ(nvmlDeviceGetIndex(reinterpret_cast<nvmlDevice_t>(&cuda), &idx),
              NVML_ERROR_INVALID_ARGUMENT);
  });
}

TEST_F(FakeNvmlTest, MemoryAndProcessesFollowOtherProcesses) {
  Pipe ready, done;
  pid_t a = Spawn([&] {
    HoldContext(1024 * kMiB);
    ready.Send(1);
    done.Recv();
  });
  ASSERT_EQ(ready.Recv(), 1u);
  ExpectChildOk([&] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    nvmlDevice_t d = Dev(0);
    nvmlMemory_t m;
    ASSERT_EQ(nvmlDeviceGetMemoryInfo(d, &m), NVML_SUCCESS);
    EXPECT_EQ(m.total, 16384 * kMiB);
    EXPECT_EQ(m.used, (300 + 1024 + 4) * kMiB);  // ctx + alloc + reserved
    EXPECT_EQ(m.free, m.total - m.used);
    nvmlMemory_v2_t m2{};
    EXPECT_EQ(nvmlDeviceGetMemoryInfo_v2(d, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    m2.version = nvmlMemory_v2;
    ASSERT_EQ(nvmlDeviceGetMemoryInfo_v2(d, &m2), NVML_SUCCESS);
    EXPECT_EQ(m2.reserved, 4 * kMiB);
    EXPECT_EQ(m2.used, (300 + 1024 + 4) * kMiB);  // includes reserved
    EXPECT_EQ(m2.free + m2.used, m2.total);
    ASSERT_EQ(nvmlDeviceGetMemoryInfo(Dev(1), &m), NVML_SUCCESS);
    EXPECT_EQ(m.used, 4 * kMiB);

    unsigned count = 0;
    EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(d, &count, nullptr),
              NVML_ERROR_INSUFFICIENT_SIZE);
    EXPECT_EQ(count, 1u);
    nvmlProcessInfo_t infos[4];
    count = 4;
    ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(d, &count, infos), NVML_SUCCESS);
    ASSERT_EQ(count, 1u);
    EXPECT_EQ(infos[0].pid, static_cast<unsigned>(a));
    EXPECT_EQ(infos[0].usedGpuMemory, (300 + 1024) * kMiB);
    count = 4;
    ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(Dev(1), &count, infos), NVML_SUCCESS);
    EXPECT_EQ(count, 0u);
  });
  done.Send(1);
  EXPECT_EQ(Wait(a), 0);
  ExpectChildOk([&] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    unsigned count = 0;
    EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(Dev(0), &count, nullptr), NVML_SUCCESS);
    EXPECT_EQ(count, 0u);
  });
}

// Per-process utilization tells a process that computes from one that only holds a context:
// the busy one has a sample per 100 ms period its work ran in, with the percent of it; the
// idle one none. Timestamps are CLOCK_REALTIME microseconds of each period's end, as the real
// driver's, and a period shows only once it is over.
TEST_F(FakeNvmlTest, ProcessUtilizationShowsOnlyTheProcessThatComputed) {
  Pipe ready, done;
  pid_t busy = Spawn([&] {
    HoldContext();
    CUfunction k;
    ASSERT_EQ(fakegpuKernelCreate(&k, 10 * kMs), CUDA_SUCCESS);
    for (int i = 0; i < 30; ++i)
      ASSERT_EQ(cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
    ready.Send(RealtimeUs());
    done.Recv();
  });
  pid_t idle = Spawn([&] {
    HoldContext();
    ready.Send(0);
    done.Recv();
  });
  uint64_t worked_until = std::max(ready.Recv(), ready.Recv());
  ExpectChildOk([&] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    nvmlDevice_t d = Dev(0);
    unsigned count = 4;
    nvmlProcessInfo_t infos[4];
    ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(d, &count, infos), NVML_SUCCESS);
    EXPECT_EQ(count, 2u) << "both hold a context";
    timespec pause{0, 250 * static_cast<long>(kMs)};  // the last busy period is published
    nanosleep(&pause, nullptr);
    const uint64_t since = RealtimeUs() - 2000000;
    count = 0;
    ASSERT_EQ(nvmlDeviceGetProcessUtilization(d, nullptr, &count, since),
              NVML_ERROR_INSUFFICIENT_SIZE);
    const unsigned needed = count;
    EXPECT_GE(needed, 3u) << "300 ms of work spans at least three 100 ms periods";
    nvmlProcessUtilizationSample_t s[64];
    count = 1;
    EXPECT_EQ(nvmlDeviceGetProcessUtilization(d, s, &count, since), NVML_ERROR_INSUFFICIENT_SIZE);
    EXPECT_EQ(count, needed);
    count = 64;
    ASSERT_EQ(nvmlDeviceGetProcessUtilization(d, s, &count, since), NVML_SUCCESS);
    ASSERT_EQ(count, needed);
    unsigned sum = 0, top = 0;
    unsigned long long last = 0;
    for (unsigned i = 0; i < count; ++i) {
      EXPECT_EQ(s[i].pid, static_cast<unsigned>(busy)) << "only the busy process computed";
      EXPECT_NE(s[i].pid, static_cast<unsigned>(idle));
      EXPECT_GT(s[i].timeStamp, since);
      EXPECT_LE(s[i].timeStamp, RealtimeUs());
      sum += s[i].smUtil;
      top = std::max(top, s[i].smUtil);
      last = std::max(last, s[i].timeStamp);
    }
    EXPECT_NEAR(sum, 300u, 2) << "300 ms of work in 100 ms periods";
    EXPECT_EQ(top, 100u) << "a period inside the work was all its";
    EXPECT_GE(last, worked_until - 100000) << "the period the work ended in is published";
    // Nothing ran since the last sample: NVML's answer for no samples.
    count = 64;
    EXPECT_EQ(nvmlDeviceGetProcessUtilization(d, s, &count, last), NVML_ERROR_NOT_FOUND);
    EXPECT_EQ(count, 0u);
  });
  // A driver or device without per-process utilization (FAKEGPU_PROCESS_SAMPLE_MS=0).
  setenv("FAKEGPU_PROCESS_SAMPLE_MS", "0", 1);
  ExpectChildOk([&] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    unsigned count = 0;
    EXPECT_EQ(nvmlDeviceGetProcessUtilization(Dev(0), nullptr, &count, 0),
              NVML_ERROR_NOT_SUPPORTED);
  });
  unsetenv("FAKEGPU_PROCESS_SAMPLE_MS");
  done.Send(1);
  done.Send(1);
  EXPECT_EQ(Wait(busy), 0);
  EXPECT_EQ(Wait(idle), 0);
}

TEST_F(FakeNvmlTest, XidEventOnHealthChange) {
  Pipe registered;
  pid_t a = Spawn([&] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    nvmlEventSet_t set;
    ASSERT_EQ(nvmlEventSetCreate(&set), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceRegisterEvents(Dev(1), nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
    nvmlEventData_t data;
    EXPECT_EQ(nvmlEventSetWait_v2(set, &data, 20), NVML_ERROR_TIMEOUT);
    registered.Send(1);
    ASSERT_EQ(nvmlEventSetWait_v2(set, &data, 10000), NVML_SUCCESS);
    EXPECT_EQ(data.device, Dev(1));
    EXPECT_EQ(data.eventType, static_cast<unsigned long long>(nvmlEventTypeXidCriticalError));
    EXPECT_EQ(data.eventData, 48u);
    EXPECT_EQ(nvmlEventSetWait_v2(set, &data, 20), NVML_ERROR_TIMEOUT);  // delivered once
    EXPECT_EQ(nvmlEventSetFree(set), NVML_SUCCESS);
    EXPECT_EQ(nvmlEventSetWait_v2(set, &data, 0), NVML_ERROR_INVALID_ARGUMENT);
  });
  ASSERT_EQ(registered.Recv(), 1u);
  State().SetHealth(0, false, 31);  // not registered: no event
  State().SetHealth(1, false, 48);
  EXPECT_EQ(Wait(a), 0);
  EXPECT_FALSE(State().GetHealth(1).healthy);
}

TEST_F(FakeNvmlTest, TemperaturePowerEccAndMigDevicesFromTheConfig) {
  WriteConfig(
      "name=NVIDIA A100-SXM4-40GB temp=61 power=212500 ecc=3,1 "
      "migs=1g.5gb:7:0,3g.20gb:2:0\n"
      "ecc=unsupported\n");
  ExpectChildOk([] {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    nvmlDevice_t d0 = Dev(0), d1 = Dev(1);
    unsigned t = 0, p = 0;
    EXPECT_EQ(nvmlDeviceGetTemperature(d0, NVML_TEMPERATURE_GPU, &t), NVML_SUCCESS);
    EXPECT_EQ(t, 61u);
    EXPECT_EQ(nvmlDeviceGetTemperature(d1, NVML_TEMPERATURE_GPU, &t), NVML_SUCCESS);
    EXPECT_EQ(t, 35u);  // default
    EXPECT_EQ(nvmlDeviceGetPowerUsage(d0, &p), NVML_SUCCESS);
    EXPECT_EQ(p, 212500u);  // milliwatts
    unsigned long long ecc = 9;
    EXPECT_EQ(
        nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, &ecc),
        NVML_SUCCESS);
    EXPECT_EQ(ecc, 3u);
    EXPECT_EQ(nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                          NVML_AGGREGATE_ECC, &ecc),
              NVML_SUCCESS);
    EXPECT_EQ(ecc, 1u);
    EXPECT_EQ(
        nvmlDeviceGetTotalEccErrors(d1, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, &ecc),
        NVML_ERROR_NOT_SUPPORTED);

    unsigned cur = 0, pending = 0, max = 0;
    EXPECT_EQ(nvmlDeviceGetMigMode(d0, &cur, &pending), NVML_SUCCESS);
    EXPECT_EQ(cur, 1u);
    EXPECT_EQ(nvmlDeviceGetMaxMigDeviceCount(d0, &max), NVML_SUCCESS);
    EXPECT_EQ(max, 7u);
    EXPECT_EQ(nvmlDeviceGetMaxMigDeviceCount(d1, &max), NVML_ERROR_NOT_SUPPORTED);
    nvmlDevice_t m1 = nullptr, bad = nullptr;
    ASSERT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(d0, 1, &m1), NVML_SUCCESS);
    EXPECT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(d0, 2, &bad), NVML_ERROR_NOT_FOUND);
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE], name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    ASSERT_EQ(nvmlDeviceGetUUID(m1, uuid, sizeof uuid), NVML_SUCCESS);
    EXPECT_STREQ(uuid, "MIG-fa4e0000-0000-4000-8000-a00000000001");
    ASSERT_EQ(nvmlDeviceGetName(m1, name, sizeof name), NVML_SUCCESS);
    EXPECT_STREQ(name, "NVIDIA A100-SXM4-40GB MIG 3g.20gb");
    unsigned gi = 0, ci = 9;
    EXPECT_EQ(nvmlDeviceGetGpuInstanceId(m1, &gi), NVML_SUCCESS);
    EXPECT_EQ(gi, 2u);
    EXPECT_EQ(nvmlDeviceGetComputeInstanceId(m1, &ci), NVML_SUCCESS);
    EXPECT_EQ(ci, 0u);
    EXPECT_EQ(nvmlDeviceGetGpuInstanceId(d0, &gi), NVML_ERROR_INVALID_ARGUMENT);
    nvmlDevice_t byuuid = nullptr;
    ASSERT_EQ(nvmlDeviceGetHandleByUUID(uuid, &byuuid), NVML_SUCCESS);
    EXPECT_EQ(byuuid, m1);
  });
}

}  // namespace
}  // namespace hami::fakegpu::testing
