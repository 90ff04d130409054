#include "sched/rules/gpu_type.h"

#include <gtest/gtest.h>

namespace hami::sched::rules {
namespace {

TEST(RuleGpuType, Table) {
  using V = std::vector<std::string>;
  struct Case {
    const char* name;
    const char* type_lower;
    V use, nouse;
    Reason want;
  } cases[] = {
      {"no lists", "nvidia-tesla t4", {}, {}, Reason::kFits},
      {"included as substring", "nvidia-a100-sxm4-80gb", {"h100", "a100-sxm"}, {}, Reason::kFits},
      {"not included", "nvidia-tesla t4", {"a100"}, {}, Reason::kTypeNotIncluded},
      {"excluded", "nvidia-tesla t4", {}, {"t4"}, Reason::kTypeExcluded},
      {"excluded among several", "nvidia-h100", {}, {"t4", "h100"}, Reason::kTypeExcluded},
      {"included and excluded: exclusion wins",
       "nvidia-a100",
       {"a100"},
       {"nvidia"},
       Reason::kTypeExcluded},
      {"not included is checked first", "nvidia-t4", {"a100"}, {"t4"}, Reason::kTypeNotIncluded},
      {"exclusion that does not match", "nvidia-a100", {}, {"t4"}, Reason::kFits},
  };
  for (const Case& c : cases) EXPECT_EQ(CheckType(c.type_lower, c.use, c.nouse), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
