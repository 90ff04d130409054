#include "sched/rules/gpu_uuid.h"

#include <gtest/gtest.h>

namespace hami::sched::rules {
namespace {

TEST(RuleGpuUuid, Table) {
  using V = std::vector<std::string>;
  struct Case {
    const char* name;
    const char* uuid;
    V use, nouse;
    Reason want;
  } cases[] = {
      {"no lists", "GPU-0", {}, {}, Reason::kFits},
      {"included", "GPU-1", {"GPU-0", "GPU-1"}, {}, Reason::kFits},
      {"not included", "GPU-2", {"GPU-0", "GPU-1"}, {}, Reason::kUuidNotIncluded},
      {"case-sensitive", "GPU-0", {"gpu-0"}, {}, Reason::kUuidNotIncluded},
      {"substring is not a match", "GPU-0", {"GPU"}, {}, Reason::kUuidNotIncluded},
      {"excluded", "GPU-0", {}, {"GPU-0"}, Reason::kUuidExcluded},
      {"included and excluded", "GPU-0", {"GPU-0"}, {"GPU-0"}, Reason::kUuidExcluded},
      {"not included is checked first", "GPU-0", {"GPU-1"}, {"GPU-0"}, Reason::kUuidNotIncluded},
  };
  for (const Case& c : cases) EXPECT_EQ(CheckUuid(c.uuid, c.use, c.nouse), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
