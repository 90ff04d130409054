#include "sched/rules/exclusive.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleExclusive, Table) {
  struct Case {
    const char* name;
    GpuUsage usage;
    ResolvedContainer req;
    Reason want;
  } cases[] = {
      {"shared slice on an empty card", Use(), Req(1000, 30), Reason::kFits},
      {"shared slice next to another", Use(1000, 30, 1), Req(1000, 30), Reason::kFits},
      {"card held exclusively", Use(10000, 100, 1, 1), Req(1000, 30), Reason::kCardExclusive},
      {"exclusive on an empty card", Use(), Req(0, 100, 100), Reason::kFits},
      {"exclusive on a used card", Use(1, 1, 1), Req(0, 100, 100), Reason::kCardInUse},
      {"exclusive on a held card says held", Use(10000, 100, 1, 1), Req(0, 100),
       Reason::kCardExclusive},
  };
  for (const Case& c : cases) EXPECT_EQ(CheckExclusive(c.usage, c.req), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
