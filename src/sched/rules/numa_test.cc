#include "sched/rules/numa.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleNuma, Table) {
  struct Case {
    const char* name;
    std::vector<int> numa;     // NUMA node per GPU position
    std::vector<int> fitting;  // positions, best first
    std::vector<double> pref;  // per position
    int count;
    Reason want;
    int want_numa;
  } cases[] = {
      {"two GPUs on different nodes", {0, 1}, {0, 1}, {1, 1}, 2, Reason::kNuma, -1},
      {"two on node 1", {0, 1, 0, 1}, {1, 3, 2}, {0, 1, 0.5, 1}, 2, Reason::kFits, 1},
      {"higher sum wins", {0, 0, 1, 1}, {2, 3, 0, 1}, {0.1, 0.1, 0.9, 0.9}, 2, Reason::kFits, 1},
      {"tie: lowest NUMA id",
       {1, 1, 0, 0},
       {0, 1, 2, 3},
       {0.5, 0.5, 0.5, 0.5},
       2,
       Reason::kFits,
       0},
      {"single GPU: best node", {0, 1}, {1, 0}, {0.2, 0.8}, 1, Reason::kFits, 1},
      {"nothing fits", {0, 1}, {}, {0, 0}, 1, Reason::kNuma, -1},
  };
  for (const Case& c : cases) {
    std::vector<internal::GpuSlot> gpus;
    for (size_t i = 0; i < c.numa.size(); ++i)
      gpus.push_back(Slot(10000, 100, 10, c.numa[i], static_cast<int>(i)));
    int got = -1;
    EXPECT_EQ(ChooseNuma(gpus, c.fitting, c.pref, c.count, &got), c.want) << c.name;
    EXPECT_EQ(got, c.want_numa) << c.name;
  }
}

}  // namespace
}  // namespace hami::sched::rules
