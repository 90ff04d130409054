// Rule "GpuType": nvidia.com/use-gputype and nouse-gputype, matched as case-insensitive
// substrings of the GPU's type (HAMi's meaning). Rejects with kTypeNotIncluded (no listed type
// matches) or kTypeExcluded (an excluded type matches); inclusion is checked first.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sched/reason.h"

namespace hami::sched::rules {

// All three in lower case (the engine lowers the pod's lists once per call and the node's types
// once per node update).
inline Reason CheckType(std::string_view type_lower, const std::vector<std::string>& use_lower,
                        const std::vector<std::string>& nouse_lower) {
  if (!use_lower.empty()) {
    bool any = false;
    for (const auto& t : use_lower)
      if (type_lower.find(t) != std::string_view::npos) any = true;
    if (!any) return Reason::kTypeNotIncluded;
  }
  for (const auto& t : nouse_lower)
    if (type_lower.find(t) != std::string_view::npos) return Reason::kTypeExcluded;
  return Reason::kFits;
}

}  // namespace hami::sched::rules
