#include "hostd/proc.h"

#include <gtest/gtest.h>

#include "hostd/test_util.h"

namespace hami::hostd {
namespace {

TEST(ProcTest, SelfIsAliveAndOthersAreNot) {
  ProcessRef me = Self();
  EXPECT_GT(me.start_ticks, 0u);
  EXPECT_TRUE(IsAlive(me));
  ProcessRef reused = me;
  reused.start_ticks += 1;  // same pid, another process
  EXPECT_FALSE(IsAlive(reused));
  EXPECT_FALSE(IsAlive(ProcessRef{0, 0}));
  EXPECT_FALSE(IsAlive(ProcessRef{-5, 0}));
}

TEST(ProcTest, DeadAndZombieChildrenAreNotAlive) {
  ProcessRef child = testing::SpawnSleeper();
  EXPECT_TRUE(IsAlive(child));
  kill(child.pid, SIGKILL);
  // Not reaped yet: a zombie counts as gone.
  for (int i = 0; i < 200 && IsAlive(child); ++i) usleep(1000);
  EXPECT_FALSE(IsAlive(child));
  int st;
  waitpid(child.pid, &st, 0);
  EXPECT_FALSE(IsAlive(child));
}

}  // namespace
}  // namespace hami::hostd
