#include "sched/rules/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace hami::sched::rules {
namespace {

// Every rejection reason is given by exactly one rule, and rules have distinct names: a log line
// or metric naming a reason leads to one file.
TEST(RuleRegistry, EveryReasonHasExactlyOneRule) {
  std::set<std::string_view> names;
  int seen[kReasonCount] = {};
  for (const RuleInfo& rule : AllRules()) {
    EXPECT_TRUE(names.insert(rule.name).second) << rule.name;
    EXPECT_FALSE(rule.reasons.empty()) << rule.name;
    for (Reason r : rule.reasons) ++seen[static_cast<int>(r)];
  }
  EXPECT_EQ(seen[0], 0) << "kFits is no rejection";
  for (int i = 1; i < kReasonCount; ++i)
    EXPECT_EQ(seen[i], 1) << ReasonName(static_cast<Reason>(i));
  EXPECT_EQ(RuleFor(Reason::kFits), nullptr);
  ASSERT_NE(RuleFor(Reason::kInsufficientMemory), nullptr);
  EXPECT_EQ(RuleFor(Reason::kInsufficientMemory)->name, "Memory");
  EXPECT_EQ(RuleFor(Reason::kCardInUse)->name, "Exclusive");
}

}  // namespace
}  // namespace hami::sched::rules
