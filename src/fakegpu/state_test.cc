#include "fakegpu/state.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fakegpu/test_util.h"

namespace hami::fakegpu::testing {
namespace {

using FakeGpuState = FakeGpuTest;

TEST_F(FakeGpuState, ChargeIsBoundedByCapacityAcrossProcesses) {
  EXPECT_TRUE(State().Charge(0, 600, 1000));
  EXPECT_FALSE(State().Charge(0, 401, 1000));
  ExpectChildOk([&] {
    auto s = SharedState::Open(state_path_);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE((*s)->Charge(0, 401, 1000));
    EXPECT_TRUE((*s)->Charge(0, 400, 1000));
    EXPECT_EQ((*s)->DeviceUsed(0), 1000u);
    EXPECT_EQ((*s)->Processes(0).size(), 2u);
  });
  EXPECT_EQ(State().DeviceUsed(0), 600u);  // the child exited
  auto procs = State().Processes(0);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, getpid());
  EXPECT_EQ(procs[0].used, 600u);
  State().Uncharge(0, 1000);  // over-release clamps at 0
  EXPECT_EQ(State().DeviceUsed(0), 0u);
  EXPECT_FALSE(State().Charge(99, 1, 1000));
}

TEST_F(FakeGpuState, RejectsForeignFile) {
  FILE* f = fopen(state_path_.c_str(), "w");
  fputs("not a state file", f);
  fclose(f);
  auto s = SharedState::Open(state_path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(state_path_), std::string::npos);
}

TEST_F(FakeGpuState, ReplacesFileOfAnotherVersion) {
  FILE* f = fopen(state_path_.c_str(), "w");
  const uint32_t old_version[2] = {1, 100};
  fwrite("FAKEGPU1", 1, 8, f);
  fwrite(old_version, sizeof old_version, 1, f);
  fclose(f);
  auto s = SharedState::Open(state_path_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE((*s)->Charge(0, 5, 10));
  EXPECT_EQ((*s)->DeviceUsed(0), 5u);
}

TEST_F(FakeGpuState, ResetForgetsEverything) {
  EXPECT_TRUE(State().Charge(1, 5, 10));
  State().SetHealth(1, false, 48);
  uint64_t seq = State().GetHealth(1).xid_seq;
  State().Reset();
  EXPECT_EQ(State().DeviceUsed(1), 0u);
  EXPECT_TRUE(State().GetHealth(1).healthy);
  EXPECT_EQ(State().GetHealth(1).xid_seq, seq);  // monotonic for open event sets
  EXPECT_TRUE(State().Charge(1, 10, 10));        // claims a fresh slot
  EXPECT_EQ(State().DeviceUsed(1), 10u);
}

TEST_F(FakeGpuState, TimelineSerialisesAndMeasuresUtilization) {
  uint64_t t0 = MonotonicNs();
  uint64_t e1 = State().Schedule(0, 10000000);
  uint64_t e2 = State().Schedule(0, 10000000);
  EXPECT_GE(e1, t0 + 10000000);
  EXPECT_EQ(e2, e1 + 10000000);  // back to back, device-wide
  EXPECT_EQ(State().BusyNsTotal(0), 20000000u);
  // Utilization over a window entirely inside the busy run: 100 %.
  EXPECT_EQ(State().Utilization(0, e2, 10000000), 100u);
  EXPECT_EQ(State().Utilization(0, e2 + 20000000, 40000000), 50u);
  EXPECT_EQ(State().Utilization(1, e2, 10000000), 0u);
}

TEST_F(FakeGpuState, BusyRunsAreTheirProcesssWork) {
  const uint64_t ms = 1000000;
  uint64_t t0 = MonotonicNs();
  State().Schedule(0, 10 * ms, 0, 7, 0, false, /*pid=*/7);
  State().Schedule(0, 10 * ms, 0, 7, 0, false, 7);  // extends the run of pid 7
  uint64_t end = State().Schedule(0, 5 * ms, 0, 9, 0, false, 9);
  auto busy = State().BusyByProcess(0, t0, end);
  ASSERT_EQ(busy.size(), 2u);
  std::sort(busy.begin(), busy.end(), [](auto& a, auto& b) { return a.pid < b.pid; });
  EXPECT_EQ(busy[0].pid, 7);
  EXPECT_EQ(busy[0].busy_ns, 20 * ms);
  EXPECT_EQ(busy[1].pid, 9);
  EXPECT_EQ(busy[1].busy_ns, 5 * ms);
  // A window over part of it; the device-wide utilization is their sum.
  busy = State().BusyByProcess(0, end - 10 * ms, end);
  ASSERT_EQ(busy.size(), 2u);
  EXPECT_EQ(busy[0].busy_ns + busy[1].busy_ns, 10 * ms);
  EXPECT_EQ(State().Utilization(0, end, 10 * ms), 100u);
  EXPECT_TRUE(State().BusyByProcess(1, t0, end).empty());
  // Without a pid the run is the calling process's.
  uint64_t mine = State().Schedule(0, ms);
  busy = State().BusyByProcess(0, end, mine);
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].pid, getpid());
}

TEST_F(FakeGpuState, OwnStreamsOverlapOnlyWithOverlapOn) {
  const uint64_t ms = 1000000;
  uint64_t t0 = MonotonicNs();
  uint64_t a = State().Schedule(1, 10 * ms, 0, /*owner=*/7, 0, /*overlap_own=*/true);
  // Another stream of the same owner runs alongside: ends about 10 ms from now, not 20.
  uint64_t b = State().Schedule(1, 10 * ms, 0, 7, 0, true);
  EXPECT_LT(b, a + 5 * ms);
  EXPECT_EQ(State().BusyUntil(1), std::max(a, b));
  EXPECT_EQ(State().StartBound(1, 7, true), 0u);  // an event of owner 7 need not wait
  EXPECT_EQ(State().StartBound(1, 8, true), std::max(a, b));
  // Another owner waits for both, and so does the same owner's work without overlap.
  uint64_t c = State().Schedule(1, ms, 0, 8, 0, true);
  EXPECT_GE(c, std::max(a, b) + ms);
  uint64_t d = State().Schedule(1, ms, 0, 8, 0, false);
  EXPECT_EQ(d, c + ms);
  EXPECT_GE(a, t0 + 10 * ms);
}

}  // namespace
}  // namespace hami::fakegpu::testing
