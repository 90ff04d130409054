// Rule "GpuCount": the node has GPUs, and at least as many as one container asks for.
// Rejects with kNoGpu or kTooFewGpus. Node-level; checked before any GPU is looked at.
#pragma once

#include <cstddef>

#include "sched/reason.h"

namespace hami::sched::rules {

inline Reason CheckGpuCount(size_t node_gpus, int count) {
  if (node_gpus == 0) return Reason::kNoGpu;
  if (static_cast<size_t>(count) > node_gpus) return Reason::kTooFewGpus;
  return Reason::kFits;
}

}  // namespace hami::sched::rules
