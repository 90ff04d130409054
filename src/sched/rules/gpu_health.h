// Rule "GpuHealth": a GPU the device plugin reports unhealthy takes no new slice.
// Rejects with kUnhealthy, the largest of the per-GPU selector reasons: a GPU the pod would
// otherwise take says "unhealthy" rather than "wrong type".
#pragma once

#include "sched/reason.h"

namespace hami::sched::rules {

inline Reason CheckHealth(bool healthy) { return healthy ? Reason::kFits : Reason::kUnhealthy; }

}  // namespace hami::sched::rules
