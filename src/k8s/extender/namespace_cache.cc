// NamespaceLabelCache (namespace_cache.h).
#include "k8s/extender/namespace_cache.h"

namespace hami::k8s {

NamespaceLabelCache::NamespaceLabelCache(KubeClient* client, std::chrono::seconds ttl,
                                         std::size_t max_entries, Clock clock)
    : client_(client), ttl_(ttl), max_entries_(max_entries), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

std::optional<std::map<std::string, std::string>> NamespaceLabelCache::Get(const std::string& ns) {
  const auto now = clock_();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(ns);
    if (it != entries_.end() && now - it->second.read < ttl_) return it->second.labels;
  }
  // The API call runs without the lock: one slow read must not hold up other namespaces.
  auto obj = client_->Get(Resource::Namespaces(), "", ns);
  if (!obj.ok()) return std::nullopt;
  std::map<std::string, std::string> labels;
  const Json* meta = obj->is_object() && obj->contains("metadata") ? &(*obj)["metadata"] : nullptr;
  if (meta && meta->is_object() && meta->contains("labels") && (*meta)["labels"].is_object()) {
    for (const auto& [k, v] : (*meta)["labels"].items()) {
      if (v.is_string()) labels[k] = v.get<std::string>();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= max_entries_ && !entries_.count(ns)) entries_.clear();
  entries_[ns] = Entry{now, labels};
  return labels;
}

NamespaceLabels NamespaceLabelCache::AsCallback() {
  return [this](const std::string& ns) { return Get(ns); };
}

std::size_t NamespaceLabelCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace hami::k8s
