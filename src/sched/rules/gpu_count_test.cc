#include "sched/rules/gpu_count.h"

#include <gtest/gtest.h>

namespace hami::sched::rules {
namespace {

TEST(RuleGpuCount, Table) {
  struct Case {
    const char* name;
    size_t gpus;
    int count;
    Reason want;
  } cases[] = {
      {"no GPU on node", 0, 1, Reason::kNoGpu}, {"no GPU beats too few", 0, 8, Reason::kNoGpu},
      {"one of one", 1, 1, Reason::kFits},      {"two of one", 1, 2, Reason::kTooFewGpus},
      {"eight of eight", 8, 8, Reason::kFits},  {"nine of eight", 8, 9, Reason::kTooFewGpus},
  };
  for (const Case& c : cases) EXPECT_EQ(CheckGpuCount(c.gpus, c.count), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
