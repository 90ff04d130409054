#include "sched/rules/slots.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleSlots, Table) {
  struct Case {
    const char* name;
    int32_t split;
    int32_t used;
    Reason want;
  } cases[] = {
      {"empty card", 10, 0, Reason::kFits},
      {"last slot", 2, 1, Reason::kFits},
      {"split count reached", 2, 2, Reason::kNoFreeSlot},
      {"split 1 taken", 1, 1, Reason::kNoFreeSlot},
      {"over the split (shrunk config)", 2, 3, Reason::kNoFreeSlot},
  };
  for (const Case& c : cases)
    EXPECT_EQ(CheckSlots(Slot(10000, 100, c.split), Use(0, 0, c.used)), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
