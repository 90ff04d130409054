#include "compute_board.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

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
