#include "sched/rules/vgpu_mode.h"

#include <gtest/gtest.h>

namespace hami::sched::rules {
namespace {

TEST(RuleVgpuMode, Table) {
  struct Case {
    const char* name;
    std::optional<VgpuMode> want_mode;
    VgpuMode gpu;
    Reason want;
  } cases[] = {
      {"no mode asked: mig GPU", std::nullopt, VgpuMode::kMig, Reason::kFits},
      {"no mode asked: hami-core GPU", std::nullopt, VgpuMode::kHamiCore, Reason::kFits},
      {"mps asked, mps GPU", VgpuMode::kMps, VgpuMode::kMps, Reason::kFits},
      {"hami-core asked, mig GPU", VgpuMode::kHamiCore, VgpuMode::kMig, Reason::kModeMismatch},
      {"mig asked, mps GPU", VgpuMode::kMig, VgpuMode::kMps, Reason::kModeMismatch},
  };
  for (const Case& c : cases) EXPECT_EQ(CheckMode(c.want_mode, c.gpu), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
