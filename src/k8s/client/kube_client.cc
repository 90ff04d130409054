#include "k8s/client/kube_client.h"

#include "common/time_format.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace hami::k8s {

std::string Resource::CollectionPath(const std::string& ns) const {
  if (namespaced && !ns.empty()) return prefix + "/namespaces/" + ns + "/" + plural;
  return prefix + "/" + plural;
}

StatusOr<std::string> Resource::ObjectPath(const std::string& ns, const std::string& name) const {
  if (name.empty()) return InvalidArgument(plural + ": empty object name");
  if (namespaced && ns.empty()) return InvalidArgument(plural + "/" + name + ": no namespace");
  return CollectionPath(namespaced ? ns : std::string()) + "/" + name;
}

const char* WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "?";
}

StatusOr<WatchEvent> ParseWatchEvent(std::string_view line) {
  Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("watch event: not a JSON object");
  auto t = j.find("type");
  auto o = j.find("object");
  if (t == j.end() || !t->is_string()) return InvalidArgument("watch event: no \"type\" string");
  if (o == j.end() || !o->is_object()) return InvalidArgument("watch event: no \"object\" object");
  WatchEvent ev;
  const std::string& type = t->get_ref<const std::string&>();
  if (type == "ADDED") {
    ev.type = WatchEventType::kAdded;
  } else if (type == "MODIFIED") {
    ev.type = WatchEventType::kModified;
  } else if (type == "DELETED") {
    ev.type = WatchEventType::kDeleted;
  } else if (type == "BOOKMARK") {
    ev.type = WatchEventType::kBookmark;
  } else if (type == "ERROR") {
    ev.type = WatchEventType::kError;
  } else {
    return InvalidArgument("watch event: unknown type \"" + type + "\"");
  }
  ev.object = std::move(*o);
  return ev;
}

const char* PatchContentType(PatchType t) {
  switch (t) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
  }
  return "application/merge-patch+json";
}

void CancelToken::Cancel() {
  cancelled_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (hook_) hook_();
}

void CancelToken::SetHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
  if (hook_ && cancelled_.load()) hook_();
}

static constexpr char kGonePrefix[] = "410 Gone";

Status StatusFromHttp(int http_status, const std::string& body) {
  if (http_status >= 200 && http_status < 300) return Status::Ok();
  std::string reason, message;
  Json j = Json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto it = j.find("reason"); it != j.end() && it->is_string()) reason = *it;
    if (auto it = j.find("message"); it != j.end() && it->is_string()) message = *it;
  }
  if (message.empty()) message = body.substr(0, 200);
  std::string text = std::to_string(http_status) + (reason.empty() ? "" : " " + reason) +
                     (message.empty() ? "" : ": " + message);
  switch (http_status) {
    case 404:
      return NotFound(text);
    case 409:
      if (reason == "AlreadyExists") return {StatusCode::kAlreadyExists, text};
      return Aborted(text);
    case 410:
      return FailedPrecondition(std::string(kGonePrefix) + ": " + message);
    case 400:
    case 415:
    case 422:
      return InvalidArgument(text);
    case 401:
    case 403:
      return {StatusCode::kPermissionDenied, text};
    default:
      return Unavailable(text);
  }
}

bool IsGone(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition && s.message().rfind(kGonePrefix, 0) == 0;
}

StatusOr<Json> PatchWithRetry(KubeClient& client, const Resource& r, const std::string& ns,
                              const std::string& name,
                              const std::function<StatusOr<Json>(const Json& current)>& build,
                              int attempts) {
  Status last = Aborted("no attempt made");
  for (int i = 0; i < attempts; ++i) {
    auto current = client.Get(r, ns, name);
    if (!current.ok()) return current.status();
    auto patch = build(*current);
    if (!patch.ok()) return patch.status();
    if (!patch->is_object()) return InvalidArgument("PatchWithRetry: patch must be an object");
    if (patch->empty()) return current;
    (*patch)["metadata"]["resourceVersion"] = MetaString(*current, "resourceVersion");
    auto written = client.Patch(r, ns, name, PatchType::kMerge, *patch);
    if (written.ok() || written.status().code() != StatusCode::kAborted) return written;
    last = written.status();
  }
  return Aborted("gave up after " + std::to_string(attempts) + " conflicts: " + last.message());
}

Status RecordEvent(KubeClient& client, const Json& involved, const std::string& type,
                   const std::string& reason, const std::string& message,
                   const std::string& component) {
  std::string ns = MetaString(involved, "namespace");
  std::string name = MetaString(involved, "name");
  if (ns.empty()) ns = "default";
  auto now = std::chrono::system_clock::now().time_since_epoch();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx",
                static_cast<unsigned long long>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
  std::string ts = common::NowRfc3339();
  Json ev = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name + suffix}, {"namespace", ns}}},
      {"involvedObject",
       {{"apiVersion", involved.value("apiVersion", "v1")},
        {"kind", involved.value("kind", "Pod")},
        {"name", name},
        {"namespace", MetaString(involved, "namespace")},
        {"uid", MetaString(involved, "uid")},
        {"resourceVersion", MetaString(involved, "resourceVersion")}}},
      {"reason", reason},
      {"message", message},
      {"type", type},
      {"source", {{"component", component}}},
      {"reportingComponent", component},
      {"firstTimestamp", ts},
      {"lastTimestamp", ts},
      {"count", 1},
  };
  auto r = client.Create(Resource::Events(), ns, ev);
  return r.ok() ? Status::Ok() : r.status();
}

std::string MetaString(const Json& obj, const char* field) {
  if (!obj.is_object()) return {};
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return {};
  return f->get<std::string>();
}

static std::string MapValue(const Json& obj, const char* map, const std::string& key) {
  if (!obj.is_object()) return {};
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto a = m->find(map);
  if (a == m->end() || !a->is_object()) return {};
  auto v = a->find(key);
  if (v == a->end() || !v->is_string()) return {};
  return v->get<std::string>();
}

std::string Annotation(const Json& obj, const std::string& key) {
  return MapValue(obj, "annotations", key);
}
std::string Label(const Json& obj, const std::string& key) { return MapValue(obj, "labels", key); }

std::string ObjectKey(const Json& obj) {
  std::string ns = MetaString(obj, "namespace");
  std::string name = MetaString(obj, "name");
  return ns.empty() ? name : ns + "/" + name;
}

}  // namespace hami::k8s
