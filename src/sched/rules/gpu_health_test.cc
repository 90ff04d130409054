#include "sched/rules/gpu_health.h"

#include <gtest/gtest.h>

namespace hami::sched::rules {
namespace {

TEST(RuleGpuHealth, Table) {
  struct Case {
    bool healthy;
    Reason want;
  } cases[] = {{true, Reason::kFits}, {false, Reason::kUnhealthy}};
  for (const Case& c : cases) EXPECT_EQ(CheckHealth(c.healthy), c.want) << c.healthy;
}

}  // namespace
}  // namespace hami::sched::rules
