// Rule "Cores": the slice's cores fit in what the card has free; a slice asking for 0 cores
// still needs a card whose cores are not all taken (it would otherwise get no time at all).
// Rejects with kInsufficientCores.
#pragma once

#include "sched/engine.h"

namespace hami::sched::rules {

inline Reason CheckCores(const internal::GpuSlot& g, const GpuUsage& u,
                         const ResolvedContainer& r) {
  const bool short_of = r.cores > 0 ? u.used_cores + r.cores > g.cores : u.used_cores >= g.cores;
  return short_of ? Reason::kInsufficientCores : Reason::kFits;
}

}  // namespace hami::sched::rules
