// Pod lookup by UID (pod_resolver.h).
#include "monitor/pod_resolver.h"

#include <algorithm>

#include "common/log.h"

namespace hami::monitor {

Status KubePodResolver::Refresh() {
  k8s::ListOptions opts;
  opts.field_selector = "spec.nodeName=" + node_;
  auto list = client_->List(k8s::Resource::Pods(), opts);
  std::lock_guard lock(mu_);
  listed_at_ = std::chrono::steady_clock::now();
  if (!list.ok()) return list.status();
  std::map<std::string, PodRef> pods;
  for (const auto& item : list->items) {
    const auto meta = item.find("metadata");
    if (meta == item.end() || !meta->is_object()) continue;
    const auto str = [&](const char* key) {
      auto it = meta->find(key);
      return it != meta->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!str("uid").empty()) pods[str("uid")] = {str("namespace"), str("name")};
  }
  pods_ = std::move(pods);
  return Status::Ok();
}

std::optional<PodRef> KubePodResolver::Lookup(const std::string& pod_uid) {
  bool stale;
  {
    std::lock_guard lock(mu_);
    if (auto it = pods_.find(pod_uid); it != pods_.end()) return it->second;
    // Unknown UID: a new pod, or one that is gone. Relist, but not more than every second.
    stale = std::chrono::steady_clock::now() - listed_at_ >=
            std::min(refresh_, std::chrono::milliseconds(1000));
  }
  if (!stale) return std::nullopt;
  if (Status s = Refresh(); !s.ok()) log::Warn("cannot list pods of {}: {}", node_, s.ToString());
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

}  // namespace hami::monitor
