// Rule "VgpuMode": with the pod's vgpu-mode annotation (hami-core, mig, mps), only GPUs in that
// mode qualify; without it, any. Rejects with kModeMismatch.
#pragma once

#include <optional>

#include "sched/model.h"
#include "sched/reason.h"

namespace hami::sched::rules {

inline Reason CheckMode(const std::optional<VgpuMode>& want, VgpuMode gpu_mode) {
  return want && *want != gpu_mode ? Reason::kModeMismatch : Reason::kFits;
}

}  // namespace hami::sched::rules
