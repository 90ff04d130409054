// Why a node cannot take a pod: one named reason per rejection, shared by every rule
// (src/sched/rules/), the engine's summaries, the extender's FailedNodes and the metrics.
#pragma once

#include <cstdint>
#include <string>

#include "sched/model.h"

namespace hami::sched {

// Ordered from "far from fitting" to "almost fits": when the GPUs of a node fail for different
// reasons, the node reports the largest one. Each reason belongs to exactly one rule
// (rules/registry.h says which).
enum class Reason : uint8_t {
  kFits = 0,
  kNodeUnknown,         // not in the ClusterState (no register annotation yet)
  kNoGpu,               // the node has no GPU
  kTooFewGpus,          // a container asks for more GPUs than the node has
  kModeMismatch,        // GPU not in the requested vgpu-mode
  kTypeNotIncluded,     // nvidia.com/use-gputype does not match
  kTypeExcluded,        // nvidia.com/nouse-gputype matches
  kUuidNotIncluded,     // nvidia.com/use-gpuuuid does not list the GPU
  kUuidExcluded,        // nvidia.com/nouse-gpuuuid lists the GPU
  kUnhealthy,           // GPU reported unhealthy (but the pod would take it)
  kCardExclusive,       // the card is held exclusively by a slice with cores 100
  kCardInUse,           // an exclusive request (cores=100) needs an empty card
  kNoFreeSlot,          // split count reached
  kInsufficientMemory,  // not enough free GPU memory
  kInsufficientCores,   // not enough free GPU cores
  kNuma,                // enough GPUs, but not on one NUMA node (nvidia.com/numa-bind)
};
inline constexpr int kReasonCount = 16;
const char* ReasonName(Reason r);  // "InsufficientGPUMemory" etc., stable, for metrics/logs
const char* ReasonText(Reason r);  // "insufficient GPU memory" etc., for messages
// ReasonText with the pod's own words where they help: "no GPU of type A100 or H100",
// "only GPUs of excluded type T4", "no GPU in vgpu-mode mig". For FailedNodes messages.
std::string DescribeReason(Reason r, const PodOptions& options);

}  // namespace hami::sched
