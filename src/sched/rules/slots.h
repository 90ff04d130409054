// Rule "Slots": at most split_count slices (containers) share a card (deviceSplitCount).
// Rejects with kNoFreeSlot.
#pragma once

#include "sched/engine.h"

namespace hami::sched::rules {

inline Reason CheckSlots(const internal::GpuSlot& g, const GpuUsage& u) {
  return u.used_slices >= g.split_count ? Reason::kNoFreeSlot : Reason::kFits;
}

}  // namespace hami::sched::rules
