#include "webui/server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "webui/api.h"
#include "webui/assets.h"

namespace hami::webui {
namespace {

using nlohmann::json;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Strings in the snapshot come from pods and command lines: never trust them to be UTF-8.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Reply JsonReply(int status, const json& j) {
  Reply r;
  r.status = status;
  r.content_type = "application/json";
  r.body = Dump(j);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Reply ErrorReply(const Status& s) {
  int code = 500;
  if (s.code() == StatusCode::kInvalidArgument) code = 400;
  if (s.code() == StatusCode::kNotFound) code = 404;
  return JsonReply(code,
                   {{"error", {{"code", StatusCodeName(s.code())}, {"message", s.message()}}}});
}

// "gpus/GPU-1" -> {"gpus", "GPU-1"}; "gpus" -> {"gpus", ""}.
std::pair<std::string, std::string> SplitFirst(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return {s, ""};
  return {s.substr(0, slash), s.substr(slash + 1)};
}

}  // namespace

WebUi::WebUi(std::unique_ptr<DataProvider> provider, WebUiOptions options)
    : options_(std::move(options)), provider_(std::move(provider)), history_(options_.history) {}

WebUi::~WebUi() { Stop(); }

void WebUi::Start() {
  std::lock_guard<std::mutex> lock(sampler_mu_);
  if (sampler_.joinable()) return;
  stop_ = false;
  sampler_ = std::thread([this] {
    const int64_t interval_ms = int64_t{history_.options().interval_s} * 1000;
    std::unique_lock<std::mutex> lk(sampler_mu_);
    while (!stop_) {
      lk.unlock();
      SampleAt(NowUnixMs() / interval_ms);
      lk.lock();
      // Wake on the next interval boundary so ticks line up with wall-clock buckets.
      const int64_t wait = interval_ms - NowUnixMs() % interval_ms;
      sampler_cv_.wait_for(lk, std::chrono::milliseconds(wait), [this] { return stop_; });
    }
  });
}

void WebUi::Stop() {
  {
    std::lock_guard<std::mutex> lock(sampler_mu_);
    stop_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

// Collects a new snapshot (one collection at a time) and makes it current.
std::shared_ptr<const Snapshot> WebUi::Collect() {
  std::lock_guard<std::mutex> provider_lock(provider_mu_);
  std::shared_ptr<const Snapshot> previous;
  {
    std::lock_guard<std::mutex> lock(collect_mu_);
    previous = current_;
  }
  auto next = std::make_shared<Snapshot>(provider_->Collect());
  if (next->taken_unix_ms == 0) next->taken_unix_ms = NowUnixMs();
  Finish(*next, previous.get());
  std::lock_guard<std::mutex> lock(collect_mu_);
  current_ = std::move(next);
  current_at_ = std::chrono::steady_clock::now();
  collecting_ = false;
  return current_;
}

std::shared_ptr<const Snapshot> WebUi::Current() {
  {
    std::lock_guard<std::mutex> lock(collect_mu_);
    const bool fresh =
        current_ && std::chrono::steady_clock::now() - current_at_ < options_.snapshot_ttl;
    // While one request collects, the others get the previous snapshot at once instead of
    // queueing behind the collection (on a large cluster it takes a good part of a second).
    if (fresh || (current_ && collecting_)) return current_;
    collecting_ = true;
  }
  return Collect();
}

void WebUi::SampleAt(int64_t tick) {
  {
    std::lock_guard<std::mutex> lock(collect_mu_);
    collecting_ = true;
  }
  history_.Record(*Collect(), tick);
}

// Other users' command lines are not shown to a viewer who is not an administrator.
static void Redact(json& j, const Viewer& v) {
  if (j.is_array()) {
    for (auto& e : j) Redact(e, v);
    return;
  }
  if (!j.is_object()) return;
  if (j.contains("command") && j.contains("user") && j["user"] != v.user) j["command"] = "";
  for (const char* k : {"items", "workloads"}) {
    if (j.contains(k)) Redact(j[k], v);
  }
}

Reply WebUi::Api(const std::string& route, const std::multimap<std::string, std::string>& params,
                 const Viewer& viewer) {
  auto [head, rest] = SplitFirst(route);
  auto q = ParseQuery(params, head);
  if (!q.ok()) return ErrorReply(q.status());
  if (head == "history") {
    auto [kind, id] = SplitFirst(rest);
    if ((kind != "gpu" && kind != "workload") || id.empty()) {
      return ErrorReply(NotFound("history is /history/gpu/<uuid> or /history/workload/<id>"));
    }
    auto it = params.find("range");
    auto range = ParseRange(it == params.end() ? "" : it->second);
    if (!range.ok()) return ErrorReply(range.status());
    HistorySeries h = history_.Get(kind + ":" + id, *range);
    return JsonReply(200, HistoryJson(h, *range));
  }
  std::shared_ptr<const Snapshot> s = Current();
  std::string key = route + (viewer.admin ? "\nadmin" : "\nuser=" + viewer.user);
  for (const auto& [k, v] : params) key += "\n" + k + "=" + v;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_of_ != s.get()) {
      cache_.clear();
      cache_of_ = s.get();
      cache_keep_ = s;
    }
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  Reply r = Compute(*s, head, rest, *q, route);
  if (!viewer.admin && r.status == 200) {
    json j = json::parse(r.body);
    Redact(j, viewer);
    r.body = Dump(j);
  }
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_of_ == s.get()) {
    if (cache_.size() >= options_.cache_entries) cache_.clear();
    cache_.emplace(std::move(key), r);
  }
  return r;
}

Reply WebUi::Compute(const Snapshot& s, const std::string& head, const std::string& rest,
                     const Query& q, const std::string& route) const {
  if (head == "meta" && rest.empty()) return JsonReply(200, MetaJson(s));
  if (head == "overview" && rest.empty()) return JsonReply(200, OverviewJson(s, q));
  if (head == "nodes" && rest.empty()) return JsonReply(200, NodesJson(s, q));
  if (head == "pending" && rest.empty()) return JsonReply(200, PendingJson(s, q));
  if (head == "quotas" && rest.empty()) return JsonReply(200, QuotasJson(s, q));
  if (head == "gpus") {
    if (rest.empty()) return JsonReply(200, GpusJson(s, q));
    auto j = GpuDetailJson(s, rest);
    return j.ok() ? JsonReply(200, *j) : ErrorReply(j.status());
  }
  if (head == "workloads") {
    if (rest.empty()) return JsonReply(200, WorkloadsJson(s, q));
    auto j = WorkloadDetailJson(s, rest);
    return j.ok() ? JsonReply(200, *j) : ErrorReply(j.status());
  }
  return ErrorReply(NotFound("no web UI endpoint \"" + route + "\""));
}

Reply WebUi::Asset(const std::string& name) const {
  const EmbeddedAsset* a = FindAsset(name.empty() ? "index.html" : name);
  if (a == nullptr) return ErrorReply(NotFound("no web UI file \"" + name + "\""));
  Reply r;
  r.content_type = a->content_type;
  r.body.assign(reinterpret_cast<const char*>(a->data), a->size);
  r.headers = {{"ETag", a->etag},
               {"Cache-Control", "no-cache"},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               {"Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"}};
  return r;
}

Reply WebUi::Handle(const std::string& path, const std::multimap<std::string, std::string>& params,
                    const Viewer& viewer) {
  const std::string& p = options_.prefix;
  if (path.compare(0, p.size(), p) != 0) return ErrorReply(NotFound("no route " + path));
  std::string rest = path.substr(p.size());
  if (rest.empty() || rest == "/") return Asset("");
  rest = rest.substr(1);
  if (rest.compare(0, 4, "api/") == 0) return Api(rest.substr(4), params, viewer);
  return Asset(rest);
}

void WebUi::Register(httplib::Server& server, bool root_redirect, Gate gate) {
  const std::string p = options_.prefix;
  const std::string api = p + "/api/";
  auto handler = [this, gate, api](const httplib::Request& req, httplib::Response& res) {
    Reply r;
    try {
      Viewer viewer;
      if (gate && req.path.compare(0, api.size(), api) == 0) {
        auto v = gate(req);
        if (!v.ok()) {
          r = ErrorReply(v.status());
          r.status = v.status().code() == StatusCode::kPermissionDenied ? 401 : 403;
          res.status = r.status;
          res.set_content(r.body, r.content_type);
          return;
        }
        viewer = *v;
      }
      r = Handle(req.path, req.params, viewer);
    } catch (const std::exception& e) {  // json or allocation: one 500, never a crash
      r = ErrorReply(Internal(e.what()));
    }
    // A client that sent the current ETag already has the file.
    for (const auto& [k, v] : r.headers) {
      if (k == "ETag" && req.get_header_value("If-None-Match") == v) {
        res.status = 304;
        res.set_header("ETag", v);
        return;
      }
    }
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, r.content_type);
  };
  server.Get(p,
             [p](const httplib::Request&, httplib::Response& res) { res.set_redirect(p + "/"); });
  server.Get(p + "/.*", handler);
  if (root_redirect) {
    server.Get("/",
               [p](const httplib::Request&, httplib::Response& res) { res.set_redirect(p + "/"); });
  }
}

}  // namespace hami::webui
