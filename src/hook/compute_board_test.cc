#include "compute_board.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace hami::vgpu {
namespace {

constexpr uint64_t kMs = 1000000;

TEST(ComputeBoard, ContainersSeeEachOtherWithinTheWindow) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  b.MarkActive(11, 1000 * kMs);
  EXPECT_FALSE(b.OthersActive(11, 1000 * kMs, 500 * kMs)) << "itself is not contention";
  EXPECT_TRUE(b.OthersActive(22, 1200 * kMs, 500 * kMs));
  EXPECT_FALSE(b.OthersActive(22, 1600 * kMs, 500 * kMs)) << "stale activity expires";
  b.MarkActive(11, 1700 * kMs);
  EXPECT_TRUE(b.OthersActive(22, 1700 * kMs, 500 * kMs));
}

TEST(ComputeBoard, FullTableRecyclesTheStalestEntry) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  for (int i = 0; i < kBoardContainers; ++i) b.MarkActive(100 + i, (10 + i) * kMs);
  b.MarkActive(9999, 5000 * kMs);
  EXPECT_TRUE(b.OthersActive(1, 5000 * kMs, 1 * kMs));
  EXPECT_EQ(mem.containers[0].id, 9999u);
}

TEST(ComputeBoard, HigherPriorityWorkIsVisibleToLowerOnly) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  b.PublishLaunch(0, 100 * kMs, 3 * kMs);
  b.PublishLaunch(0, 100 * kMs, 3 * kMs);  // queued behind the first
  EXPECT_EQ(b.HigherBusyUntil(1, 101 * kMs, 1000 * kMs), 106 * kMs);
  EXPECT_EQ(b.HigherBusyUntil(0, 101 * kMs, 1000 * kMs), 0u) << "nothing outranks 0";
  EXPECT_EQ(b.HigherBusyUntil(5, 101 * kMs, 1000 * kMs), 106 * kMs);
  EXPECT_EQ(b.HigherBusyUntil(1, 2000 * kMs, 1000 * kMs), 0u) << "gone quiet";
  b.PublishLaunch(1, 3000 * kMs, kMs);
  EXPECT_EQ(b.HigherBusyUntil(1, 3000 * kMs, 1000 * kMs), 0u) << "equal priority never yields";
}

constexpr uint64_t kUs = 1000;

TEST(ComputeBoard, OneContainerHoldsTheTurnAtATime) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  const uint64_t t = 1000 * kMs;
  EXPECT_EQ(b.TurnAcquire(1, t, 20 * kMs, 200 * kUs), 0u) << "free turn: taken at once";
  EXPECT_TRUE(b.TurnHeldBy(1));
  b.TurnLaunched(1, t, 4 * kMs);  // 4 ms of work queued
  uint64_t w = b.TurnAcquire(2, t + kMs, 20 * kMs, 200 * kUs);
  EXPECT_GT(w, 0u) << "held by another container";
  EXPECT_LE(w, kTurnLeaseNs);
  EXPECT_EQ(b.TurnAcquire(1, t + 2 * kMs, 20 * kMs, 200 * kUs), 0u) << "the owner keeps it";
  b.TurnRelease(2);  // not the owner: no effect
  EXPECT_TRUE(b.TurnHeldBy(1));
  b.TurnRelease(1);
  // Container 2 takes it and first waits for container 1's queue (ends at t + 4 ms) to drain,
  // less the 200 us overlap, holding the turn meanwhile.
  EXPECT_EQ(b.TurnAcquire(2, t + 3 * kMs, 20 * kMs, 200 * kUs), 800 * kUs);
  EXPECT_TRUE(b.TurnHeldBy(2));
  EXPECT_EQ(b.TurnAcquire(2, t + 3800 * kUs, 20 * kMs, 200 * kUs), 0u);
}

TEST(ComputeBoard, ALongTurnEndsWhenAnotherContainerWaits) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  const uint64_t t = 1000 * kMs;
  ASSERT_EQ(b.TurnAcquire(1, t, 20 * kMs, 0), 0u);
  for (uint64_t i = 0; i <= 30; ++i) {  // keeps launching 1 ms kernels
    EXPECT_EQ(b.TurnAcquire(1, t + i * kMs, 20 * kMs, 0), 0u) << "nobody waits: no limit";
    b.TurnLaunched(1, t + i * kMs, kMs);
  }
  EXPECT_GT(b.TurnAcquire(2, t + 31 * kMs, 20 * kMs, 0), 0u);  // asks, has to wait
  EXPECT_GT(b.TurnAcquire(1, t + 31500 * kUs, 20 * kMs, 0), 0u) << "turn over: gives it up";
  EXPECT_FALSE(b.TurnHeldBy(1));
  // The one that gave the turn up lets the waiting container go first...
  EXPECT_GT(b.TurnAcquire(1, t + 31600 * kUs, 20 * kMs, 0), 0u);
  EXPECT_FALSE(b.TurnHeldBy(1));
  // ...which takes it after the queue (busy until t + 31 ms... + 1 ms) drains.
  EXPECT_EQ(b.TurnAcquire(2, t + 33 * kMs, 20 * kMs, 0), 0u);
  EXPECT_TRUE(b.TurnHeldBy(2));
}

TEST(ComputeBoard, TakingTheTurnBackNeedsNoDrainOfOurOwnQueue) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  const uint64_t t = 1000 * kMs;
  ASSERT_EQ(b.TurnAcquire(1, t, 20 * kMs, 0), 0u);
  b.TurnLaunched(1, t, 5 * kMs);
  b.TurnRelease(1);  // bucket empty; nobody else wants the GPU
  EXPECT_EQ(b.TurnAcquire(1, t + kMs, 20 * kMs, 0), 0u) << "its own queue: no switch to wait for";
}

TEST(ComputeBoard, AWaiterIsWokenWhenTheTurnIsGivenBack) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  const uint64_t t = 1000 * kMs;
  ASSERT_EQ(b.TurnAcquire(1, t, 20 * kMs, 0), 0u);
  b.TurnLaunched(1, t, kMs);
  bool other = false;
  uint32_t seq = 0;
  ASSERT_GT(b.TurnAcquire(2, t, 20 * kMs, 0, &other, &seq), 0u);
  EXPECT_TRUE(other);
  auto start = std::chrono::steady_clock::now();
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.TurnRelease(1);
  });
  b.TurnWait(seq, 5000 * kMs);  // would sleep 5 s without the wake
  releaser.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_FALSE(b.TurnHeldBy(1));
  // A release that happened before the wait: returns at once (the counter moved).
  start = std::chrono::steady_clock::now();
  b.TurnWait(seq, 5000 * kMs);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST(ComputeBoard, ATurnLapsesWhenItsOwnerStopsOrDies) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  const uint64_t t = 1000 * kMs;
  ASSERT_EQ(b.TurnAcquire(1, t, 20 * kMs, 0), 0u);
  b.TurnLaunched(1, t, kMs);  // then never launches again (killed)
  EXPECT_GT(b.TurnAcquire(2, t + 2 * kMs, 20 * kMs, 0), 0u) << "lease still running";
  EXPECT_EQ(b.TurnAcquire(2, t + kMs + kTurnLeaseNs + 1, 20 * kMs, 0), 0u) << "lapsed";
  EXPECT_TRUE(b.TurnHeldBy(2));
  // Hostile values: a lease or drain far in the future does not stall anyone for long.
  mem.turn_owner = 7;
  mem.turn_lease = ~0ull;
  EXPECT_EQ(b.TurnAcquire(3, t + 10 * kMs, 20 * kMs, 0), 0u);
  mem.turn_owner = 0;
  mem.turn_busy_until = ~0ull;
  mem.turn_wanted_at = 0;
  EXPECT_LE(b.TurnAcquire(4, t + 20 * kMs, 20 * kMs, 0), kTurnMaxDrainNs);
}

TEST(ComputeBoard, HostileEntriesAreBounded) {
  BoardLayout mem{};
  Board b;
  b.Attach(&mem);
  mem.prio_last_launch[0] = 100 * kMs;
  mem.prio_busy_until[0] = ~0ull;
  EXPECT_EQ(b.HigherBusyUntil(1, 100 * kMs, 1000 * kMs), 100 * kMs + kBoardMaxClaimNs);
  mem.prio_last_launch[0] = 5000 * kMs;  // "in the future"
  EXPECT_EQ(b.HigherBusyUntil(1, 100 * kMs, 1000 * kMs), 0u);
}

TEST(ComputeBoard, OpenCreatesSharedFileAndRefusesForeignOnes) {
  char d[] = "/tmp/compute_boardXXXXXX";
  ASSERT_NE(mkdtemp(d), nullptr);
  std::string dir = std::string(d) + "/boards";
  char err[512];
  Board a, b;
  ASSERT_TRUE(a.Open(dir.c_str(), "GPU-x", err, sizeof(err))) << err;
  ASSERT_TRUE(b.Open(dir.c_str(), "GPU-x", err, sizeof(err))) << err;
  a.MarkActive(1, 50 * kMs);
  EXPECT_TRUE(b.OthersActive(2, 50 * kMs, kMs)) << "two mappings share one board";
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  std::ofstream(dir + "/GPU-y.board") << std::string(4096, 'x');
  Board c;
  EXPECT_FALSE(c.Open(dir.c_str(), "GPU-y", err, sizeof(err)));
  EXPECT_NE(std::string(err).find("not a GPU board"), std::string::npos) << err;
  EXPECT_EQ(system(("rm -rf " + std::string(d)).c_str()), 0);
}

TEST(ComputeBoard, ParsesTheMonitorsContentionFile) {
  ContentionInfo c;
  ASSERT_TRUE(
      ParseContention("# written by hami-vgpu-monitor\nALLOCATED_CONTAINERS=3\n"
                      "ACTIVE_CONTAINERS=2\nACTIVE_HIGH_PRIORITY=1\n"
                      "MIN_ACTIVE_PRIORITY=0\nUPDATED_UNIX_MS=1700000000000\n",
                      &c));
  EXPECT_EQ(c.active, 2);
  EXPECT_EQ(c.active_high, 1);
  EXPECT_EQ(c.min_priority, 0);
  EXPECT_EQ(c.updated_ms, 1700000000000);
  EXPECT_FALSE(ParseContention("ACTIVE_CONTAINERS=2\n", &c)) << "no timestamp";
  EXPECT_FALSE(ParseContention("ACTIVE_CONTAINERS=two\nUPDATED_UNIX_MS=1\n", &c));
  EXPECT_FALSE(ParseContention("ACTIVE_CONTAINERS=-4\nUPDATED_UNIX_MS=1\n", &c));
  EXPECT_FALSE(ParseContention("", &c));
  ASSERT_TRUE(ParseContention("ACTIVE_CONTAINERS=1\r\nUPDATED_UNIX_MS=5", &c));
  EXPECT_EQ(c.active, 1);
  EXPECT_FALSE(ReadContention("/nonexistent/contention", &c));
}

}  // namespace
}  // namespace hami::vgpu
