// Rule "Memory": the slice's memory fits in what the card has free. A percentage request is
// converted per card (HAMi: gpumem-percentage of that card's memory). Rejects with
// kInsufficientMemory; a card filled exactly still fits.
#pragma once

#include <cstdint>

#include "sched/engine.h"

namespace hami::sched::rules {

// MiB the container takes on `g`.
inline int64_t NeedMem(const internal::GpuSlot& g, const ResolvedContainer& r) {
  return r.memory_mib > 0 ? r.memory_mib : g.memory_mib * r.memory_percent / 100;
}

inline Reason CheckMemory(const internal::GpuSlot& g, const GpuUsage& u,
                          const ResolvedContainer& r) {
  return u.used_mem_mib + NeedMem(g, r) > g.memory_mib ? Reason::kInsufficientMemory
                                                       : Reason::kFits;
}

}  // namespace hami::sched::rules
