// Rule "GpuUuid": nvidia.com/use-gpuuuid and nouse-gpuuuid, exact and case-sensitive UUIDs.
// Rejects with kUuidNotIncluded or kUuidExcluded; inclusion is checked first.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "sched/reason.h"

namespace hami::sched::rules {

inline Reason CheckUuid(std::string_view uuid, const std::vector<std::string>& use,
                        const std::vector<std::string>& nouse) {
  if (!use.empty() && std::find(use.begin(), use.end(), uuid) == use.end())
    return Reason::kUuidNotIncluded;
  if (std::find(nouse.begin(), nouse.end(), uuid) != nouse.end()) return Reason::kUuidExcluded;
  return Reason::kFits;
}

}  // namespace hami::sched::rules
