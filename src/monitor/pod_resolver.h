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

#include "common/status.h"
#include "k8s/client/kube_client.h"

namespace hami::monitor {

struct PodRef {
  std::string ns, name;
};

class PodResolver {
 public:
  virtual ~PodResolver() = default;
  // The pod with this UID, or nullopt when unknown.
  virtual std::optional<PodRef> Lookup(const std::string& pod_uid) = 0;
};

// Lists the pods bound to `node` (field selector spec.nodeName) at most every `refresh`, and
// again (rate-limited) when asked for a UID it does not know. A failed list keeps the last one.
class KubePodResolver final : public PodResolver {
 public:
  KubePodResolver(std::unique_ptr<k8s::KubeClient> client, std::string node,
                  std::chrono::milliseconds refresh = std::chrono::seconds(30))
      : client_(std::move(client)), node_(std::move(node)), refresh_(refresh) {}
  std::optional<PodRef> Lookup(const std::string& pod_uid) override;
  // Errors: as KubeClient::List.
  Status Refresh();

 private:
  std::unique_ptr<k8s::KubeClient> client_;
  std::string node_;
  std::chrono::milliseconds refresh_;
  std::mutex mu_;
  std::map<std::string, PodRef> pods_;
  std::chrono::steady_clock::time_point listed_at_{};
};

}  // namespace hami::monitor
