// Scheduling under quotas: the engine's Filter / Schedule with the owner's quota applied to what
// the pod would hold on each node (percentages of memory converted on that node's cards). Nodes
// that fit but would take the owner over its quota get Reason::kQuota and the named reason.
// Pure computation; the caller holds its lock over the ClusterState and the QuotaBook together.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "sched/engine.h"
#include "sched/quota.h"

namespace hami::sched {

// Whose quota a request counts against.
struct QuotaScope {
  const QuotaBook* book = nullptr;  // nullptr: no quotas
  std::string_view owner;
};

// Engine::Filter plus the quota. `quota_reason`, when given, receives the named reason of the
// first node refused for the quota ("namespace team-a would exceed its gpumem quota: 38/40 GiB
// used, 4 GiB asked"), or "" when none was. Errors: those of Engine::Filter.
StatusOr<FilterResult> FilterUnderQuota(const Engine& engine, const ClusterState& state,
                                        const PodRequest& pod,
                                        std::optional<std::span<const std::string>> candidates,
                                        const QuotaScope& quota,
                                        std::string* quota_reason = nullptr);

// Engine::Schedule plus the quota: the best node whose placement keeps the owner within its
// quota. A decision refused for the quota says so in summary.message. Errors: those of
// Engine::Schedule.
StatusOr<Decision> ScheduleUnderQuota(const Engine& engine, const ClusterState& state,
                                      const PodRequest& pod,
                                      std::optional<std::span<const std::string>> candidates,
                                      const QuotaScope& quota);

// The bind-time re-check of a chosen placement. Errors: kResourceExhausted with the named
// reason.
Status CheckPlacementQuota(const QuotaScope& quota, const PodPlacement& placement);

}  // namespace hami::sched
