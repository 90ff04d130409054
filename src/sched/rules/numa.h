// Rule "Numa": with nvidia.com/numa-bind, a container's GPUs all come from one NUMA node.
// Rejects with kNuma when no NUMA node has `count` fitting GPUs.
#pragma once

#include <span>
#include <vector>

#include "sched/engine.h"

namespace hami::sched::rules {

// `fitting`: positions (into `gpus`) of the GPUs that passed every other rule, sorted best
// first; `pref`: preference per position (higher is better). Picks the NUMA node whose best
// `count` GPUs have the highest preference sum, ties to the lowest NUMA id, into *numa.
Reason ChooseNuma(const std::vector<internal::GpuSlot>& gpus, std::span<const int> fitting,
                  std::span<const double> pref, int count, int* numa);

}  // namespace hami::sched::rules
