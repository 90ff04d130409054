// Namespace labels for the webhook's `hami.io/webhook=ignore` on namespaces, read from the API
// server and kept for a while (a namespace's labels rarely change; admission is on the pod
// creation path and must not cost an API call per pod).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "k8s/client/kube_client.h"
#include "k8s/extender/webhook.h"

namespace hami::k8s {

class NamespaceLabelCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `client` must outlive the cache. `max_entries` bounds memory: when full, every entry is
  // dropped (they are cheap to read again).
  NamespaceLabelCache(KubeClient* client, std::chrono::seconds ttl = std::chrono::seconds(60),
                      std::size_t max_entries = 10000, Clock clock = nullptr);

  // The labels of `ns` (empty map when it has none); nullopt when the namespace cannot be read
  // (not cached: the next call asks again).
  std::optional<std::map<std::string, std::string>> Get(const std::string& ns);
  // Get as the webhook's NamespaceLabels callback; the cache must outlive it.
  NamespaceLabels AsCallback();
  std::size_t size() const;

 private:
  struct Entry {
    std::chrono::steady_clock::time_point read;
    std::map<std::string, std::string> labels;
  };
  KubeClient* client_;
  std::chrono::seconds ttl_;
  std::size_t max_entries_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace hami::k8s
