#include "hostd/http_api.h"

#include <httplib.h>

#include <cctype>
#include <chrono>

#include <pwd.h>

#include "common/accounting_reader.h"
#include "hostd/build_paths.h"
#include "hostd/slice_files.h"
#include "hostd/webui_source.h"

namespace hami::hostd {
namespace {

using nlohmann::json;

void Reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump() + "\n", "application/json");
}

void ReplyError(httplib::Response& res, const Status& s) {
  Reply(res, HttpStatusFor(s.code()), ErrorJson(s));
}

StatusOr<json> ParseBody(const httplib::Request& req) {
  if (req.body.empty()) return InvalidArgument("request body is empty; expected a JSON object");
  json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  return j;
}

// "s12" or "12".
StatusOr<int64_t> ParseId(const std::string& text, const char* what) {
  std::string t = text;
  if (!t.empty() && (t[0] == 's' || t[0] == 'S')) t = t.substr(1);
  if (t.empty() || t.size() > 18 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(c) != 0; })) {
    return InvalidArgument(std::string("bad ") + what + " \"" + text + "\"");
  }
  return std::stoll(t);
}

std::string UserName(uint32_t uid) {
  struct passwd pw {};
  struct passwd* out = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &out) == 0 && out != nullptr) return out->pw_name;
  return std::to_string(uid);
}

// pid fields: a JSON integer in 1..kMaxPid (4294967297 is refused, not truncated to 1).
StatusOr<int> ParsePid(const json& v, const char* what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxPid ||
      (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxPid))) {
    return InvalidArgument(std::string("field \"") + what + "\" must be an integer in 1.." +
                           std::to_string(kMaxPid));
  }
  return static_cast<int>(v.get<int64_t>());
}

}  // namespace

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kResourceExhausted:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 422;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

json ErrorJson(const Status& s) {
  return {{"error", {{"code", StatusCodeName(s.code())}, {"message", s.message()}}}};
}

json SliceView(const Slice& s, const JobContext& ctx, bool full) {
  json j = ToJson(s);
  j["uid"] = s.request.uid;
  j["user"] = UserName(s.request.uid);
  if (full) {
    JobEnv env = BuildJobEnv(s, ctx);
    j["env"] = {{"set", env.set}, {"prepend", env.prepend}};
  } else {
    for (const char* k : {"dir", "limits_file", "cache_file", "job"}) j.erase(k);
    for (const char* k : {"command", "owner", "request_id"}) j["request"].erase(k);
  }
  auto acc = ReadSliceAccounting(s.cache_file);
  json usage = json::array();
  for (const auto& d : s.devices) {
    json u = {{"uuid", d.uuid}, {"used_bytes", 0}, {"processes", 0}};
    if (acc.ok()) {
      if (const accounting::AccountingDevice* a = acc->Find(d.uuid)) {
        u["used_bytes"] = a->used_bytes;
        u["processes"] = a->processes;
        u["last_kernel_ns"] = a->last_kernel_ns;
      }
    }
    usage.push_back(u);
  }
  j["usage"] = usage;
  j["job_alive"] = s.job.pid > 0 && IsAlive(s.job);
  return j;
}

StatusOr<Caller> Identify(const httplib::Request& req, bool tcp, const std::string& token) {
  if (!tcp) {
    const Peer& p = CurrentPeer();
    if (!p.unix_socket || !p.known) {
      return Status(StatusCode::kPermissionDenied, "the peer's credentials are unknown");
    }
    return Caller::User(static_cast<uint32_t>(p.uid));
  }
  std::string presented;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) {
    presented = auth.substr(7);
  } else if (req.method == "GET" || req.method == "HEAD") {
    // A browser page's own requests; never for a change (no cross-site form can forge one).
    const std::string cookies = req.get_header_value("Cookie");
    for (size_t pos = 0; pos < cookies.size();) {
      size_t end = cookies.find(';', pos);
      if (end == std::string::npos) end = cookies.size();
      std::string c = cookies.substr(pos, end - pos);
      while (!c.empty() && c.front() == ' ') c.erase(0, 1);
      if (c.rfind("hami_token=", 0) == 0) presented = c.substr(11);
      pos = end + 1;
    }
  }
  if (!TokenMatches(presented, token)) {
    return Status(StatusCode::kPermissionDenied,
                  "missing or wrong API token (send \"Authorization: Bearer <token>\"; root can "
                  "read it from the daemon's token file)");
  }
  // The token is the daemon user's secret: its holder acts as that user, an administrator.
  return Caller{static_cast<uint32_t>(geteuid()), true};
}

ApiServer::ApiServer(Daemon& daemon, ApiOptions options)
    : daemon_(daemon),
      options_(std::move(options)),
      unix_(new PeerServer(options_.limits)),
      tcp_(new PeerServer(options_.limits)) {
  for (PeerServer* s : {unix_.get(), tcp_.get()}) {
    // Queued clients long-poll; give them threads of their own.
    s->new_task_queue = [] { return new httplib::ThreadPool(64); };
    s->set_payload_max_length(kMaxBodyBytes);
    s->set_read_timeout(5);
    s->set_write_timeout(5);
  }
  Routes(*unix_, false);
  Routes(*tcp_, true);
  // The web UI's JSON answers whoever Identify() accepts, as the API does: root (and a TCP
  // caller with the token) sees everything, another user every card and slice but not the
  // command lines of other users' jobs.
  webui_ = std::make_unique<webui::WebUi>(std::make_unique<DaemonWebUiSource>(daemon_));
  for (bool tcp : {false, true}) {
    webui_->Register(tcp ? *tcp_ : *unix_, true,
                     [this, tcp](const httplib::Request& req) -> StatusOr<webui::Viewer> {
                       auto who = Identify(req, tcp, options_.token);
                       if (!who.ok()) return who.status();
                       return webui::Viewer{who->admin, UserName(who->uid)};
                     });
  }
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::BindUnix(const std::string& path, mode_t mode) {
  HAMI_RETURN_IF_ERROR(unix_->BindUnix(path, mode));
  unix_bound_ = true;
  return Status::Ok();
}

StatusOr<int> ApiServer::BindTcp(const std::string& host, int port) {
  if (options_.token.empty()) {
    return FailedPrecondition("TCP needs an API token (the peer of a TCP connection is unknown)");
  }
  if (!IsLoopbackHost(host)) {
    return FailedPrecondition("TCP address " + host +
                              " is not loopback: the API is plain HTTP and its token would "
                              "cross the network in clear");
  }
  int bound;
  if (port == 0) {
    bound = tcp_->bind_to_any_port(host);
    if (bound <= 0) return Unavailable("cannot listen on " + host + " (any port)");
  } else {
    if (!tcp_->bind_to_port(host, port)) {
      return Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                         " (in use? another hami serve?)");
    }
    bound = port;
  }
  tcp_bound_ = true;
  return bound;
}

void ApiServer::Start() {
  webui_->Start();
  if (unix_bound_) threads_.emplace_back([this] { unix_->listen_after_bind(); });
  if (tcp_bound_) threads_.emplace_back([this] { tcp_->listen_after_bind(); });
  // httplib's stop() does nothing before its loop runs: wait for it, or a quick Stop() would
  // leave a listener running and the join hanging.
  for (int i = 0; i < 2000; ++i) {
    if ((!unix_bound_ || unix_->is_running()) && (!tcp_bound_ || tcp_->is_running())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ApiServer::Stop() {
  if (webui_) webui_->Stop();
  unix_->stop();
  tcp_->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

// Every route but /healthz knows its caller first; a caller that cannot be identified gets
// nothing.
httplib::Server::Handler ApiServer::Guard(bool tcp, GuardedHandler h) {
  return [this, tcp, h](const httplib::Request& req, httplib::Response& res) {
    auto who = Identify(req, tcp, options_.token);
    if (!who.ok()) {
      if (tcp) res.set_header("WWW-Authenticate", "Bearer");
      Reply(res, tcp ? 401 : 403, ErrorJson(who.status()));
      return;
    }
    h(req, res, *who);
  };
}

void ApiServer::InfoRoutes(PeerServer& s, bool tcp) {
  Daemon& d = daemon_;
  auto guard = [this, tcp](GuardedHandler h) { return Guard(tcp, std::move(h)); };
  s.Get("/v1/whoami", guard([](const httplib::Request&, httplib::Response& res, const Caller& who) {
          Reply(res, 200, {{"uid", who.uid}, {"user", UserName(who.uid)}, {"admin", who.admin}});
        }));
  s.Get("/v1/info", guard([&d](const httplib::Request&, httplib::Response& res, const Caller&) {
          Reply(res, 200,
                {{"version", BuildVersion()},
                 {"node", d.options().node_name},
                 {"gpu_source", d.gpu_source()},
                 {"fake", d.fake()},
                 {"state_dir", d.options().state_dir},
                 {"libvgpu", d.options().job.libvgpu},
                 {"split_count", d.options().split_count},
                 {"gpu_policy", sched::PolicyName(d.options().gpu_policy)}});
        }));
  s.Get("/v1/gpus", guard([&d](const httplib::Request&, httplib::Response& res, const Caller&) {
          json arr = json::array();
          for (const auto& g : d.Gpus()) {
            arr.push_back({{"uuid", g.gpu.uuid},
                           {"index", g.gpu.index},
                           {"name", g.gpu.name},
                           {"type", g.type},
                           {"memory_mib", g.memory_mib},
                           {"numa", g.gpu.numa},
                           {"healthy", g.gpu.healthy},
                           {"split_count", g.split_count},
                           {"allocated_memory_mib", g.usage.used_mem_mib},
                           {"allocated_cores", g.usage.used_cores},
                           {"slices", g.usage.used_slices},
                           {"exclusive", g.usage.exclusive > 0},
                           {"fake", d.fake()}});
          }
          Reply(res, 200, {{"gpus", arr}, {"fake", d.fake()}, {"gpu_source", d.gpu_source()}});
        }));
  s.Get("/metrics", guard([&d](const httplib::Request&, httplib::Response& res, const Caller&) {
          res.set_content(RenderMetrics(d), "text/plain; version=0.0.4");
        }));
  // Anything else: a JSON error rather than httplib's empty body.
}

void ApiServer::SliceRoutes(PeerServer& s, bool tcp) {
  Daemon& d = daemon_;
  auto guard = [this, tcp](GuardedHandler h) { return Guard(tcp, std::move(h)); };
  s.Get("/v1/slices",
        guard([&d](const httplib::Request&, httplib::Response& res, const Caller& who) {
          json arr = json::array();
          for (const auto& sl : d.Slices()) {
            arr.push_back(SliceView(sl, d.options().job, who.Owns(sl.request)));
          }
          Reply(res, 200, {{"slices", arr}});
        }));
  s.Post("/v1/slices",
         guard([&d, tcp](const httplib::Request& req, httplib::Response& res, const Caller& who) {
           auto body = ParseBody(req);
           if (!body.ok()) return ReplyError(res, body.status());
           auto r = SliceRequestFromJson(*body);
           if (!r.ok()) return ReplyError(res, r.status());
           // The slice is the caller's. Only an administrator may name another user or an owner
           // process other than itself; a user's slice lives as long as the calling process (or the
           // job it attaches), so no user can make one that never expires.
           if (!who.admin || !body->contains("uid")) r->uid = who.uid;
           if (!who.admin || (!tcp && r->owner.pid == 0 && !body->contains("owner"))) {
             const Peer& p = CurrentPeer();
             if (r->owner.pid != 0 && r->owner.pid != p.pid) {
               return ReplyError(res, Status(StatusCode::kPermissionDenied,
                                             "the owner of a slice must be the calling process"));
             }
             r->owner.pid = p.pid;
             r->owner.start_ticks = ProcessStartTicks(p.pid).value_or(0);
           }
           auto g = d.Request(*r);
           if (!g.ok()) return ReplyError(res, g.status());
           if (g->granted) {
             return Reply(res, 201,
                          {{"granted", true}, {"slice", SliceView(g->slice, d.options().job)}});
           }
           Reply(res, 202,
                 {{"granted", false},
                  {"ticket", g->ticket},
                  {"position", g->position},
                  {"reason", d.QueueReason(g->ticket)}});
         }));
  s.Get(R"(/v1/slices/([^/]+))",
        guard([&d](const httplib::Request& req, httplib::Response& res, const Caller& who) {
          auto id = ParseId(req.matches[1], "slice id");
          if (!id.ok()) return ReplyError(res, id.status());
          auto sl = d.GetSlice(*id, who);
          if (!sl.ok()) return ReplyError(res, sl.status());
          Reply(res, 200, SliceView(*sl, d.options().job));
        }));
  s.Delete(R"(/v1/slices/([^/]+))",
           guard([&d](const httplib::Request& req, httplib::Response& res, const Caller& who) {
             auto id = ParseId(req.matches[1], "slice id");
             if (!id.ok()) return ReplyError(res, id.status());
             Status st = d.Release(*id, who);
             if (!st.ok()) return ReplyError(res, st);
             Reply(res, 200, {{"released", "s" + std::to_string(*id)}});
           }));
}

// POST /v1/slices/<id>/job: the caller attaches its job's process to its slice.
static void AttachJob(Daemon& d, const httplib::Request& req, httplib::Response& res,
                      const Caller& who) {
  auto id = ParseId(req.matches[1], "slice id");
  if (!id.ok()) return ReplyError(res, id.status());
  auto body = ParseBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  const json& j = *body;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "pid" && it.key() != "start_ticks") {
      return ReplyError(res, InvalidArgument("unknown field \"" + it.key() + "\" in job"));
    }
  }
  if (!j.contains("pid")) return ReplyError(res, InvalidArgument("field \"pid\" is missing"));
  auto pid = ParsePid(j["pid"], "pid");
  if (!pid.ok()) return ReplyError(res, pid.status());
  ProcessRef p;
  p.pid = *pid;
  if (j.contains("start_ticks")) {
    if (!j["start_ticks"].is_number_unsigned()) {
      return ReplyError(res, InvalidArgument("field \"start_ticks\" must be an unsigned integer"));
    }
    p.start_ticks = j["start_ticks"].get<uint64_t>();
  } else {
    p.start_ticks = ProcessStartTicks(p.pid).value_or(0);
  }
  Status st = d.AttachJob(*id, p, who);
  if (!st.ok()) return ReplyError(res, st);
  Reply(res, 200, {{"attached", p.pid}});
}

void ApiServer::QueueRoutes(PeerServer& s, bool tcp) {
  Daemon& d = daemon_;
  auto guard = [this, tcp](GuardedHandler h) { return Guard(tcp, std::move(h)); };
  s.Post(R"(/v1/slices/([^/]+)/job)",
         guard([&d](const httplib::Request& req, httplib::Response& res, const Caller& who) {
           AttachJob(d, req, res, who);
         }));
  s.Get("/v1/quota", guard([&d](const httplib::Request&, httplib::Response& res, const Caller&) {
          json arr = json::array();
          for (const auto& r : d.QuotaRows()) {
            arr.push_back({{"kind", r.kind},
                           {"owner", r.owner},
                           {"id", r.id},
                           {"resource", sched::QuotaDimName(r.dim)},
                           {"used", r.used},
                           {"limit", r.limit}});
          }
          Reply(res, 200, {{"quotas", arr}});
        }));
  s.Get("/v1/queue",
        guard([&d](const httplib::Request&, httplib::Response& res, const Caller& who) {
          json arr = json::array();
          int pos = 1;
          for (const auto& q : d.Queue()) {
            json e = ToJson(q);
            e["position"] = pos++;
            e["uid"] = q.request.uid;
            e["user"] = UserName(q.request.uid);
            e["reason"] = d.QueueReason(q.ticket);
            if (!who.Owns(q.request)) {
              for (const char* k : {"command", "owner", "request_id"}) e["request"].erase(k);
            }
            arr.push_back(e);
          }
          Reply(res, 200, {{"queue", arr}, {"reason", d.QueueReason()}});
        }));
  s.Get(R"(/v1/queue/([^/]+))",
        guard([&d](const httplib::Request& req, httplib::Response& res, const Caller& who) {
          auto t = ParseId(req.matches[1], "ticket");
          if (!t.ok()) return ReplyError(res, t.status());
          int64_t wait_ms = 0;
          if (req.has_param("wait_ms")) {
            auto w = ParseId(req.get_param_value("wait_ms"), "wait_ms");
            if (!w.ok()) return ReplyError(res, w.status());
            wait_ms = std::min<int64_t>(*w, 10000);
          }
          auto g = d.Poll(*t, std::chrono::milliseconds(wait_ms), who);
          if (!g.ok()) return ReplyError(res, g.status());
          if (g->granted) {
            return Reply(res, 200,
                         {{"granted", true}, {"slice", SliceView(g->slice, d.options().job)}});
          }
          Reply(res, 200,
                {{"granted", false},
                 {"ticket", g->ticket},
                 {"position", g->position},
                 {"reason", d.QueueReason(g->ticket)}});
        }));
  s.Delete(R"(/v1/queue/([^/]+))",
           guard([&d](const httplib::Request& req, httplib::Response& res, const Caller& who) {
             auto t = ParseId(req.matches[1], "ticket");
             if (!t.ok()) return ReplyError(res, t.status());
             Status st = d.Cancel(*t, who);
             if (!st.ok()) return ReplyError(res, st);
             Reply(res, 200, {{"cancelled", *t}});
           }));
}

void ApiServer::Routes(PeerServer& s, bool tcp) {
  // Third-party code may throw (json); turn it into a 500 with a message once, here.
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        ReplyError(res, Internal(what));
      });

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  InfoRoutes(s, tcp);
  SliceRoutes(s, tcp);
  QueueRoutes(s, tcp);
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    Status st = NotFound("no route " + req.method + " " + req.path);
    if (res.status == 413) {
      st = InvalidArgument("request body too large: the limit is " + std::to_string(kMaxBodyBytes) +
                           " bytes");
    } else if (res.status == 414 || res.status == 431) {
      st = InvalidArgument("request line or headers too large");
    } else if (res.status != 404) {
      st = InvalidArgument("bad request (HTTP " + std::to_string(res.status) + ")");
    }
    res.set_content(ErrorJson(st).dump() + "\n", "application/json");
  });
}

}  // namespace hami::hostd
