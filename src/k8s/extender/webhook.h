// The mutating admission webhook (AdmissionReview v1): steers pods that ask for managed GPU
// resources to hami-scheduler, fills the defaults of SPEC 2.1, validates the user annotations
// of SPEC 2.2 and the resource values, and denies what cannot work (privileged containers with
// GPU resources, a preset nodeName). Pure: the HTTP layer passes bodies in and out.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/extender/pod_request.h"
#include "sched/model.h"

namespace hami::k8s {

struct WebhookOptions {
  ResourceNames names;
  double memory_factor = 1;
  sched::SchedulerConfig sched;  // defaults used for filling and validation
  std::string scheduler_name = "hami-scheduler";
  // HAMi's --force-overwrite-default-scheduler: pods naming "default-scheduler" become ours.
  // With false, as with any other scheduler's name, the pod passes untouched (HAMi's rule).
  bool force_overwrite_default_scheduler = true;
  // devices.nvidia.gpuCorePolicy (default | force | disable): anything but "default" is
  // injected as GPU_CORE_UTILIZATION_POLICY into GPU containers, as HAMi does.
  std::string gpu_core_policy = "default";
  // Ok unless the pod (namespace, resolved request) can never fit its namespace's GPU quota
  // (Extender::CheckQuotaEverFits); the reason is the denial message. Unset: no quota check.
  std::function<Status(const std::string& ns, const sched::ResolvedPod& pod)> quota_check;
};

// Labels of a namespace (for `hami.io/webhook=ignore` on namespaces); nullopt when unknown.
using NamespaceLabels =
    std::function<std::optional<std::map<std::string, std::string>>(const std::string& ns)>;

// Reviews one AdmissionReview request and returns the AdmissionReview response. Errors:
// kInvalidArgument when the body is not an AdmissionReview with a request (HTTP 400).
StatusOr<Json> ReviewAdmission(const Json& review, const WebhookOptions& options,
                               const NamespaceLabels& namespace_labels = nullptr);

// Escapes a JSON pointer token ("nvidia.com/gpu" -> "nvidia.com~1gpu").
std::string JsonPointerEscape(std::string_view token);

}  // namespace hami::k8s
