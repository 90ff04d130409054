#include "k8s/testing/fake_apiserver.h"

#include "common/time_format.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

namespace hami::k8s::testing {

namespace {

struct HistEvent {
  uint64_t rv;
  std::string plural;
  std::string type;
  Json object;
};

struct Failure {
  std::string method;
  std::string path_part;
  int status;
  int count;
};

Json StatusBody(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", Json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

const char* ReasonFor(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    default:
      return "InternalError";
  }
}

// A request failed with an HTTP status; carries a Status body.
struct ApiError {
  int code;
  std::string reason;
  std::string message;
};

ApiError Err(int code, std::string message) { return {code, ReasonFor(code), std::move(message)}; }

std::string Meta(const Json& o, const char* f) {
  if (!o.is_object() || !o.contains("metadata") || !o["metadata"].is_object()) return {};
  auto it = o["metadata"].find(f);
  return (it != o["metadata"].end() && it->is_string()) ? it->get<std::string>() : std::string();
}

std::string Key(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "/" + name;
}

bool Namespaced(const std::string& plural) {
  return plural == "pods" || plural == "events" || plural == "resourcequotas";
}

const char* KindOf(const std::string& plural) {
  if (plural == "pods") return "Pod";
  if (plural == "nodes") return "Node";
  if (plural == "namespaces") return "Namespace";
  if (plural == "resourcequotas") return "ResourceQuota";
  return "Event";
}

// One requirement of a label or field selector.
struct Requirement {
  std::string key;
  enum Op { kEq, kNe, kExists, kNotExists } op = kEq;
  std::string value;
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<Requirement> ParseSelector(const std::string& s, bool field) {
  std::vector<Requirement> out;
  if (s.empty()) return out;
  for (std::string item : Split(s, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) throw Err(400, "empty selector requirement in \"" + s + "\"");
    Requirement r;
    size_t p;
    if ((p = item.find("!=")) != std::string::npos) {
      r.op = Requirement::kNe;
      r.key = item.substr(0, p);
      r.value = item.substr(p + 2);
    } else if ((p = item.find("==")) != std::string::npos) {
      r.key = item.substr(0, p);
      r.value = item.substr(p + 2);
    } else if ((p = item.find('=')) != std::string::npos) {
      r.key = item.substr(0, p);
      r.value = item.substr(p + 1);
    } else if (!field && item[0] == '!') {
      r.op = Requirement::kNotExists;
      r.key = item.substr(1);
    } else if (!field) {
      r.op = Requirement::kExists;
      r.key = item;
    } else {
      throw Err(400, "unsupported field selector \"" + item + "\"");
    }
    if (field && r.key != "metadata.name" && r.key != "metadata.namespace" &&
        r.key != "spec.nodeName" && r.key != "status.phase" && r.key != "spec.schedulerName") {
      throw Err(400, "field label not supported: " + r.key);
    }
    out.push_back(r);
  }
  return out;
}

std::optional<std::string> FieldValue(const Json& o, const std::string& key) {
  if (key == "metadata.name") return Meta(o, "name");
  if (key == "metadata.namespace") return Meta(o, "namespace");
  auto dot = key.find('.');
  std::string top = key.substr(0, dot), sub = key.substr(dot + 1);
  if (o.contains(top) && o[top].is_object() && o[top].contains(sub) && o[top][sub].is_string()) {
    return o[top][sub].get<std::string>();
  }
  return std::string();  // absent fields compare as ""
}

bool Matches(const Json& o, const std::vector<Requirement>& labels,
             const std::vector<Requirement>& fields) {
  const Json* lab = nullptr;
  if (o.contains("metadata") && o["metadata"].contains("labels") &&
      o["metadata"]["labels"].is_object()) {
    lab = &o["metadata"]["labels"];
  }
  for (const auto& r : labels) {
    bool has = lab && lab->contains(r.key) && (*lab)[r.key].is_string();
    std::string v = has ? (*lab)[r.key].get<std::string>() : "";
    switch (r.op) {
      case Requirement::kEq:
        if (!has || v != r.value) return false;
        break;
      case Requirement::kNe:
        if (has && v == r.value) return false;
        break;
      case Requirement::kExists:
        if (!has) return false;
        break;
      case Requirement::kNotExists:
        if (has) return false;
        break;
    }
  }
  for (const auto& r : fields) {
    std::string v = FieldValue(o, r.key).value_or("");
    if (r.op == Requirement::kEq && v != r.value) return false;
    if (r.op == Requirement::kNe && v == r.value) return false;
  }
  return true;
}

uint64_t ParseRv(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (*end != '\0') throw Err(400, "invalid resourceVersion \"" + s + "\"");
  return v;
}

}  // namespace

struct FakeApiServer::State {
  httplib::Server svr;
  std::thread listener;
  int port = 0;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::map<std::string, Json>> store;  // plural -> key -> object
  std::deque<HistEvent> history;
  uint64_t rv = 1;
  uint64_t compacted_rv = 0;  // watches from versions below this get 410
  std::size_t history_limit = 100000;
  uint64_t uid_counter = 0;
  uint64_t watch_generation = 0;  // bumped by CloseWatches
  bool stopping = false;
  std::vector<Failure> failures;
  std::map<std::string, uint64_t> counts;
  std::vector<std::string> patch_types;
  std::chrono::milliseconds bookmark_interval{1000};
  std::chrono::microseconds delay{0};
  std::atomic<int> open_watches{0};

  // ---- store operations (callers hold mu) ----
  void Record(const std::string& plural, const char* type, const Json& obj) {
    history.push_back({rv, plural, type, obj});
    while (history.size() > history_limit) {
      compacted_rv = history.front().rv;
      history.pop_front();
    }
    cv.notify_all();
  }

  Json CreateLocked(const std::string& plural, Json obj, const std::string& path_ns) {
    if (!obj.is_object()) throw Err(400, "body is not a JSON object");
    if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = Json::object();
    Json& md = obj["metadata"];
    if (Namespaced(plural)) {
      std::string ns = Meta(obj, "namespace");
      if (ns.empty()) ns = path_ns;
      if (ns.empty()) throw Err(400, "namespace required");
      if (!path_ns.empty() && ns != path_ns) {
        throw Err(400, "the namespace of the object does not match the namespace on the URL");
      }
      md["namespace"] = ns;
    } else {
      md.erase("namespace");
    }
    std::string name = Meta(obj, "name");
    if (name.empty() && md.contains("generateName") && md["generateName"].is_string()) {
      name = md["generateName"].get<std::string>() + std::to_string(1000 + uid_counter);
      md["name"] = name;
    }
    if (name.empty()) throw Err(422, "metadata.name: Required value");
    std::string key = Key(Meta(obj, "namespace"), name);
    auto& bucket = store[plural];
    if (bucket.count(key)) {
      throw ApiError{409, "AlreadyExists", plural + " \"" + name + "\" already exists"};
    }
    ++rv;
    md["uid"] = "uid-" + std::to_string(++uid_counter);
    md["resourceVersion"] = std::to_string(rv);
    md["creationTimestamp"] = common::NowRfc3339();
    obj["apiVersion"] = "v1";
    obj["kind"] = KindOf(plural);
    bucket[key] = obj;
    Record(plural, "ADDED", obj);
    return obj;
  }

  Json& Find(const std::string& plural, const std::string& ns, const std::string& name) {
    auto& bucket = store[plural];
    auto it = bucket.find(Key(Namespaced(plural) ? ns : "", name));
    if (it == bucket.end()) throw Err(404, plural + " \"" + name + "\" not found");
    return it->second;
  }

  // Stores `next` in place of `cur` after the optimistic-concurrency check.
  Json CommitUpdate(const std::string& plural, Json& cur, Json next, bool check_rv) {
    if (!next.is_object()) throw Err(400, "object is not a JSON object");
    std::string want = Meta(next, "resourceVersion");
    if (check_rv && !want.empty() && want != Meta(cur, "resourceVersion")) {
      throw Err(409, "Operation cannot be fulfilled on " + plural + " \"" + Meta(cur, "name") +
                         "\": the object has been modified; please apply your changes to the "
                         "latest version and try again");
    }
    if (Meta(next, "name") != Meta(cur, "name") ||
        Meta(next, "namespace") != Meta(cur, "namespace")) {
      throw Err(400, "metadata.name/namespace cannot be changed");
    }
    if (!Meta(next, "uid").empty() && Meta(next, "uid") != Meta(cur, "uid")) {
      throw Err(409, "Precondition failed: UID in object meta: " + Meta(next, "uid") +
                         ", UID in precondition: " + Meta(cur, "uid"));
    }
    ++rv;
    next["metadata"]["uid"] = Meta(cur, "uid");
    next["metadata"]["creationTimestamp"] = cur["metadata"].value("creationTimestamp", "");
    next["metadata"]["resourceVersion"] = std::to_string(rv);
    next["apiVersion"] = "v1";
    next["kind"] = KindOf(plural);
    cur = std::move(next);
    Record(plural, "MODIFIED", cur);
    return cur;
  }

  Json DeleteLocked(const std::string& plural, const std::string& ns, const std::string& name) {
    Json obj = Find(plural, ns, name);
    store[plural].erase(Key(Namespaced(plural) ? ns : "", name));
    ++rv;
    obj["metadata"]["resourceVersion"] = std::to_string(rv);
    Record(plural, "DELETED", obj);
    return obj;
  }

  Json PatchLocked(const std::string& plural, const std::string& ns, const std::string& name,
                   const std::string& content_type, const std::string& body) {
    Json& cur = Find(plural, ns, name);
    Json patch = Json::parse(body, nullptr, false);
    if (patch.is_discarded()) throw Err(400, "patch body is not JSON");
    Json next;
    std::string ct = content_type.substr(0, content_type.find(';'));
    if (ct == "application/merge-patch+json" || ct == "application/strategic-merge-patch+json") {
      if (!patch.is_object()) throw Err(400, "merge patch must be a JSON object");
      next = cur;
      next.merge_patch(patch);
    } else if (ct == "application/json-patch+json") {
      if (!patch.is_array()) throw Err(400, "json patch must be a JSON array");
      try {
        next = cur.patch(patch);
      } catch (const std::exception& e) {
        throw Err(422, std::string("the server rejected our request due to an error in our "
                                   "request: ") +
                           e.what());
      }
    } else {
      throw Err(415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml");
    }
    return CommitUpdate(plural, cur, std::move(next), true);
  }

  Json BindLocked(const std::string& ns, const std::string& name, const std::string& body) {
    Json b = Json::parse(body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) throw Err(400, "binding body is not a JSON object");
    if (b.value("kind", "") != "Binding") throw Err(400, "kind must be Binding");
    std::string node;
    if (b.contains("target") && b["target"].is_object()) node = b["target"].value("name", "");
    if (node.empty()) throw Err(422, "target.name: Required value");
    Json& pod = Find("pods", ns, name);
    std::string uid = Meta(b, "uid");
    if (!uid.empty() && uid != Meta(pod, "uid")) {
      throw Err(409, "Precondition failed: UID in precondition: " + uid +
                         ", UID in object meta: " + Meta(pod, "uid"));
    }
    if (pod.contains("spec") && pod["spec"].is_object() && pod["spec"].contains("nodeName") &&
        pod["spec"]["nodeName"].is_string() &&
        !pod["spec"]["nodeName"].get<std::string>().empty()) {
      throw Err(409, "pod " + name + " is already assigned to node \"" +
                         pod["spec"]["nodeName"].get<std::string>() + "\"");
    }
    Json next = pod;
    next["spec"]["nodeName"] = node;
    next["metadata"].erase("resourceVersion");
    CommitUpdate("pods", pod, std::move(next), false);
    return {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", Json::object()},
            {"status", "Success"},
            {"code", 201}};
  }

  // Returns a failure to inject for this request, if any.
  std::optional<int> TakeFailure(const std::string& method, const std::string& path) {
    for (auto it = failures.begin(); it != failures.end(); ++it) {
      if (it->method == method && path.find(it->path_part) != std::string::npos) {
        int s = it->status;
        if (--it->count <= 0) failures.erase(it);
        return s;
      }
    }
    return std::nullopt;
  }

  void Reply(httplib::Response& res, int code, const Json& body) {
    res.status = code;
    res.set_content(body.dump(), "application/json");
  }
  void ReplyError(httplib::Response& res, const ApiError& e) {
    Reply(res, e.code, StatusBody(e.code, e.reason, e.message));
  }

  // Parses the path below /api/v1: [namespaces/<ns>/]<plural>[/<name>[/<sub>]].
  struct Route {
    std::string ns, plural, name, sub;
  };
  Route ParsePath(const std::string& path) {
    static const std::string kPrefix = "/api/v1/";
    if (path.rfind(kPrefix, 0) != 0)
      throw Err(404, "the server could not find the requested resource");
    auto parts = Split(path.substr(kPrefix.size()), '/');
    Route r;
    size_t i = 0;
    if (parts.size() >= 3 && parts[0] == "namespaces") {
      r.ns = parts[1];
      i = 2;
    }
    if (i >= parts.size()) throw Err(404, "no resource in path");
    r.plural = parts[i++];
    if (r.plural != "pods" && r.plural != "nodes" && r.plural != "namespaces" &&
        r.plural != "events" && r.plural != "resourcequotas") {
      throw Err(404, "the server could not find the requested resource (" + r.plural + ")");
    }
    if (i < parts.size()) r.name = parts[i++];
    if (i < parts.size()) r.sub = parts[i++];
    if (i < parts.size()) throw Err(404, "path too long");
    if (!Namespaced(r.plural) && !r.ns.empty()) throw Err(404, r.plural + " are not namespaced");
    return r;
  }

  void Handle(const std::string& method, const httplib::Request& req, httplib::Response& res) {
    bool watch = method == "GET" &&
                 (req.get_param_value("watch") == "true" || req.get_param_value("watch") == "1");
    std::chrono::microseconds request_delay{0};
    {
      std::lock_guard<std::mutex> lock(mu);
      request_delay = delay;
      counts[watch ? "WATCH" : method]++;
      if (method == "PATCH") patch_types.push_back(req.get_header_value("Content-Type"));
      if (auto f = TakeFailure(watch ? "WATCH" : method, req.path)) {
        ReplyError(res, Err(*f, "injected failure"));
        return;
      }
    }
    if (!watch && request_delay.count() > 0) std::this_thread::sleep_for(request_delay);
    try {
      Route r = ParsePath(req.path);
      if (watch) return ServeWatch(r, req, res);
      std::lock_guard<std::mutex> lock(mu);
      if (method == "GET" && r.name.empty()) return Reply(res, 200, ListLocked(r, req));
      if (method == "GET" && r.sub.empty()) return Reply(res, 200, Find(r.plural, r.ns, r.name));
      if (method == "POST" && r.name.empty()) {
        Json body = Json::parse(req.body, nullptr, false);
        if (body.is_discarded()) throw Err(400, "request body is not JSON");
        return Reply(res, 201, CreateLocked(r.plural, std::move(body), r.ns));
      }
      if (method == "POST" && r.plural == "pods" && r.sub == "binding") {
        return Reply(res, 201, BindLocked(r.ns, r.name, req.body));
      }
      if (method == "PUT" && !r.name.empty() && r.sub.empty()) {
        Json body = Json::parse(req.body, nullptr, false);
        if (body.is_discarded()) throw Err(400, "request body is not JSON");
        if (Meta(body, "name") != r.name) throw Err(400, "name in body does not match URL");
        if (Namespaced(r.plural) && Meta(body, "namespace").empty()) {
          body["metadata"]["namespace"] = r.ns;
        }
        Json& cur = Find(r.plural, r.ns, r.name);
        return Reply(res, 200, CommitUpdate(r.plural, cur, std::move(body), true));
      }
      if (method == "PATCH" && !r.name.empty() && r.sub.empty()) {
        return Reply(
            res, 200,
            PatchLocked(r.plural, r.ns, r.name, req.get_header_value("Content-Type"), req.body));
      }
      if (method == "DELETE" && !r.name.empty() && r.sub.empty()) {
        return Reply(res, 200, DeleteLocked(r.plural, r.ns, r.name));
      }
      throw Err(405, "method " + method + " not allowed on " + req.path);
    } catch (const ApiError& e) {
      ReplyError(res, e);
    }
  }

  Json ListLocked(const Route& r, const httplib::Request& req) {
    auto labels = ParseSelector(req.get_param_value("labelSelector"), false);
    auto fields = ParseSelector(req.get_param_value("fieldSelector"), true);
    int limit = 0;
    if (req.has_param("limit")) limit = std::atoi(req.get_param_value("limit").c_str());
    std::string after = req.get_param_value("continue");
    Json items = Json::array();
    std::string next_continue;
    const auto& bucket = store[r.plural];
    for (auto it = after.empty() ? bucket.begin() : bucket.upper_bound(after); it != bucket.end();
         ++it) {
      if (!r.ns.empty() && Meta(it->second, "namespace") != r.ns) continue;
      if (!Matches(it->second, labels, fields)) continue;
      if (limit > 0 && static_cast<int>(items.size()) == limit) {
        next_continue = std::prev(it)->first;
        break;
      }
      items.push_back(it->second);
    }
    Json md = {{"resourceVersion", std::to_string(rv)}};
    if (!next_continue.empty()) md["continue"] = next_continue;
    return {{"apiVersion", "v1"},
            {"kind", std::string(KindOf(r.plural)) + "List"},
            {"metadata", md},
            {"items", items}};
  }

  struct Watcher {
    std::string plural, ns;
    std::vector<Requirement> labels, fields;
    uint64_t sent_rv = 0;
    uint64_t generation = 0;
    std::deque<std::string> initial;  // synthetic ADDED events for rv=0/empty
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    std::chrono::steady_clock::time_point last_write;
    bool gone = false;
    std::string gone_message;
  };

  static std::string Line(const std::string& type, const Json& obj) {
    return Json{{"type", type}, {"object", obj}}.dump() + "\n";
  }

  void ServeWatch(const Route& r, const httplib::Request& req, httplib::Response& res) {
    auto w = std::make_shared<Watcher>();
    w->plural = r.plural;
    w->ns = r.ns;
    w->labels = ParseSelector(req.get_param_value("labelSelector"), false);
    w->fields = ParseSelector(req.get_param_value("fieldSelector"), true);
    bool bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
    if (req.has_param("timeoutSeconds")) {
      int t = std::atoi(req.get_param_value("timeoutSeconds").c_str());
      if (t > 0) w->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(t);
    }
    std::string rv_param = req.get_param_value("resourceVersion");
    {
      std::lock_guard<std::mutex> lock(mu);
      w->generation = watch_generation;
      if (rv_param.empty() || rv_param == "0") {
        // "Any" version: start with the current state as ADDED events.
        for (const auto& [k, o] : store[r.plural]) {
          if (!r.ns.empty() && Meta(o, "namespace") != r.ns) continue;
          if (Matches(o, w->labels, w->fields)) w->initial.push_back(Line("ADDED", o));
        }
        w->sent_rv = rv;
      } else {
        w->sent_rv = ParseRv(rv_param);
        if (w->sent_rv < compacted_rv) w->gone = true;
        w->gone_message = "too old resource version: " + std::to_string(w->sent_rv) + " (" +
                          std::to_string(compacted_rv) + ")";
      }
    }
    w->last_write = std::chrono::steady_clock::now();
    open_watches++;
    res.status = 200;
    res.set_chunked_content_provider(
        "application/json",
        [this, w, bookmarks](size_t, httplib::DataSink& sink) {
          if (w->gone) {
            std::string line = Line("ERROR", StatusBody(410, "Expired", w->gone_message));
            sink.write(line.data(), line.size());
            sink.done();
            return true;
          }
          while (!w->initial.empty()) {
            const std::string& l = w->initial.front();
            if (!sink.write(l.data(), l.size())) return false;
            w->initial.pop_front();
          }
          std::string out;
          {
            std::unique_lock<std::mutex> lock(mu);
            auto has_new = [&] {
              return stopping || watch_generation != w->generation ||
                     (!history.empty() && history.back().rv > w->sent_rv);
            };
            cv.wait_for(lock, std::chrono::milliseconds(50), has_new);
            if (stopping || watch_generation != w->generation ||
                std::chrono::steady_clock::now() >= w->deadline) {
              sink.done();
              return true;
            }
            if (w->sent_rv < compacted_rv) {
              w->gone = true;
              w->gone_message = "too old resource version: " + std::to_string(w->sent_rv) + " (" +
                                std::to_string(compacted_rv) + ")";
              return true;
            }
            auto it = std::upper_bound(history.begin(), history.end(), w->sent_rv,
                                       [](uint64_t v, const HistEvent& e) { return v < e.rv; });
            for (; it != history.end(); ++it) {
              w->sent_rv = it->rv;
              if (it->plural != w->plural) continue;
              if (!w->ns.empty() && Meta(it->object, "namespace") != w->ns) continue;
              if (!Matches(it->object, w->labels, w->fields)) continue;
              out += Line(it->type, it->object);
            }
            auto now = std::chrono::steady_clock::now();
            if (out.empty() && bookmarks && now - w->last_write >= bookmark_interval) {
              out = Line("BOOKMARK", {{"kind", KindOf(w->plural)},
                                      {"apiVersion", "v1"},
                                      {"metadata", {{"resourceVersion", std::to_string(rv)}}}});
              w->sent_rv = std::max(w->sent_rv, rv);
            }
          }
          if (!out.empty()) {
            w->last_write = std::chrono::steady_clock::now();
            if (!sink.write(out.data(), out.size())) return false;
          }
          return true;
        },
        [this](bool) { open_watches--; });
  }
};

FakeApiServer::FakeApiServer() : state_(std::make_unique<State>()) {}
FakeApiServer::~FakeApiServer() { Stop(); }

Status FakeApiServer::Start() {
  State* s = state_.get();
  s->svr.new_task_queue = [] { return new httplib::ThreadPool(48); };
  s->svr.set_keep_alive_max_count(100000);
  s->svr.set_keep_alive_timeout(1);
  s->svr.set_tcp_nodelay(true);
  for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    std::string method = m;
    auto h = [s, method](const httplib::Request& req, httplib::Response& res) {
      s->Handle(method, req, res);
    };
    if (method == "GET") s->svr.Get(".*", h);
    if (method == "POST") s->svr.Post(".*", h);
    if (method == "PUT") s->svr.Put(".*", h);
    if (method == "PATCH") s->svr.Patch(".*", h);
    if (method == "DELETE") s->svr.Delete(".*", h);
  }
  s->port = s->svr.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) return Unavailable("fake API server: cannot bind 127.0.0.1");
  s->listener = std::thread([s] { s->svr.listen_after_bind(); });
  return Status::Ok();
}

void FakeApiServer::Stop() {
  State* s = state_.get();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
    s->cv.notify_all();
  }
  s->svr.stop();
  if (s->listener.joinable()) s->listener.join();
}

std::string FakeApiServer::url() const {
  return "http://127.0.0.1:" + std::to_string(state_->port);
}
int FakeApiServer::port() const { return state_->port; }
ClientConfig FakeApiServer::client_config() const {
  ClientConfig cfg;
  cfg.server = url();
  cfg.qps = 0;
  return cfg;
}

template <typename F>
static auto Guard(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ApiError& e) {
    switch (e.code) {
      case 404:
        return NotFound(e.message);
      case 409:
        return Aborted(e.message);
      default:
        return InvalidArgument(e.message);
    }
  }
}

StatusOr<Json> FakeApiServer::Create(const std::string& plural, const Json& obj) {
  return Guard([&]() -> StatusOr<Json> {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->CreateLocked(plural, obj, Meta(obj, "namespace"));
  });
}

StatusOr<Json> FakeApiServer::Get(const std::string& plural, const std::string& ns,
                                  const std::string& name) {
  return Guard([&]() -> StatusOr<Json> {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->Find(plural, ns, name);
  });
}

std::vector<Json> FakeApiServer::List(const std::string& plural) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<Json> out;
  for (const auto& [k, v] : state_->store[plural]) out.push_back(v);
  return out;
}

StatusOr<Json> FakeApiServer::Replace(const std::string& plural, const Json& obj) {
  return Guard([&]() -> StatusOr<Json> {
    std::lock_guard<std::mutex> lock(state_->mu);
    Json& cur = state_->Find(plural, Meta(obj, "namespace"), Meta(obj, "name"));
    Json next = obj;
    next["metadata"].erase("resourceVersion");
    return state_->CommitUpdate(plural, cur, std::move(next), false);
  });
}

StatusOr<Json> FakeApiServer::MergePatch(const std::string& plural, const std::string& ns,
                                         const std::string& name, const Json& patch) {
  return Guard([&]() -> StatusOr<Json> {
    std::lock_guard<std::mutex> lock(state_->mu);
    Json& cur = state_->Find(plural, ns, name);
    Json next = cur;
    next.merge_patch(patch);
    next["metadata"].erase("resourceVersion");
    return state_->CommitUpdate(plural, cur, std::move(next), false);
  });
}

Status FakeApiServer::Delete(const std::string& plural, const std::string& ns,
                             const std::string& name) {
  auto r = Guard([&]() -> StatusOr<Json> {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->DeleteLocked(plural, ns, name);
  });
  return r.ok() ? Status::Ok() : r.status();
}

uint64_t FakeApiServer::resource_version() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->rv;
}

void FakeApiServer::Compact() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->history.clear();
  state_->compacted_rv = state_->rv + 1;
  state_->cv.notify_all();
}

void FakeApiServer::set_history_limit(std::size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->history_limit = n;
}

void FakeApiServer::CloseWatches() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->watch_generation++;
  state_->cv.notify_all();
}

void FakeApiServer::FailNext(const std::string& method, const std::string& path_part,
                             int http_status, int count) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->failures.push_back({method, path_part, http_status, count});
}

void FakeApiServer::set_bookmark_interval(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->bookmark_interval = d;
}

void FakeApiServer::set_request_delay(std::chrono::microseconds d) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->delay = d;
}

uint64_t FakeApiServer::request_count(const std::string& method) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->counts.find(method);
  return it == state_->counts.end() ? 0 : it->second;
}

std::vector<std::string> FakeApiServer::patch_content_types() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->patch_types;
}

int FakeApiServer::open_watches() const { return state_->open_watches.load(); }

}  // namespace hami::k8s::testing
