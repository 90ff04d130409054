// The Kubernetes API as the control plane uses it: get/list/watch with resourceVersion,
// create/update/patch/delete, the pods/binding subresource and events. KubeClient is the seam:
// HttpKubeClient talks to a real API server (or testing::FakeApiServer); tests may fake it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hami::k8s {

using Json = nlohmann::json;

// Where a resource lives in the REST tree: <prefix>[/namespaces/<ns>]/<plural>[/<name>].
struct Resource {
  std::string prefix;  // "/api/v1" or "/apis/<group>/<version>"
  std::string plural;  // "pods"
  bool namespaced = true;

  static Resource Pods() { return {"/api/v1", "pods", true}; }
  static Resource Nodes() { return {"/api/v1", "nodes", false}; }
  static Resource Events() { return {"/api/v1", "events", true}; }
  static Resource Namespaces() { return {"/api/v1", "namespaces", false}; }
  static Resource ResourceQuotas() { return {"/api/v1", "resourcequotas", true}; }

  // Collection path; `ns` empty means all namespaces (or a cluster-scoped resource).
  std::string CollectionPath(const std::string& ns) const;
  // Errors: kInvalidArgument for an empty name or a namespaced resource without namespace.
  StatusOr<std::string> ObjectPath(const std::string& ns, const std::string& name) const;
};

struct ListOptions {
  std::string ns;  // empty: all namespaces
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int timeout_seconds = 0;      // watch: ask the server to end the stream after this long
  bool allow_bookmarks = true;  // watch
  int limit = 0;                // list page size; 0: no paging
};

struct ObjectList {
  std::vector<Json> items;
  std::string resource_version;  // metadata.resourceVersion of the list
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };
const char* WatchEventTypeName(WatchEventType t);  // "ADDED" ...

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  Json object;
};
// Parses one line of a watch stream: {"type":"ADDED","object":{...}}. Errors: kInvalidArgument
// for malformed JSON, an unknown type or a missing/non-object "object".
StatusOr<WatchEvent> ParseWatchEvent(std::string_view line);

enum class PatchType { kMerge, kJson, kStrategicMerge };
const char* PatchContentType(PatchType t);  // "application/merge-patch+json" ...

// Lets another thread end a blocking Watch promptly.
class CancelToken {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Runs `hook` on Cancel (at once when already cancelled). One hook at a time; the watch
  // clears it before returning.
  void SetHook(std::function<void()> hook);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::function<void()> hook_;
};

// Status conversion of API errors: 404 kNotFound, 409 Conflict kAborted, 409 AlreadyExists
// kAlreadyExists, 410 Gone kFailedPrecondition (see IsGone), 400/415/422 kInvalidArgument,
// 401/403 kPermissionDenied, 429/5xx/transport kUnavailable.
Status StatusFromHttp(int http_status, const std::string& body);
bool IsGone(const Status& s);

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  // Errors: see StatusFromHttp.
  virtual StatusOr<Json> Get(const Resource& r, const std::string& ns, const std::string& name) = 0;
  // Follows `continue` tokens when opts.limit > 0.
  virtual StatusOr<ObjectList> List(const Resource& r, const ListOptions& opts) = 0;
  // Streams events from opts.resource_version until the server ends the stream (OK),
  // `on_event` returns false (OK), `cancel` fires (OK) or an error. A too-old resourceVersion
  // (HTTP 410 or an ERROR event with code 410) is a Gone status (IsGone): relist.
  virtual Status Watch(const Resource& r, const ListOptions& opts,
                       const std::function<bool(const WatchEvent&)>& on_event,
                       CancelToken* cancel) = 0;
  virtual StatusOr<Json> Create(const Resource& r, const std::string& ns, const Json& obj) = 0;
  // PUT; metadata.resourceVersion in `obj` is the precondition (409 kAborted when stale).
  virtual StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj) = 0;
  virtual StatusOr<Json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                               PatchType type, const Json& patch) = 0;
  virtual Status Delete(const Resource& r, const std::string& ns, const std::string& name) = 0;
  // POST pods/<name>/binding (sets spec.nodeName). `uid` may be empty.
  virtual Status Bind(const std::string& ns, const std::string& name, const std::string& uid,
                      const std::string& node) = 0;
};

// Read-modify-write with optimistic concurrency: reads the object, lets `build` compute a merge
// patch from it (return an empty object to write nothing), adds the read resourceVersion as
// precondition and retries on 409 up to `attempts` times. Returns the object as written (or as
// read when nothing was written). Errors: those of Get/Patch, the Status of `build`, kAborted
// after the last conflict.
StatusOr<Json> PatchWithRetry(KubeClient& client, const Resource& r, const std::string& ns,
                              const std::string& name,
                              const std::function<StatusOr<Json>(const Json& current)>& build,
                              int attempts = 5);

// Records a core/v1 Event about `involved` (a pod or node object); type "Normal"/"Warning".
Status RecordEvent(KubeClient& client, const Json& involved, const std::string& type,
                   const std::string& reason, const std::string& message,
                   const std::string& component);

// Small accessors for API objects (empty string when absent).
std::string MetaString(const Json& obj, const char* field);  // metadata.<field>
std::string Annotation(const Json& obj, const std::string& key);
std::string Label(const Json& obj, const std::string& key);
std::string ObjectKey(const Json& obj);  // "<ns>/<name>" or "<name>"

}  // namespace hami::k8s
