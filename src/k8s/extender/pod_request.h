// Reading GPU requests out of core/v1 Pod JSON: the configured resource names per container
// (limits, falling back to requests; init containers first), Kubernetes quantities, the pod's
// HAMi annotations, and the scheduler's own annotations on a placed pod.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "sched/model.h"

namespace hami::k8s {

using Json = nlohmann::json;

struct ResourceNames {
  std::string count = "nvidia.com/gpu";
  std::string memory = "nvidia.com/gpumem";
  std::string memory_percentage = "nvidia.com/gpumem-percentage";
  std::string cores = "nvidia.com/gpucores";
  std::string priority = "nvidia.com/priority";
};

// Annotations written by the scheduler (SPEC 2.3).
inline constexpr char kVgpuNodeAnnotation[] = "hami.io/vgpu-node";
inline constexpr char kVgpuTimeAnnotation[] = "hami.io/vgpu-time";
inline constexpr char kBindTimeAnnotation[] = "hami.io/bind-time";
inline constexpr char kBindPhaseAnnotation[] = "hami.io/bind-phase";
inline constexpr char kWebhookLabel[] = "hami.io/webhook";

// A Kubernetes quantity as an integer: "3000", "2k", "1Gi", "1e3", "+5"; JSON integers too.
// Errors: kInvalidArgument for fractions ("500m", "1.5"), negative values, overflow, garbage.
StatusOr<int64_t> ParseQuantity(const Json& value);

// Whether any container asks for one of the managed resources (in limits or requests).
bool UsesManagedResources(const Json& pod, const ResourceNames& names);

// The pod's GPU request; memory values are multiplied by `memory_factor` (memoryFactor).
// Annotations are parsed with sched::ParsePodOptions. Errors: kInvalidArgument naming the
// container and resource or the annotation.
StatusOr<sched::PodRequest> PodRequestFromJson(const Json& pod, const ResourceNames& names,
                                               double memory_factor);

// The placement recorded on a pod by the scheduler (`hami.io/vgpu-devices-allocated`, else
// `...-to-allocate`), with its init-container count from the spec. nullopt when the pod carries
// none. Errors: kInvalidArgument from the codec.
StatusOr<std::optional<sched::PodPlacement>> PlacementFromPod(const Json& pod);

// Pod phase helpers.
std::string PodPhase(const Json& pod);     // status.phase
bool PodTerminated(const Json& pod);       // Succeeded or Failed
std::string PodNodeName(const Json& pod);  // spec.nodeName

}  // namespace hami::k8s
