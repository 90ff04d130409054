// The memory hooks' pure bookkeeping (memory_book.h): charges released exactly once, a
// device's charges dropped together, pool growth steps learned, array sizes.
#include "memory_book.h"

#include "abi/cuda_array.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace hami::vgpu {
namespace {

CUmemoryPool PoolHandle(uintptr_t v) { return reinterpret_cast<CUmemoryPool>(v); }

TEST(MemoryBookTest, UntrackReturnsTheChargeExactlyOnce) {
  ChargeBook b;
  b.Track(kPtr, 0x1000, 0, 4096);
  b.Track(kVmm, 0x1000, 1, 2 * kMiB);  // same key, other kind: independent
  Charge c{};
  ASSERT_TRUE(b.Untrack(kPtr, 0x1000, &c));
  EXPECT_EQ(c.ordinal, 0);
  EXPECT_EQ(c.bytes, 4096u);
  EXPECT_FALSE(b.Untrack(kPtr, 0x1000, &c)) << "a double free must not release twice";
  ASSERT_TRUE(b.Untrack(kVmm, 0x1000, &c));
  EXPECT_EQ(c.ordinal, 1);
  EXPECT_FALSE(b.Untrack(kArray, 0x2000, &c)) << "never charged";
}

TEST(MemoryBookTest, RetrackingAKeyReplacesItsCharge) {
  ChargeBook b;
  b.Track(kPtr, 7, 0, 100, PoolHandle(9));
  b.Track(kPtr, 7, 0, 300);
  Charge c{};
  ASSERT_TRUE(b.Untrack(kPtr, 7, &c));
  EXPECT_EQ(c.bytes, 300u);
  EXPECT_EQ(c.pool, nullptr);
}

TEST(MemoryBookTest, DropDeviceSumsPointersArraysPoolsAndGraphsOfThatDeviceOnly) {
  ChargeBook b;
  b.Track(kPtr, 1, 0, 10);
  b.Track(kArray, 2, 0, 20);
  b.Track(kMipmap, 3, 0, 30);
  b.Track(kPtr, 4, 1, 1000);      // other device
  b.Track(kVmm, 5, 0, 5000);      // VMM handles outlive a reset
  b.Track(kContext, 6, 0, 7000);  // contexts are released by their own path
  {
    std::lock_guard<std::mutex> g(b.mu());
    bool created = false;
    b.AddPoolLocked(PoolHandle(1), 0, &created)->counted = 40;
    EXPECT_TRUE(created);
    b.AddPoolLocked(PoolHandle(2), 1, &created)->counted = 2000;
    b.GraphCountedLocked(0) = 50;
  }
  EXPECT_EQ(b.DropDevice(0), 10u + 20 + 30 + 40 + 50);
  EXPECT_EQ(b.DropDevice(0), 0u) << "dropped charges are gone";
  Charge c{};
  EXPECT_TRUE(b.Untrack(kPtr, 4, &c));
  EXPECT_TRUE(b.Untrack(kVmm, 5, &c));
  EXPECT_TRUE(b.Untrack(kContext, 6, &c));
  std::lock_guard<std::mutex> g(b.mu());
  EXPECT_EQ(b.FindPoolLocked(PoolHandle(1)), nullptr);
  ASSERT_NE(b.FindPoolLocked(PoolHandle(2)), nullptr);
  EXPECT_EQ(b.ErasePoolLocked(PoolHandle(2)), 2000u);
  EXPECT_EQ(b.ErasePoolLocked(PoolHandle(2)), 0u);
}

TEST(MemoryBookTest, AddPoolFindsAnExistingRecord) {
  ChargeBook b;
  std::lock_guard<std::mutex> g(b.mu());
  bool created = false;
  PoolRec* p = b.AddPoolLocked(PoolHandle(3), 2, &created);
  p->grain = 32 * kMiB;
  PoolRec* q = b.AddPoolLocked(PoolHandle(3), 2, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(q->grain, 32 * kMiB);
  EXPECT_EQ(b.PoolsLocked().size(), 1u);
}

TEST(MemoryBookTest, ConcurrentTrackAndUntrackLoseNothing) {
  ChargeBook b;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&b, t] {
      for (uint64_t i = 0; i < 2000; ++i) {
        uint64_t key = (static_cast<uint64_t>(t) << 32) | i;
        b.Track(kPtr, key, 0, 1);
        if (i % 2) {
          Charge c{};
          EXPECT_TRUE(b.Untrack(kPtr, key, &c));
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(b.DropDevice(0), 4u * 1000);
}

TEST(MemoryBookTest, PoolGrainIsTheSmallestStepThatExplainsTheGrowth) {
  EXPECT_EQ(PoolGrain(1 * kMiB, 2 * kMiB), 2 * kMiB);
  EXPECT_EQ(PoolGrain(1 * kMiB, 32 * kMiB), 32 * kMiB);   // an H200 grows pools by 32 MiB
  EXPECT_EQ(PoolGrain(40 * kMiB, 64 * kMiB), 32 * kMiB);  // 32 already explains 64
  EXPECT_EQ(PoolGrain(33 * kMiB, 64 * kMiB), 32 * kMiB);
  EXPECT_EQ(PoolGrain(1 * kMiB, 64 * kMiB), 64 * kMiB);
  EXPECT_EQ(PoolGrain(1 * kMiB, 3 * kMiB), kPoolGrainMax) << "unexplained but small: cautious";
  EXPECT_EQ(PoolGrain(1 * kMiB, 65 * kMiB), 0u) << "too large: nothing learned";
}

TEST(MemoryBookTest, ArraySizesRoundToTwoMiBAndCountEveryLevel) {
  EXPECT_EQ(ElementBytes(CU_AD_FORMAT_UNSIGNED_INT8), 1u);
  EXPECT_EQ(ElementBytes(CU_AD_FORMAT_HALF), 2u);
  EXPECT_EQ(ElementBytes(CU_AD_FORMAT_FLOAT), 4u);
  auto unknown = static_cast<CUarray_format>(0x7);
  EXPECT_EQ(abi::ArrayFormatBytes(unknown), 0u) << "the fake refuses formats it does not know";
  EXPECT_EQ(ElementBytes(unknown), 4u) << "the hook charges them conservatively";
  EXPECT_EQ(ArrayBytes(1, 0, 0, CU_AD_FORMAT_UNSIGNED_INT8, 1), 2 * kMiB);
  EXPECT_EQ(ArrayBytes(1024, 1024, 0, CU_AD_FORMAT_FLOAT, 4), 16 * kMiB);
  EXPECT_EQ(ArrayBytes(1024, 1024, 3, CU_AD_FORMAT_FLOAT, 1), 12 * kMiB);
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = 2048;
  d.Height = 2048;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  // 16 MiB + 4 MiB + 1 MiB + 256 KiB: 21.25 MiB, rounded up to 22 MiB.
  EXPECT_EQ(MipmapBytes(d, 4), 22 * kMiB);
  EXPECT_EQ(MipmapBytes(d, 0), 16 * kMiB) << "0 levels: one level";
}

TEST(MemoryBookTest, JoinedPidIsTheOneNewPid) {
  nvmlProcessInfo_t before[2] = {}, after[3] = {};
  before[0].pid = 10;
  before[1].pid = 11;
  after[0].pid = 11;
  after[1].pid = 12;
  after[2].pid = 10;
  EXPECT_EQ(JoinedPid(before, 2, after, 3), 12u);
  EXPECT_EQ(JoinedPid(before, 2, after, 1), 0u) << "nobody joined";
  after[0].pid = 13;
  EXPECT_EQ(JoinedPid(before, 2, after, 3), 0u) << "two joined: ambiguous";
  EXPECT_EQ(JoinedPid(nullptr, 0, after, 1), 13u);
}

}  // namespace
}  // namespace hami::vgpu
