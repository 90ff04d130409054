// Memory, context, device and error semantics of the fake libcuda.so.1, including several
// processes sharing one state file.
#include <signal.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"
#include "fakegpu/fakegpu_test_api.h"
#include "fakegpu/test_util.h"

namespace hami::fakegpu::testing {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kCtx = 300 * kMiB;  // default ctxmem

CUcontext InitCtx(CUdevice dev = 0) {
  CUcontext ctx = nullptr;
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  EXPECT_EQ(cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
  return ctx;
}

uint64_t FreeMem() {
  size_t free_b = 0, total = 0;
  EXPECT_EQ(cuMemGetInfo_v2(&free_b, &total), CUDA_SUCCESS);
  return free_b;
}

using FakeCudaTest = FakeGpuTest;

TEST_F(FakeCudaTest, NotInitializedBeforeCuInit) {
  ExpectChildOk([] {
    int n = -1;
    CUdeviceptr p;
    size_t f, t;
    EXPECT_EQ(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    EXPECT_EQ(cuMemAlloc_v2(&p, 1), CUDA_ERROR_NOT_INITIALIZED);
    EXPECT_EQ(cuMemGetInfo_v2(&f, &t), CUDA_ERROR_NOT_INITIALIZED);
    int v = 0;
    EXPECT_EQ(cuDriverGetVersion(&v), CUDA_SUCCESS);  // works without cuInit
    EXPECT_EQ(v, 13000);
    EXPECT_EQ(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
    EXPECT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
    EXPECT_EQ(n, 2);  // the default config
  });
}

TEST_F(FakeCudaTest, DeviceQueriesAndErrors) {
  WriteConfig(
      "# two cards\n"
      "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 mem=80g "
      "sms=132 bus=0000:3b:00.0 numa=0 ctxmem=500m\n"
      "\n"
      "mem=8g\n");
  ExpectChildOk([] {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    char name[128];
    EXPECT_EQ(cuDeviceGetName(name, sizeof name, 0), CUDA_SUCCESS);
    EXPECT_STREQ(name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(cuDeviceGetName(name, sizeof name, 2), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(cuDeviceGetName(name, sizeof name, -1), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(cuDeviceGetName(nullptr, 10, 0), CUDA_ERROR_INVALID_VALUE);
    size_t total = 0;
    EXPECT_EQ(cuDeviceTotalMem_v2(&total, 0), CUDA_SUCCESS);
    EXPECT_EQ(total, 80 * kGiB);
    EXPECT_EQ(cuDeviceTotalMem_v2(&total, 1), CUDA_SUCCESS);
    EXPECT_EQ(total, 8 * kGiB);
    unsigned total32 = 0;
    EXPECT_EQ(cuDeviceTotalMem(&total32, 1), CUDA_SUCCESS);
    EXPECT_EQ(total32, 0xFFFFFFFFu);  // legacy entry point saturates
    CUuuid u;
    EXPECT_EQ(cuDeviceGetUuid_v2(&u, 0), CUDA_SUCCESS);
    EXPECT_EQ(static_cast<unsigned char>(u.bytes[0]), 0x11);
    EXPECT_EQ(static_cast<unsigned char>(u.bytes[15]), 0x55);
    int v = 0;
    EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS);
    EXPECT_EQ(v, 132);
    EXPECT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0), CUDA_SUCCESS);
    EXPECT_EQ(v, 0x3b);
    EXPECT_EQ(cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(75), 1), CUDA_SUCCESS);
    EXPECT_EQ(v, 7);  // default compute capability 7.0
    EXPECT_EQ(cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(39), 1), CUDA_SUCCESS);
    EXPECT_EQ(v, 2048);
    EXPECT_EQ(cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(9999), 0),
              CUDA_ERROR_INVALID_VALUE);
    // No context yet.
    CUdeviceptr p;
    EXPECT_EQ(cuMemAlloc_v2(&p, 1), CUDA_ERROR_INVALID_CONTEXT);
    size_t f, t;
    EXPECT_EQ(cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
    CUdevice d;
    EXPECT_EQ(cuCtxGetDevice(&d), CUDA_ERROR_INVALID_CONTEXT);
    InitCtx(0);
    EXPECT_EQ(cuCtxGetDevice(&d), CUDA_SUCCESS);
    EXPECT_EQ(d, 0);
    EXPECT_EQ(FreeMem(), 80 * kGiB - 500 * kMiB);  // ctxmem from the config
    EXPECT_EQ(cuMemAlloc_v2(nullptr, 1), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemGetInfo_v2(nullptr, &t), CUDA_ERROR_INVALID_VALUE);
    const char* s = nullptr;
    EXPECT_EQ(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s), CUDA_SUCCESS);
    EXPECT_STREQ(s, "CUDA_ERROR_OUT_OF_MEMORY");
    EXPECT_EQ(cuGetErrorString(static_cast<CUresult>(12345), &s), CUDA_ERROR_INVALID_VALUE);
  });
}

TEST_F(FakeCudaTest, BadConfigFailsInit) {
  WriteConfig("mem=lots\n");
  ExpectChildOk([] { EXPECT_EQ(cuInit(0), CUDA_ERROR_NO_DEVICE); });
}

TEST_F(FakeCudaTest, HostWithoutGpus) {
  WriteConfig("# no devices\n");
  ExpectChildOk([] {
    EXPECT_EQ(cuInit(0), CUDA_ERROR_NO_DEVICE);
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    unsigned n = 7;
    EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
    EXPECT_EQ(n, 0u);
  });
}

TEST_F(FakeCudaTest, AllocFreeAndOutOfMemory) {
  WriteConfig("mem=1g ctxmem=100m\n");
  ExpectChildOk([] {
    InitCtx();
    EXPECT_EQ(FreeMem(), kGiB - 100 * kMiB);
    CUdeviceptr a = 0, b = 0;
    EXPECT_EQ(cuMemAlloc_v2(&a, kGiB), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(cuMemAlloc_v2(&a, 900 * kMiB), CUDA_SUCCESS);
    EXPECT_EQ(FreeMem(), 24 * kMiB);
    EXPECT_EQ(cuMemAlloc_v2(&b, 24 * kMiB + 1), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(cuMemAlloc_v2(&b, 24 * kMiB), CUDA_SUCCESS);
    EXPECT_NE(a, b);
    EXPECT_EQ(FreeMem(), 0u);
    EXPECT_EQ(cuMemFree_v2(a), CUDA_SUCCESS);
    EXPECT_EQ(cuMemFree_v2(a), CUDA_ERROR_INVALID_VALUE);  // double free
    EXPECT_EQ(cuMemFree_v2(12345), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemFree_v2(0), CUDA_SUCCESS);  // free(NULL) semantics
    EXPECT_EQ(FreeMem(), 900 * kMiB);
    ASSERT_EQ(cuMemAllocManaged(&a, 100 * kMiB, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAllocManaged(&a, 1, 7), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(FreeMem(), 800 * kMiB);
    uint64_t mine = 0, all = 0;
    EXPECT_EQ(fakegpuMemUsage(0, &mine, &all), CUDA_SUCCESS);
    EXPECT_EQ(mine, 224 * kMiB);
    EXPECT_EQ(all, 224 * kMiB);
    // Legacy 32-bit allocation: a 32-bit pointer the _v2 free accepts.
    unsigned p32 = 0;
    ASSERT_EQ(cuMemAlloc(&p32, 1024), CUDA_SUCCESS);
    EXPECT_NE(p32, 0u);
    unsigned f32 = 0, t32 = 0;
    EXPECT_EQ(cuMemGetInfo(&f32, &t32), CUDA_SUCCESS);
    EXPECT_EQ(t32, kGiB);
    EXPECT_EQ(cuMemFree_v2(p32), CUDA_SUCCESS);
  });
}

TEST_F(FakeCudaTest, PitchArraysAndMipmaps) {
  ExpectChildOk([] {
    InitCtx();
    uint64_t base = FreeMem();
    CUdeviceptr p;
    size_t pitch = 0;
    ASSERT_EQ(cuMemAllocPitch_v2(&p, &pitch, 1000, 10, 4), CUDA_SUCCESS);
    EXPECT_EQ(pitch, 1024u);
    EXPECT_EQ(base - FreeMem(), 10240u);
    EXPECT_EQ(cuMemAllocPitch_v2(&p, &pitch, 1000, 10, 3), CUDA_ERROR_INVALID_VALUE);
    unsigned p32, pitch32;
    ASSERT_EQ(cuMemAllocPitch(&p32, &pitch32, 513, 2, 8), CUDA_SUCCESS);
    EXPECT_EQ(pitch32, 1024u);
    EXPECT_EQ(base - FreeMem(), 10240u + 2048u);

    base = FreeMem();
    CUDA_ARRAY_DESCRIPTOR d{1000, 1000, CU_AD_FORMAT_FLOAT, 1};  // 4,000,000 bytes
    CUarray arr;
    ASSERT_EQ(cuArrayCreate_v2(&arr, &d), CUDA_SUCCESS);
    EXPECT_EQ(base - FreeMem(), 4 * kMiB);                               // rounded up to 2 MiB
    CUDA_ARRAY3D_DESCRIPTOR d3{1024, 1024, 2, CU_AD_FORMAT_HALF, 4, 0};  // 16 MiB
    CUarray arr3;
    ASSERT_EQ(cuArray3DCreate_v2(&arr3, &d3), CUDA_SUCCESS);
    EXPECT_EQ(base - FreeMem(), 20 * kMiB);
    d.NumChannels = 3;
    EXPECT_EQ(cuArrayCreate_v2(&arr, &d), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuArrayDestroy(arr3), CUDA_SUCCESS);
    EXPECT_EQ(cuArrayDestroy(arr3), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(base - FreeMem(), 4 * kMiB);

    base = FreeMem();
    // 2048x2048 RGBA8 = 16 MiB; levels 16 + 4 + 1 = 21 MiB, rounded to 22 MiB.
    CUDA_ARRAY3D_DESCRIPTOR m{2048, 2048, 0, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0};
    CUmipmappedArray mm;
    ASSERT_EQ(cuMipmappedArrayCreate(&mm, &m, 3), CUDA_SUCCESS);
    EXPECT_EQ(base - FreeMem(), 22 * kMiB);
    EXPECT_EQ(cuMipmappedArrayCreate(&mm, &m, 13), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMipmappedArrayDestroy(mm), CUDA_SUCCESS);
    EXPECT_EQ(base, FreeMem());
  });
}

TEST_F(FakeCudaTest, ContextsChargeAndReleaseTheirMemory) {
  ExpectChildOk([] {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    uint64_t mine = 1;
    CUcontext a, b;
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&a, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&b, 0), CUDA_SUCCESS);
    EXPECT_EQ(a, b);
    fakegpuMemUsage(0, &mine, nullptr);
    EXPECT_EQ(mine, kCtx);  // charged once
    ASSERT_EQ(cuCtxSetCurrent(a), CUDA_SUCCESS);
    CUdeviceptr p;
    ASSERT_EQ(cuMemAlloc_v2(&p, 10 * kMiB), CUDA_SUCCESS);
    EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
    fakegpuMemUsage(0, &mine, nullptr);
    EXPECT_EQ(mine, kCtx + 10 * kMiB);
    EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
    fakegpuMemUsage(0, &mine, nullptr);
    EXPECT_EQ(mine, 0u);  // last release destroys it with its allocations
    EXPECT_EQ(cuDevicePrimaryCtxRelease_v2(0), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_EQ(cuMemAlloc_v2(&p, 1), CUDA_ERROR_INVALID_CONTEXT);  // current is dead

    CUcontext c;
    ASSERT_EQ(cuCtxCreate_v2(&c, 0, 1), CUDA_SUCCESS);  // becomes current
    CUdevice dev = -1;
    EXPECT_EQ(cuCtxGetDevice(&dev), CUDA_SUCCESS);
    EXPECT_EQ(dev, 1);
    ASSERT_EQ(cuMemAlloc_v2(&p, 5 * kMiB), CUDA_SUCCESS);
    fakegpuMemUsage(1, &mine, nullptr);
    EXPECT_EQ(mine, kCtx + 5 * kMiB);
    CUcontext c4;
    ASSERT_EQ(cuCtxCreate_v4(&c4, nullptr, 0, 1), CUDA_SUCCESS);
    fakegpuMemUsage(1, &mine, nullptr);
    EXPECT_EQ(mine, 2 * kCtx + 5 * kMiB);
    EXPECT_EQ(cuCtxDestroy_v2(c), CUDA_SUCCESS);
    EXPECT_EQ(cuCtxDestroy_v2(c4), CUDA_SUCCESS);
    fakegpuMemUsage(1, &mine, nullptr);
    EXPECT_EQ(mine, 0u);
    EXPECT_EQ(cuCtxDestroy_v2(c), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_EQ(cuCtxCreate_v2(&c, 0, 5), CUDA_ERROR_INVALID_DEVICE);
    CUcontext cur = reinterpret_cast<CUcontext>(1);
    EXPECT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
    EXPECT_EQ(cur, nullptr);

    ASSERT_EQ(cuDevicePrimaryCtxRetain(&a, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuDevicePrimaryCtxReset_v2(0), CUDA_SUCCESS);
    fakegpuMemUsage(0, &mine, nullptr);
    EXPECT_EQ(mine, 0u);
  });
}

TEST_F(FakeCudaTest, VmmGranularity) {
  ExpectChildOk([] {
    InitCtx();
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t g = 0;
    ASSERT_EQ(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
              CUDA_SUCCESS);
    EXPECT_EQ(g, 2 * kMiB);
    EXPECT_EQ(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
              CUDA_SUCCESS);
    EXPECT_EQ(g, 2 * kMiB);
    uint64_t base = FreeMem();
    CUmemGenericAllocationHandle h;
    EXPECT_EQ(cuMemCreate(&h, kMiB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemCreate(&h, 3 * kMiB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemCreate(&h, 0, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(FreeMem(), base);
    ASSERT_EQ(cuMemCreate(&h, 4 * kMiB, &prop, 0), CUDA_SUCCESS);
    EXPECT_EQ(base - FreeMem(), 4 * kMiB);
    EXPECT_EQ(cuMemCreate(&h, 64 * kGiB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT_EQ(cuMemRelease(h), CUDA_SUCCESS);
    EXPECT_EQ(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(FreeMem(), base);
    prop.location.id = 7;
    EXPECT_EQ(cuMemCreate(&h, 2 * kMiB, &prop, 0), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
              CUDA_ERROR_INVALID_DEVICE);
  });
}

TEST_F(FakeCudaTest, PoolsReserveInChunksAndTrim) {
  ExpectChildOk([] {
    InitCtx();
    uint64_t base = FreeMem();
    CUmemoryPool pool, cur;
    ASSERT_EQ(cuDeviceGetDefaultMemPool(&pool, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGetMemPool(&cur, 0), CUDA_SUCCESS);
    EXPECT_EQ(pool, cur);
    auto attr = [&](CUmemoryPool p, CUmemPool_attribute a) {
      cuuint64_t v = ~0ull;
      EXPECT_EQ(cuMemPoolGetAttribute(p, a, &v), CUDA_SUCCESS);
      return v;
    };
    CUdeviceptr a, b;
    ASSERT_EQ(cuMemAllocAsync(&a, 10 * kMiB, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 32 * kMiB);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 10 * kMiB);
    EXPECT_EQ(base - FreeMem(), 32 * kMiB);
    ASSERT_EQ(cuMemAllocAsync_ptsz(&b, 30 * kMiB, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 64 * kMiB);
    EXPECT_EQ(cuMemFreeAsync(a, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuMemFreeAsync_ptsz(b, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuMemFreeAsync(b, nullptr), CUDA_ERROR_INVALID_VALUE);
    // Stream-ordered: the blocks return to the pool when the stream reaches the frees.
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 40 * kMiB);
    EXPECT_EQ(cuMemPoolTrimTo(pool, 0), CUDA_SUCCESS);  // cannot trim blocks still in use
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 64 * kMiB);
    EXPECT_EQ(base - FreeMem(), 64 * kMiB);                 // still reserved
    EXPECT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);  // frees done; trims to threshold 0
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0u);
    EXPECT_EQ(FreeMem(), base);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 64 * kMiB);

    cuuint64_t thr = 40 * kMiB;
    ASSERT_EQ(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), 40 * kMiB);
    ASSERT_EQ(cuMemAllocAsync(&a, 100 * kMiB, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 128 * kMiB);
    EXPECT_EQ(cuMemFreeAsync(a, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 64 * kMiB);
    EXPECT_EQ(cuMemPoolTrimTo(pool, 0), CUDA_SUCCESS);
    EXPECT_EQ(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0u);
    EXPECT_EQ(FreeMem(), base);
    cuuint64_t v = 5;
    EXPECT_EQ(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v),
              CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemPoolDestroy(pool), CUDA_ERROR_INVALID_VALUE);  // default pool

    struct {
      CUmemAllocationType allocType;
      CUmemAllocationHandleType handleTypes;
      CUmemLocation location;
      unsigned char rest[88];
    } props{};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CUmemoryPool mine;
    ASSERT_EQ(cuMemPoolCreate(&mine, &props), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAllocFromPoolAsync(&a, 33 * kMiB, mine, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(base - FreeMem(), 64 * kMiB);
    EXPECT_EQ(cuMemPoolDestroy(mine), CUDA_SUCCESS);  // gives its reservation back
    EXPECT_EQ(FreeMem(), base);
    EXPECT_EQ(cuMemFreeAsync(a, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAllocFromPoolAsync(&a, kMiB, mine, nullptr), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemAllocAsync(&a, 64 * kGiB, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
    cuuint64_t g = 1;
    EXPECT_EQ(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &g), CUDA_SUCCESS);
    EXPECT_EQ(g, 0u);
  });
}

TEST_F(FakeCudaTest, ProcessesShareOneDevice) {
  Pipe to_parent, to_a;
  pid_t a = Spawn([&] {
    InitCtx();
    CUdeviceptr p;
    EXPECT_EQ(cuMemAlloc_v2(&p, 3 * kGiB), CUDA_SUCCESS);
    to_parent.Send(1);
    to_a.Recv();  // hold the memory until told
  });
  ASSERT_EQ(to_parent.Recv(), 1u);
  EXPECT_EQ(State().DeviceUsed(0), kCtx + 3 * kGiB);
  ExpectChildOk([] {
    InitCtx();
    size_t free_b, total;
    ASSERT_EQ(cuMemGetInfo_v2(&free_b, &total), CUDA_SUCCESS);
    EXPECT_EQ(total, 16 * kGiB);
    EXPECT_EQ(free_b, 16 * kGiB - 2 * kCtx - 3 * kGiB);
    CUdeviceptr p;
    EXPECT_EQ(cuMemAlloc_v2(&p, free_b + 1), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT_EQ(cuMemAlloc_v2(&p, free_b), CUDA_SUCCESS);
    uint64_t mine, all;
    fakegpuMemUsage(0, &mine, &all);
    EXPECT_EQ(all, 16 * kGiB);
    // Device 1 is untouched.
    CUcontext c1;
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&c1, 1), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(c1), CUDA_SUCCESS);
    EXPECT_EQ(FreeMem(), 16 * kGiB - kCtx);
  });
  // The second process has exited: its memory is released.
  EXPECT_EQ(State().DeviceUsed(0), kCtx + 3 * kGiB);
  EXPECT_EQ(State().DeviceUsed(1), 0u);
  to_a.Send(1);
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(State().DeviceUsed(0), 0u);
}

// Threads of one process share the driver: contexts are per thread, accounting is exact.
TEST_F(FakeCudaTest, ThreadsAllocateConcurrently) {
  ExpectChildOk([] {
    CUcontext ctx = InitCtx();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([ctx] {
        CUdeviceptr p;
        EXPECT_EQ(cuMemAlloc_v2(&p, kMiB), CUDA_ERROR_INVALID_CONTEXT);  // not current here
        ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
        for (int i = 0; i < 500; ++i) {
          ASSERT_EQ(cuMemAlloc_v2(&p, kMiB), CUDA_SUCCESS);
          ASSERT_EQ(cuMemFree_v2(p), CUDA_SUCCESS);
        }
        ASSERT_EQ(cuMemAlloc_v2(&p, kMiB), CUDA_SUCCESS);
      });
    }
    for (auto& t : threads) t.join();
    uint64_t mine = 0;
    EXPECT_EQ(fakegpuMemUsage(0, &mine, nullptr), CUDA_SUCCESS);
    EXPECT_EQ(mine, kCtx + 4 * kMiB);
  });
}

// Concurrent allocations never overshoot: processes racing for the last bytes of a device
// together get exactly its capacity.
TEST_F(FakeCudaTest, ConcurrentAllocationsFillExactlyTheDevice) {
  WriteConfig("mem=256m ctxmem=0\n");
  constexpr int kProcs = 4;
  Pipe ready, go, counts, done;
  pid_t pids[kProcs];
  for (pid_t& pid : pids) {
    pid = Spawn([&] {
      InitCtx();
      ready.Send(1);
      go.Recv();
      uint64_t n = 0;
      CUdeviceptr p;
      while (cuMemAlloc_v2(&p, kMiB) == CUDA_SUCCESS) ++n;
      counts.Send(n);
      done.Recv();  // hold the memory until everyone has counted
    });
  }
  for (int i = 0; i < kProcs; ++i) ready.Recv();
  for (int i = 0; i < kProcs; ++i) go.Send(1);
  uint64_t total = 0;
  for (int i = 0; i < kProcs; ++i) total += counts.Recv();
  EXPECT_EQ(total, 256u);
  EXPECT_EQ(State().DeviceUsed(0), 256 * kMiB);
  for (int i = 0; i < kProcs; ++i) done.Send(1);
  for (pid_t pid : pids) EXPECT_EQ(Wait(pid), 0);
  EXPECT_EQ(State().DeviceUsed(0), 0u);
}

TEST_F(FakeCudaTest, KilledProcessMemoryIsReclaimed) {
  Pipe to_parent;
  pid_t a = Spawn([&] {
    InitCtx();
    CUdeviceptr p;
    EXPECT_EQ(cuMemAlloc_v2(&p, 2 * kGiB), CUDA_SUCCESS);
    to_parent.Send(1);
    pause();
  });
  ASSERT_EQ(to_parent.Recv(), 1u);
  ASSERT_EQ(State().DeviceUsed(0), kCtx + 2 * kGiB);
  kill(a, SIGKILL);
  // Not reaped yet: a zombie holds no GPU memory, as with the real driver.
  for (int i = 0; i < 200 && State().DeviceUsed(0) != 0; ++i) usleep(5000);
  EXPECT_EQ(State().DeviceUsed(0), 0u);
  EXPECT_EQ(Wait(a), 128 + SIGKILL);
  ExpectChildOk([] {
    InitCtx();
    EXPECT_EQ(FreeMem(), 16 * kGiB - kCtx);
  });
}

// Slot ownership is an OFD lock that a forked child does not keep: the parent's memory is
// released when the parent dies even though its child (which never used CUDA) lives on.
TEST_F(FakeCudaTest, ParentDeathReleasesMemoryDespiteLiveForkedChild) {
  Pipe ready;
  pid_t a = Spawn([&] {
    InitCtx();
    CUdeviceptr p;
    EXPECT_EQ(cuMemAlloc_v2(&p, kGiB), CUDA_SUCCESS);
    if (fork() == 0) {  // fork handlers have run once the child executes this
      ready.Send(static_cast<uint64_t>(getpid()));
      pause();
      _exit(0);
    }
    pause();
  });
  pid_t c = static_cast<pid_t>(ready.Recv());
  EXPECT_EQ(State().DeviceUsed(0), kCtx + kGiB);
  kill(a, SIGKILL);
  EXPECT_EQ(Wait(a), 128 + SIGKILL);
  EXPECT_EQ(kill(c, 0), 0);  // the child is still alive
  EXPECT_EQ(State().DeviceUsed(0), 0u);
  kill(c, SIGKILL);
}

// A process killed at any instruction, including while it holds the state lock, must not
// block the others.
TEST_F(FakeCudaTest, KillDuringChargeNeverBlocksOthers) {
  for (int round = 0; round < 5; ++round) {
    Pipe started;
    pid_t a = Spawn([&] {
      auto s = SharedState::Open(state_path_);
      ASSERT_TRUE(s.ok());
      started.Send(1);
      for (;;) {
        (*s)->Charge(0, kMiB, 16 * kGiB);
        (*s)->Uncharge(0, kMiB);
      }
    });
    ASSERT_EQ(started.Recv(), 1u);
    usleep(2000 + round * 1000);
    kill(a, SIGKILL);
    EXPECT_EQ(Wait(a), 128 + SIGKILL);
    alarm(20);  // a deadlock fails the test instead of hanging it
    EXPECT_TRUE(State().Charge(0, kMiB, 16 * kGiB));
    State().Uncharge(0, kMiB);
    EXPECT_EQ(State().DeviceUsed(0), 0u);
    alarm(0);
  }
}

TEST_F(FakeCudaTest, VisibleDevicesSelectAndOrder) {
  WriteConfig(
      "uuid=GPU-aaaaaaaa-0000-0000-0000-000000000000 mem=1g\n"
      "uuid=GPU-bbbbbbbb-0000-0000-0000-000000000000 mem=2g\n"
      "uuid=GPU-bbbbcccc-0000-0000-0000-000000000000 mem=3g\n");
  struct Case {
    const char* cvd;
    std::vector<uint64_t> totals_gib;  // per CUDA ordinal; empty: no device
  };
  const Case cases[] = {
      {"2,0", {3, 1}},
      {"GPU-bbbbbbbb", {2}},  // unique prefix
      {"GPU-bbbb,0", {}},     // ambiguous prefix ends the list at once
      {"1,GPU-AAAAAAAA-0000-0000-0000-000000000000", {2, 1}},  // full UUID, any case
      {"0,7,1", {1}},                                          // stops at the first invalid entry
      {"1,1,0", {2}},                                          // repeated entry is invalid
      {"0,,1", {1}},
      {"-1,0", {}},
      {"", {}},
      {"2, 1", {3, 2}},
  };
  for (const Case& c : cases) {
    setenv("CUDA_VISIBLE_DEVICES", c.cvd, 1);
    ExpectChildOk(
        [&] {
          CUresult r = cuInit(0);
          if (c.totals_gib.empty()) {
            EXPECT_EQ(r, CUDA_ERROR_NO_DEVICE) << c.cvd;
            return;
          }
          ASSERT_EQ(r, CUDA_SUCCESS) << c.cvd;
          int n = 0;
          EXPECT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
          ASSERT_EQ(n, static_cast<int>(c.totals_gib.size())) << c.cvd;
          for (int i = 0; i < n; ++i) {
            size_t t = 0;
            EXPECT_EQ(cuDeviceTotalMem_v2(&t, i), CUDA_SUCCESS);
            EXPECT_EQ(t, c.totals_gib[i] * kGiB) << c.cvd << " ordinal " << i;
          }
          size_t t;
          EXPECT_EQ(cuDeviceTotalMem_v2(&t, n), CUDA_ERROR_INVALID_DEVICE);
        },
        c.cvd);
  }
  // Memory is charged to the physical device whatever the ordinal.
  setenv("CUDA_VISIBLE_DEVICES", "2", 1);
  ExpectChildOk([&] {
    InitCtx(0);
    EXPECT_EQ(State().DeviceUsed(2), kCtx);
    EXPECT_EQ(State().DeviceUsed(0), 0u);
  });
}

}  // namespace
}  // namespace hami::fakegpu::testing
