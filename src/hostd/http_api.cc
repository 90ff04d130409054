#include "hostd/http_api.h"

#include <httplib.h>

#include <cctype>
#include <chrono>

#include "common/accounting_reader.h"
#include "hostd/build_paths.h"
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

std::string Esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
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

json SliceView(const Slice& s, const JobContext& ctx) {
  json j = ToJson(s);
  JobEnv env = BuildJobEnv(s, ctx);
  j["env"] = {{"set", env.set}, {"prepend", env.prepend}};
  auto acc = accounting::ReadAccountingFile(s.cache_file);
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

std::string RenderMetrics(const Daemon& d) {
  std::string out;
  const std::string node = Esc(d.options().node_name);
  auto help = [&](const char* name, const char* type, const char* text) {
    out += std::string("# HELP ") + name + " " + text + "\n# TYPE " + name + " " + type + "\n";
  };
  help("hami_build_info", "gauge", "Build of the hami single-host daemon.");
  out += "hami_build_info{version=\"" + Esc(BuildVersion()) + "\",component=\"hami-serve\"," +
         "gpu_source=\"" + Esc(d.gpu_source()) + "\",fake=\"" + (d.fake() ? "true" : "false") +
         "\"} 1\n";
  auto gpus = d.Gpus();
  auto gpu_labels = [&](const GpuView& g) {
    return "node=\"" + node + "\",device_uuid=\"" + Esc(g.gpu.uuid) + "\",device_index=\"" +
           std::to_string(g.gpu.index) + "\",device_type=\"" + Esc(g.type) + "\"";
  };
  help("hami_gpu_memory_limit_bytes", "gauge", "Device memory of the GPU.");
  for (const auto& g : gpus) {
    out += "hami_gpu_memory_limit_bytes{" + gpu_labels(g) + "} " +
           std::to_string(g.memory_mib * (int64_t{1} << 20)) + "\n";
  }
  help("hami_gpu_core_limit_ratio", "gauge", "Compute of the GPU (1 = whole card).");
  for (const auto& g : gpus) out += "hami_gpu_core_limit_ratio{" + gpu_labels(g) + "} 1\n";
  help("hami_gpu_memory_allocated_bytes", "gauge", "Device memory allocated to slices.");
  for (const auto& g : gpus) {
    out += "hami_gpu_memory_allocated_bytes{" + gpu_labels(g) + "} " +
           std::to_string(g.usage.used_mem_mib * (int64_t{1} << 20)) + "\n";
  }
  help("hami_gpu_core_allocated_ratio", "gauge", "Compute allocated to slices (1 = whole card).");
  for (const auto& g : gpus) {
    out += "hami_gpu_core_allocated_ratio{" + gpu_labels(g) + "} " +
           std::to_string(g.usage.used_cores / 100.0) + "\n";
  }
  help("hami_gpu_shared_count", "gauge", "Slices sharing the GPU.");
  for (const auto& g : gpus) {
    out += "hami_gpu_shared_count{" + gpu_labels(g) + "} " + std::to_string(g.usage.used_slices) +
           "\n";
  }
  help("hami_node_gpu_memory_allocated_ratio", "gauge", "Allocated share of the node's memory.");
  {
    int64_t total = 0, used = 0;
    for (const auto& g : gpus) {
      total += g.memory_mib;
      used += g.usage.used_mem_mib;
    }
    out += "hami_node_gpu_memory_allocated_ratio{node=\"" + node + "\"} " +
           std::to_string(total ? static_cast<double>(used) / static_cast<double>(total) : 0.0) +
           "\n";
  }
  // Per slice: the per-pod labels of SPEC 2.8, with the slice standing in for the pod.
  auto slices = d.Slices();
  std::vector<std::pair<const Slice*, StatusOr<accounting::AccountingSnapshot>>> acc;
  for (const auto& s : slices) acc.emplace_back(&s, accounting::ReadAccountingFile(s.cache_file));
  help("hami_vgpu_memory_allocated_bytes", "gauge", "Device memory allocated to the slice.");
  help("hami_vgpu_core_allocated_ratio", "gauge", "Compute allocated to the slice.");
  help("hami_vgpu_memory_limit_bytes", "gauge", "Memory limit of the slice on the device.");
  help("hami_vgpu_memory_used_bytes", "gauge",
       "Device memory the slice's processes use (from the accounting file).");
  for (const auto& [s, a] : acc) {
    for (size_t i = 0; i < s->devices.size(); ++i) {
      const auto& dev = s->devices[i];
      std::string pod_labels = "namespace=\"hami-run\",pod=\"" + s->Name() +
                               "\",container_index=\"0\",device_uuid=\"" + Esc(dev.uuid) + "\"";
      std::string mon_labels = "namespace=\"hami-run\",pod=\"" + s->Name() +
                               "\",container=\"main\",vdevice_index=\"" + std::to_string(i) +
                               "\",device_uuid=\"" + Esc(dev.uuid) + "\"";
      int64_t limit = dev.memory_mib * (int64_t{1} << 20);
      uint64_t used = 0;
      if (a.ok()) {
        if (const accounting::AccountingDevice* u = a->Find(dev.uuid)) used = u->used_bytes;
      }
      out += "hami_vgpu_memory_allocated_bytes{" + pod_labels + "} " + std::to_string(limit) + "\n";
      out += "hami_vgpu_core_allocated_ratio{" + pod_labels + "} " +
             std::to_string(dev.cores / 100.0) + "\n";
      out += "hami_vgpu_memory_limit_bytes{" + mon_labels + "} " + std::to_string(limit) + "\n";
      out += "hami_vgpu_memory_used_bytes{" + mon_labels + "} " + std::to_string(used) + "\n";
    }
  }
  help("hami_container_last_kernel_elapsed_seconds", "gauge",
       "Seconds since the slice's processes last launched a kernel (absent before the first).");
  const double now_s = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()) /
                       1e9;
  for (const auto& [s, a] : acc) {
    if (!a.ok()) continue;
    for (size_t i = 0; i < s->devices.size(); ++i) {
      const accounting::AccountingDevice* u = a->Find(s->devices[i].uuid);
      if (u == nullptr || u->last_kernel_ns == 0) continue;
      double elapsed = now_s - static_cast<double>(u->last_kernel_ns) / 1e9;
      out += "hami_container_last_kernel_elapsed_seconds{namespace=\"hami-run\",pod=\"" +
             s->Name() + "\",container=\"main\",vdevice_index=\"" + std::to_string(i) +
             "\",device_uuid=\"" + Esc(s->devices[i].uuid) + "\"} " +
             std::to_string(elapsed < 0 ? 0.0 : elapsed) + "\n";
    }
  }
  help("hami_queue_length", "gauge", "Requests waiting for a slice.");
  out += "hami_queue_length{node=\"" + node + "\"} " + std::to_string(d.Queue().size()) + "\n";
  return out;
}

ApiServer::ApiServer(Daemon& daemon) : daemon_(daemon), server_(new httplib::Server) {
  // Queued clients long-poll; give them threads of their own.
  server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  Routes();
  webui_ = std::make_unique<webui::WebUi>(std::make_unique<DaemonWebUiSource>(daemon_));
  webui_->Register(*server_);
}

ApiServer::~ApiServer() { Stop(); }

StatusOr<int> ApiServer::Bind(const std::string& host, int port) {
  int bound;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
    if (bound <= 0) return Unavailable("cannot listen on " + host + " (any port)");
  } else {
    if (!server_->bind_to_port(host, port)) {
      return Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                         " (in use? another hami serve?)");
    }
    bound = port;
  }
  return bound;
}

void ApiServer::Serve() {
  webui_->Start();
  server_->listen_after_bind();
}

void ApiServer::Start() {
  thread_ = std::thread([this] { Serve(); });
}

void ApiServer::Stop() {
  if (webui_) webui_->Stop();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void ApiServer::Routes() {
  auto& s = *server_;
  Daemon& d = daemon_;
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
  s.Get("/v1/info", [&d](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200,
          {{"version", BuildVersion()},
           {"node", d.options().node_name},
           {"gpu_source", d.gpu_source()},
           {"fake", d.fake()},
           {"state_dir", d.options().state_dir},
           {"libvgpu", d.options().job.libvgpu},
           {"split_count", d.options().split_count},
           {"gpu_policy", sched::PolicyName(d.options().gpu_policy)}});
  });
  s.Get("/v1/gpus", [&d](const httplib::Request&, httplib::Response& res) {
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
  });
  s.Get("/v1/slices", [&d](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    for (const auto& sl : d.Slices()) arr.push_back(SliceView(sl, d.options().job));
    Reply(res, 200, {{"slices", arr}});
  });
  s.Post("/v1/slices", [&d](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseBody(req);
    if (!body.ok()) return ReplyError(res, body.status());
    auto r = SliceRequestFromJson(*body);
    if (!r.ok()) return ReplyError(res, r.status());
    auto g = d.Request(*r);
    if (!g.ok()) return ReplyError(res, g.status());
    if (g->granted) {
      return Reply(res, 201, {{"granted", true}, {"slice", SliceView(g->slice, d.options().job)}});
    }
    Reply(res, 202,
          {{"granted", false},
           {"ticket", g->ticket},
           {"position", g->position},
           {"reason", d.QueueReason()}});
  });
  s.Get(R"(/v1/slices/([^/]+))", [&d](const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1], "slice id");
    if (!id.ok()) return ReplyError(res, id.status());
    auto sl = d.GetSlice(*id);
    if (!sl.ok()) return ReplyError(res, sl.status());
    Reply(res, 200, SliceView(*sl, d.options().job));
  });
  s.Delete(R"(/v1/slices/([^/]+))", [&d](const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1], "slice id");
    if (!id.ok()) return ReplyError(res, id.status());
    Status st = d.Release(*id);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"released", "s" + std::to_string(*id)}});
  });
  s.Post(R"(/v1/slices/([^/]+)/job)", [&d](const httplib::Request& req, httplib::Response& res) {
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
    if (!j.contains("pid") || !j["pid"].is_number_integer()) {
      return ReplyError(res, InvalidArgument("field \"pid\" must be an integer"));
    }
    ProcessRef p;
    p.pid = j["pid"].get<int>();
    if (j.contains("start_ticks")) {
      if (!j["start_ticks"].is_number_unsigned()) {
        return ReplyError(res,
                          InvalidArgument("field \"start_ticks\" must be an unsigned integer"));
      }
      p.start_ticks = j["start_ticks"].get<uint64_t>();
    } else {
      p.start_ticks = ProcessStartTicks(p.pid).value_or(0);
    }
    Status st = d.AttachJob(*id, p);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"attached", p.pid}});
  });
  s.Get("/v1/queue", [&d](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    int pos = 1;
    for (const auto& q : d.Queue()) {
      json e = ToJson(q);
      e["position"] = pos++;
      arr.push_back(e);
    }
    Reply(res, 200, {{"queue", arr}, {"reason", d.QueueReason()}});
  });
  s.Get(R"(/v1/queue/([^/]+))", [&d](const httplib::Request& req, httplib::Response& res) {
    auto t = ParseId(req.matches[1], "ticket");
    if (!t.ok()) return ReplyError(res, t.status());
    int64_t wait_ms = 0;
    if (req.has_param("wait_ms")) {
      auto w = ParseId(req.get_param_value("wait_ms"), "wait_ms");
      if (!w.ok()) return ReplyError(res, w.status());
      wait_ms = std::min<int64_t>(*w, 10000);
    }
    auto g = d.Poll(*t, std::chrono::milliseconds(wait_ms));
    if (!g.ok()) return ReplyError(res, g.status());
    if (g->granted) {
      return Reply(res, 200, {{"granted", true}, {"slice", SliceView(g->slice, d.options().job)}});
    }
    Reply(res, 200,
          {{"granted", false},
           {"ticket", g->ticket},
           {"position", g->position},
           {"reason", d.QueueReason()}});
  });
  s.Delete(R"(/v1/queue/([^/]+))", [&d](const httplib::Request& req, httplib::Response& res) {
    auto t = ParseId(req.matches[1], "ticket");
    if (!t.ok()) return ReplyError(res, t.status());
    Status st = d.Cancel(*t);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"cancelled", *t}});
  });
  s.Get("/metrics", [&d](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderMetrics(d), "text/plain; version=0.0.4");
  });
  // Anything else: a JSON 404 rather than httplib's empty body.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(ErrorJson(NotFound("no route " + req.method + " " + req.path)).dump() + "\n",
                      "application/json");
    }
  });
}

}  // namespace hami::hostd
