// The rule list (registry.h).
#include "sched/rules/registry.h"

#include <array>

namespace hami::sched::rules {
namespace {

constexpr Reason kRegistered[] = {Reason::kNodeUnknown};
constexpr Reason kCount[] = {Reason::kNoGpu, Reason::kTooFewGpus};
constexpr Reason kMode[] = {Reason::kModeMismatch};
constexpr Reason kType[] = {Reason::kTypeNotIncluded, Reason::kTypeExcluded};
constexpr Reason kUuid[] = {Reason::kUuidNotIncluded, Reason::kUuidExcluded};
constexpr Reason kHealth[] = {Reason::kUnhealthy};
constexpr Reason kExclusive[] = {Reason::kCardExclusive, Reason::kCardInUse};
constexpr Reason kSlots[] = {Reason::kNoFreeSlot};
constexpr Reason kMemory[] = {Reason::kInsufficientMemory};
constexpr Reason kCores[] = {Reason::kInsufficientCores};
constexpr Reason kNumaReasons[] = {Reason::kNuma};

const std::array<RuleInfo, 11> kRules = {{
    {"NodeRegistered", "sched/engine.cc", kRegistered},
    {"GpuCount", "sched/rules/gpu_count.h", kCount},
    {"VgpuMode", "sched/rules/vgpu_mode.h", kMode},
    {"GpuType", "sched/rules/gpu_type.h", kType},
    {"GpuUuid", "sched/rules/gpu_uuid.h", kUuid},
    {"GpuHealth", "sched/rules/gpu_health.h", kHealth},
    {"Exclusive", "sched/rules/exclusive.h", kExclusive},
    {"Slots", "sched/rules/slots.h", kSlots},
    {"Memory", "sched/rules/memory.h", kMemory},
    {"Cores", "sched/rules/cores.h", kCores},
    {"Numa", "sched/rules/numa.h", kNumaReasons},
}};

}  // namespace

std::span<const RuleInfo> AllRules() { return kRules; }

const RuleInfo* RuleFor(Reason r) {
  for (const RuleInfo& rule : kRules)
    for (Reason x : rule.reasons)
      if (x == r) return &rule;
  return nullptr;
}

}  // namespace hami::sched::rules
