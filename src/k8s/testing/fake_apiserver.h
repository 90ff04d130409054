// An API-server test double: a real HTTP server on 127.0.0.1 with the REST semantics the
// control plane relies on. One global resourceVersion counter; list returns
// metadata.resourceVersion and honours limit/continue, label and field selectors; watch streams
// newline-delimited ADDED/MODIFIED/DELETED/BOOKMARK events from a resourceVersion, or an ERROR
// event with a 410 Status when that version has been compacted away; PUT and patches carrying a
// stale metadata.resourceVersion get 409 Conflict; PATCH accepts merge-patch+json,
// json-patch+json and strategic-merge-patch+json (treated as a merge patch) and answers 415 to
// anything else; POST pods/<name>/binding sets spec.nodeName once (409 when already bound or
// when the Binding's uid does not match). Error bodies are metav1.Status objects.
// Supported resources: pods, nodes, namespaces, events, resourcequotas (core/v1).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/client/client_config.h"

namespace hami::k8s::testing {

using Json = nlohmann::json;

class FakeApiServer {
 public:
  FakeApiServer();
  ~FakeApiServer();  // Stops.
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Listens on 127.0.0.1 at an ephemeral port. Errors: kUnavailable.
  Status Start();
  void Stop();
  std::string url() const;  // "http://127.0.0.1:<port>"
  int port() const;
  // A client configuration for this server: its url(), no client-side rate limit.
  ClientConfig client_config() const;

  // Store access without HTTP, with the same semantics and watch events as the REST calls.
  // `plural` is "pods", "nodes", "namespaces", "events" or "resourcequotas".
  StatusOr<Json> Create(const std::string& plural, const Json& obj);
  StatusOr<Json> Get(const std::string& plural, const std::string& ns, const std::string& name);
  std::vector<Json> List(const std::string& plural);
  // Replaces the stored object unconditionally (keeps uid), bumping the resourceVersion.
  StatusOr<Json> Replace(const std::string& plural, const Json& obj);
  // Applies a merge patch unconditionally.
  StatusOr<Json> MergePatch(const std::string& plural, const std::string& ns,
                            const std::string& name, const Json& patch);
  Status Delete(const std::string& plural, const std::string& ns, const std::string& name);
  uint64_t resource_version() const;

  // Fault injection and inspection.
  // Forgets the event history: watches from any older version get 410 Gone.
  void Compact();
  // Keeps at most `n` events of history (older ones are compacted).
  void set_history_limit(std::size_t n);
  // Ends every open watch stream (clients must re-watch).
  void CloseWatches();
  // The next `count` requests whose method matches (and whose path contains `path_part`) are
  // answered with `http_status` and a Status body instead of being served.
  void FailNext(const std::string& method, const std::string& path_part, int http_status,
                int count = 1);
  void set_bookmark_interval(std::chrono::milliseconds d);
  // Adds latency to every non-watch request (to simulate a remote API server).
  void set_request_delay(std::chrono::microseconds d);
  // Requests served per method ("GET", "WATCH", "PATCH", ...), and the Content-Type of every
  // PATCH received, in order.
  uint64_t request_count(const std::string& method) const;
  std::vector<std::string> patch_content_types() const;
  int open_watches() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace hami::k8s::testing
