// The rules by name and the reasons each one may give, as kube-scheduler's plugins are listed:
// for docs, logs and the test that every rejection reason belongs to exactly one rule.
#pragma once

#include <span>
#include <string_view>

#include "sched/reason.h"

namespace hami::sched::rules {

struct RuleInfo {
  std::string_view name;  // "Memory"
  std::string_view file;  // "sched/rules/memory.h"
  std::span<const Reason> reasons;
};

// In the order the engine applies them to a node.
std::span<const RuleInfo> AllRules();
// The rule that gives `r`; nullptr for kFits.
const RuleInfo* RuleFor(Reason r);

}  // namespace hami::sched::rules
