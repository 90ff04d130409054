// List-then-watch loop with a local cache (client-go's Reflector + Indexer in one): lists the
// resource, replays the difference to the handlers, watches from the list's resourceVersion,
// re-watches from the last seen version when a stream ends and relists on 410 Gone. Handlers
// run on the reflector's thread, one at a time, in event order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client/kube_client.h"

namespace hami::k8s {

struct ReflectorHandlers {
  std::function<void(const Json& obj)> on_add;
  std::function<void(const Json& old_obj, const Json& new_obj)> on_update;
  std::function<void(const Json& obj)> on_delete;
  // After every (re)list has been replayed; `first` on the initial one.
  std::function<void(bool first)> on_synced;
};

struct ReflectorStats {
  uint64_t lists = 0;
  uint64_t watches = 0;
  uint64_t gone = 0;
  uint64_t errors = 0;
  uint64_t events = 0;
};

class Reflector {
 public:
  Reflector(KubeClient* client, Resource resource, ListOptions options, ReflectorHandlers h);
  ~Reflector();  // Stops.

  void Start();
  void Stop();
  // True once the first list has been replayed.
  bool synced() const { return synced_.load(); }
  // Waits for the first sync; false on timeout.
  bool WaitForSync(std::chrono::milliseconds timeout);

  // Cached object by key ("ns/name" or "name"); empty optional when absent.
  std::optional<Json> GetCached(const std::string& key) const;
  std::vector<Json> ListCached() const;
  std::string last_resource_version() const;
  ReflectorStats stats() const;

  // Backoff between failed attempts (tests shorten it).
  void set_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  // Server-side watch timeout asked for each stream (0: none).
  void set_watch_timeout_seconds(int s) { watch_timeout_s_ = s; }

 private:
  void Run();
  Status ListAndReplay(bool first);
  void Apply(const WatchEvent& ev);
  bool SleepBackoff(std::chrono::milliseconds d);

  KubeClient* client_;
  Resource resource_;
  ListOptions options_;
  ReflectorHandlers handlers_;
  std::thread thread_;
  CancelToken cancel_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::atomic<int> watch_timeout_s_{300};
  std::chrono::milliseconds backoff_initial_{200}, backoff_max_{5000};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Json> cache_;
  std::string rv_;
  ReflectorStats stats_;
};

}  // namespace hami::k8s
