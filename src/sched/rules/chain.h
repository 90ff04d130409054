// The rule chain: which rules run, in which order, on each GPU. Selector rules depend only on
// the pod and the GPU (checked once per GPU per call); capacity rules on the GPU's usage as the
// pod's containers are placed one by one. The first rule that rejects names the reason.
#pragma once

#include <cstddef>

#include "sched/pod_context.h"
#include "sched/rules/cores.h"
#include "sched/rules/exclusive.h"
#include "sched/rules/gpu_health.h"
#include "sched/rules/gpu_type.h"
#include "sched/rules/gpu_uuid.h"
#include "sched/rules/memory.h"
#include "sched/rules/slots.h"
#include "sched/rules/vgpu_mode.h"

namespace hami::sched::rules {

// VgpuMode, GpuType, GpuUuid, then GpuHealth: an unhealthy GPU the pod would take reports
// itself as unhealthy.
inline Reason SelectorCheck(const internal::NodeEntry& n, size_t i, const internal::PodCtx& ctx) {
  const internal::GpuSlot& g = n.gpus[i];
  const Reason health = CheckHealth(g.healthy);
  if (!ctx.has_static_filters) return health;
  const PodOptions& o = ctx.pod->options;
  Reason why = CheckMode(o.mode, g.mode);
  if (why != Reason::kFits) return why;
  why = CheckType(n.types_lower[i], ctx.use_types, ctx.nouse_types);
  if (why != Reason::kFits) return why;
  why = CheckUuid(n.info.gpus[i].uuid, o.use_uuids, o.nouse_uuids);
  if (why != Reason::kFits) return why;
  return health;
}

// Exclusive, Slots, Memory, then Cores.
inline Reason CapacityCheck(const internal::GpuSlot& g, const GpuUsage& u,
                            const ResolvedContainer& r) {
  Reason why = CheckExclusive(u, r);
  if (why != Reason::kFits) return why;
  why = CheckSlots(g, u);
  if (why != Reason::kFits) return why;
  why = CheckMemory(g, u, r);
  if (why != Reason::kFits) return why;
  return CheckCores(g, u, r);
}

}  // namespace hami::sched::rules
