#include "sched/rules/memory.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleMemory, Table) {
  struct Case {
    const char* name;
    int64_t card, used;
    ResolvedContainer req;
    int64_t need;
    Reason want;
  } cases[] = {
      {"fits", 10000, 0, Req(1000), 1000, Reason::kFits},
      {"exactly full fits", 10000, 9000, Req(1000), 1000, Reason::kFits},
      {"one MiB short", 10000, 9001, Req(1000), 1000, Reason::kInsufficientMemory},
      {"percentage of this card", 10000, 5000, Req(0, 0, 50), 5000, Reason::kFits},
      {"percentage too much", 10000, 5000, Req(0, 0, 60), 6000, Reason::kInsufficientMemory},
      {"percentage of a bigger card", 80000, 5000, Req(0, 0, 50), 40000, Reason::kFits},
      {"whole card", 10000, 1, Req(0, 0, 100), 10000, Reason::kInsufficientMemory},
      {"MiB wins over percentage", 10000, 0, Req(2000, 0, 90), 2000, Reason::kFits},
  };
  for (const Case& c : cases) {
    auto g = Slot(c.card);
    EXPECT_EQ(NeedMem(g, c.req), c.need) << c.name;
    EXPECT_EQ(CheckMemory(g, Use(c.used), c.req), c.want) << c.name;
  }
}

}  // namespace
}  // namespace hami::sched::rules
