#include "k8s/webui/serve.h"

#include <httplib.h>

#include <cstdlib>

#include "k8s/webui/cluster_source.h"
#include "webui/server.h"

namespace hami::k8s {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// "host:port", "[v6]:port" or ":port". Errors: kInvalidArgument.
Status SplitHostPort(const std::string& text, std::string* host, int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("HAMI_WEBUI_LISTEN must be host:port, got \"" + text + "\"");
  }
  *host = text.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (host->empty()) *host = "0.0.0.0";
  const std::string p = text.substr(colon + 1);
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) {
    return InvalidArgument("HAMI_WEBUI_LISTEN port must be 0..65535, got \"" + p + "\"");
  }
  *port = static_cast<int>(v);
  return Status::Ok();
}

}  // namespace

SchedulerWebUi::~SchedulerWebUi() { Stop(); }

void SchedulerWebUi::Stop() {
  if (ui_) ui_->Stop();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (source_) source_->Stop();
}

StatusOr<std::unique_ptr<SchedulerWebUi>> SchedulerWebUi::FromEnv(KubeClient* client,
                                                                  const ExtenderOptions& options) {
  const std::string listen = Env("HAMI_WEBUI_LISTEN");
  if (listen.empty()) return std::unique_ptr<SchedulerWebUi>();
  std::string host;
  int port = 0;
  if (Status s = SplitHostPort(listen, &host, &port); !s.ok()) return s;
  ClusterSourceOptions so;
  so.names = options.names;
  so.memory_factor = options.memory_factor;
  so.sched = options.sched;
  so.scheduler_name = options.scheduler_name;
  so.quotas = options.quotas;
  if (const std::string mp = Env("HAMI_WEBUI_MONITOR_PORT"); !mp.empty()) {
    char* end = nullptr;
    long v = std::strtol(mp.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > 65535) {
      return InvalidArgument("HAMI_WEBUI_MONITOR_PORT must be 0..65535, got \"" + mp + "\"");
    }
    so.monitor_port = static_cast<int>(v);
  }
  so.monitor_pod_label = Env("HAMI_WEBUI_MONITOR_POD_LABEL");
  std::string urls = Env("HAMI_WEBUI_MONITOR_URLS");
  for (size_t start = 0; start < urls.size();) {
    size_t comma = urls.find(',', start);
    std::string u =
        urls.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!u.empty()) {
      if (u.rfind("http://", 0) != 0) {
        return InvalidArgument("HAMI_WEBUI_MONITOR_URLS: \"" + u + "\" is not an http:// URL");
      }
      so.monitor_urls.push_back(u);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::unique_ptr<SchedulerWebUi> w(new SchedulerWebUi);
  auto source = std::make_unique<ClusterWebUiSource>(so, client);
  w->source_ = source.get();
  w->source_->Start();
  // A cluster snapshot costs a good part of a second at 5,000 nodes: refresh it every 2 s.
  webui::WebUiOptions wo;
  wo.snapshot_ttl = std::chrono::milliseconds(2000);
  w->ui_ = std::make_unique<webui::WebUi>(std::move(source), wo);
  w->server_ = std::make_unique<httplib::Server>();
  w->ui_->Register(*w->server_);
  w->server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  w->port_ = port == 0 ? w->server_->bind_to_any_port(host)
                       : (w->server_->bind_to_port(host, port) ? port : -1);
  if (w->port_ <= 0) {
    w->source_->Stop();
    return Unavailable("web UI cannot listen on " + listen);
  }
  w->ui_->Start();
  SchedulerWebUi* raw = w.get();
  w->thread_ = std::thread([raw] { raw->server_->listen_after_bind(); });
  return w;
}

}  // namespace hami::k8s
