// Rule "Exclusive": a slice with cores >= 100 holds its card alone. Rejects with kCardExclusive
// (the card is already held so) or kCardInUse (an exclusive request needs an empty card).
#pragma once

#include "sched/engine.h"

namespace hami::sched::rules {

inline Reason CheckExclusive(const GpuUsage& u, const ResolvedContainer& r) {
  if (u.exclusive > 0) return Reason::kCardExclusive;
  if (r.exclusive() && u.used_slices > 0) return Reason::kCardInUse;
  return Reason::kFits;
}

}  // namespace hami::sched::rules
