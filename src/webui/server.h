// The web UI as a component of an existing HTTP server: a cached Snapshot from the
// DataProvider (collected at most once per snapshot_ttl however many viewers poll), a sampler
// thread feeding the History, and the GET routes (the embedded page and /ui/api/...). The
// host process keeps its own listener and identity rules; this only adds routes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "webui/api.h"
#include "webui/history.h"
#include "webui/model.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace hami::webui {

struct WebUiOptions {
  HistoryOptions history;
  // A snapshot younger than this is served as is; older ones are collected again on demand.
  std::chrono::milliseconds snapshot_ttl{500};
  size_t cache_entries = 512;  // answers kept per snapshot
  std::string prefix = "/ui";  // page at <prefix>/, JSON at <prefix>/api/...
};

struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Who is asking, as the host process's identity rules decide (docs/webui.md). An administrator
// sees everything; anybody else sees every card and workload but the command lines of other
// users' workloads only as "" (as `hami ps` shows them).
struct Viewer {
  bool admin = true;
  std::string user;  // matched against WorkloadRow::user when not admin
};
// Decides the viewer of an API request, or refuses it (the Status becomes 401 for
// kPermissionDenied with `www_authenticate` set by the gate's owner, else 403). The page's
// files are public (they carry no data), so a browser can load the page that asks for a token.
using Gate = std::function<StatusOr<Viewer>(const httplib::Request&)>;

class WebUi {
 public:
  WebUi(std::unique_ptr<DataProvider> provider, WebUiOptions options = {});
  ~WebUi();  // Stop()s
  WebUi(const WebUi&) = delete;
  WebUi& operator=(const WebUi&) = delete;

  // The sampler: every history interval, a fresh snapshot into the History.
  void Start();
  void Stop();

  // The current snapshot (collected now if the cached one is older than snapshot_ttl).
  std::shared_ptr<const Snapshot> Current();
  // Collects now and records it in the History at `tick` (the sampler's step; tests call it).
  void SampleAt(int64_t tick);

  // A GET of `path` (starting with the prefix) with decoded query parameters. Unknown paths
  // are 404, bad parameters 400; both with a JSON error body.
  Reply Handle(const std::string& path, const std::multimap<std::string, std::string>& params,
               const Viewer& viewer = {});
  // Registers GET <prefix>, <prefix>/... on `server` (answered by Handle) and `/` as a
  // redirect to <prefix>/ when `root_redirect`.
  // `gate` (may be null: everybody is an administrator) runs before every API request.
  void Register(httplib::Server& server, bool root_redirect = true, Gate gate = nullptr);

  History& history() { return history_; }
  const WebUiOptions& options() const { return options_; }

 private:
  Reply Api(const std::string& route, const std::multimap<std::string, std::string>& params,
            const Viewer& viewer);
  Reply Compute(const Snapshot& s, const std::string& head, const std::string& rest, const Query& q,
                const std::string& route) const;
  Reply Asset(const std::string& name) const;
  std::shared_ptr<const Snapshot> Collect();

  WebUiOptions options_;
  std::unique_ptr<DataProvider> provider_;
  History history_;

  std::mutex provider_mu_;  // one collection at a time
  std::mutex collect_mu_;   // guards the three below
  std::shared_ptr<const Snapshot> current_;
  std::chrono::steady_clock::time_point current_at_{};
  bool collecting_ = false;

  // Answers computed from the current snapshot, by route and parameters: 20 viewers polling
  // the same page cost one scan per snapshot, not twenty. Cleared when the snapshot changes.
  std::mutex cache_mu_;
  const Snapshot* cache_of_ = nullptr;
  std::shared_ptr<const Snapshot> cache_keep_;  // keeps cache_of_ from being reused
  std::unordered_map<std::string, Reply> cache_;

  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool stop_ = false;
  std::thread sampler_;
};

}  // namespace hami::webui
