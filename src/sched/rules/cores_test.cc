#include "sched/rules/cores.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleCores, Table) {
  struct Case {
    const char* name;
    int32_t used, want_cores;
    Reason want;
  } cases[] = {
      {"fits", 0, 30, Reason::kFits},
      {"exactly all", 70, 30, Reason::kFits},
      {"one short", 80, 30, Reason::kInsufficientCores},
      {"0-core slice on a card with cores left", 99, 0, Reason::kFits},
      {"0-core slice on a card with none left", 100, 0, Reason::kInsufficientCores},
      {"0-core slice on an over-committed card", 120, 0, Reason::kInsufficientCores},
  };
  for (const Case& c : cases)
    EXPECT_EQ(CheckCores(Slot(), Use(0, c.used), Req(1, c.want_cores)), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
