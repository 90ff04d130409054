// Names and texts of the rejection reasons (reason.h).
#include "sched/reason.h"

namespace hami::sched {

const char* ReasonName(Reason r) {
  switch (r) {
    case Reason::kFits:
      return "Fits";
    case Reason::kNodeUnknown:
      return "NodeUnknown";
    case Reason::kNoGpu:
      return "NoGPU";
    case Reason::kTooFewGpus:
      return "TooFewGPUs";
    case Reason::kUnhealthy:
      return "GPUUnhealthy";
    case Reason::kModeMismatch:
      return "VGPUModeMismatch";
    case Reason::kTypeNotIncluded:
      return "GPUTypeNotIncluded";
    case Reason::kTypeExcluded:
      return "GPUTypeExcluded";
    case Reason::kUuidNotIncluded:
      return "GPUUUIDNotIncluded";
    case Reason::kUuidExcluded:
      return "GPUUUIDExcluded";
    case Reason::kCardExclusive:
      return "CardExclusive";
    case Reason::kCardInUse:
      return "CardInUse";
    case Reason::kNoFreeSlot:
      return "NoFreeSlot";
    case Reason::kInsufficientMemory:
      return "InsufficientGPUMemory";
    case Reason::kInsufficientCores:
      return "InsufficientGPUCores";
    case Reason::kNuma:
      return "NUMA";
  }
  return "Unknown";
}

const char* ReasonText(Reason r) {
  switch (r) {
    case Reason::kFits:
      return "fits";
    case Reason::kNodeUnknown:
      return "node not registered (no GPU annotation)";
    case Reason::kNoGpu:
      return "no GPU on node";
    case Reason::kTooFewGpus:
      return "fewer GPUs than requested";
    case Reason::kUnhealthy:
      return "GPU unhealthy";
    case Reason::kModeMismatch:
      return "no GPU in requested vgpu-mode";
    case Reason::kTypeNotIncluded:
      return "no GPU of requested type";
    case Reason::kTypeExcluded:
      return "GPU type excluded";
    case Reason::kUuidNotIncluded:
      return "no GPU with requested UUID";
    case Reason::kUuidExcluded:
      return "GPU UUID excluded";
    case Reason::kCardExclusive:
      return "GPU used exclusively";
    case Reason::kCardInUse:
      return "no empty GPU for exclusive use";
    case Reason::kNoFreeSlot:
      return "no free GPU slot";
    case Reason::kInsufficientMemory:
      return "insufficient GPU memory";
    case Reason::kInsufficientCores:
      return "insufficient GPU cores";
    case Reason::kNuma:
      return "not enough GPUs on one NUMA node";
  }
  return "unknown";
}

std::string DescribeReason(Reason r, const PodOptions& o) {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? " or " : "") + v[i];
    return out;
  };
  switch (r) {
    case Reason::kTypeNotIncluded:
      return "no GPU of type " + join(o.use_types);
    case Reason::kTypeExcluded:
      return "only GPUs of excluded type " + join(o.nouse_types);
    case Reason::kModeMismatch:
      return std::string("no GPU in vgpu-mode ") + (o.mode ? VgpuModeName(*o.mode) : "?");
    default:
      return ReasonText(r);
  }
}

}  // namespace hami::sched
