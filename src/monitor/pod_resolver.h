// Pod names for container directories that carry no allocation record: HAMi's own device plugin
// writes <hookPath>/vgpu/containers/<podUID>_<container> but no pod.json, so the monitor looks
// the pod UID up among the node's pods, as HAMi's vGPUmonitor does with its pod informer.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "k8s/client/kube_client.h"

namespace hami::monitor {

struct PodRef {
  std::string ns, name;
};

// One MIG device HAMi's device plugin realised for a container, from the pod annotation
// hami.io/vgpu-mig-allocations (HAMi's dynamic MIG); what HAMi's monitor exports as
// hami_mig_device_info.
struct MigAllocation {
  std::string ns, pod, container;
  int device_index = 0;
  std::string gpu_uuid, mig_uuid, profile;
  unsigned gpu_instance_id = 0, compute_instance_id = 0;
};

class PodResolver {
 public:
  virtual ~PodResolver() = default;
  // The pod with this UID, or nullopt when unknown.
  virtual std::optional<PodRef> Lookup(const std::string& pod_uid) = 0;
  // The realised MIG allocations of the node's pods (those with a MIG UUID and both instance
  // IDs, as HAMi's monitor requires).
  virtual std::vector<MigAllocation> MigAllocations() { return {}; }
};

// Parses one pod's hami.io/vgpu-mig-allocations value. `containers` are the pod's init
// containers then its containers (HAMi's containerIndex counts them so). Entries not yet
// realised (no MIG UUID or instance IDs) are left out. Errors: kInvalidArgument naming the
// problem (not a JSON array, a field of the wrong type, a container index out of range).
StatusOr<std::vector<MigAllocation>> ParseMigAllocations(
    std::string_view json_text, const std::vector<std::string>& containers);

// Lists the pods bound to `node` (field selector spec.nodeName) at most every `refresh`, and
// again (rate-limited) when asked for a UID it does not know. A failed list keeps the last one.
class KubePodResolver final : public PodResolver {
 public:
  KubePodResolver(std::unique_ptr<k8s::KubeClient> client, std::string node,
                  std::chrono::milliseconds refresh = std::chrono::seconds(30))
      : client_(std::move(client)), node_(std::move(node)), refresh_(refresh) {}
  std::optional<PodRef> Lookup(const std::string& pod_uid) override;
  // Relists when the last list is older than `refresh`.
  std::vector<MigAllocation> MigAllocations() override;
  // Errors: as KubeClient::List.
  Status Refresh();

 private:
  std::unique_ptr<k8s::KubeClient> client_;
  std::string node_;
  std::chrono::milliseconds refresh_;
  std::mutex mu_;
  std::map<std::string, PodRef> pods_;
  std::vector<MigAllocation> migs_;
  std::chrono::steady_clock::time_point listed_at_{};
};

}  // namespace hami::monitor
