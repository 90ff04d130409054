// hami-scheduler: kube-scheduler extender + mutating webhook. Thin main: flags and config,
// API client, extender (watches), HTTP(S) server; exits non-zero on bad configuration.
#include <unistd.h>
#include <csignal>

#include "common/log.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/config.h"
#include "k8s/extender/http_server.h"
#include "k8s/extender/namespace_cache.h"
#include "k8s/webui/serve.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

hami::k8s::HttpServerOptions ServerOptions(const hami::k8s::SchedulerConfig& cfg) {
  hami::k8s::HttpServerOptions so;
  so.host = cfg.host;
  so.port = cfg.port;
  so.cert_file = cfg.cert_file;
  so.key_file = cfg.key_file;
  so.max_connections = cfg.max_connections;
  so.request_timeout = cfg.request_timeout;
  so.max_body_bytes = cfg.max_body_bytes;
  return so;
}

void LogFlags(const hami::k8s::SchedulerFlags& f) {
  hami::log::Init("hami-scheduler");
  if (f.debug) hami::log::SetLevel(hami::log::Level::kDebug);
  for (const auto& a : f.ignored_hami_flags)
    hami::log::Info("HAMi flag {} accepted, no effect here", a);
  if (f.leader_elect) {
    hami::log::Info(
        "--leader-elect: replicas need no election here (state is rebuilt from the "
        "API server)");
  }
}
}  // namespace

int main(int argc, char** argv) {
  using namespace hami::k8s;
  int exit_code = 0;
  auto flags = ParseFlags(argc, argv, exit_code);
  if (!flags) return exit_code;
  LogFlags(*flags);
  auto cfg = LoadConfig(*flags);
  if (!cfg.ok()) {
    hami::log::Error("bad configuration: {}", cfg.status().message());
    return 2;
  }
  auto cc = ResolveClientConfig(flags->kubeconfig);
  if (!cc.ok()) {
    hami::log::Error("cannot configure the API client: {}", cc.status().message());
    return 2;
  }
  cc->qps = cfg->client.qps;
  cc->burst = cfg->client.burst;
  cc->timeout_seconds = cfg->client.timeout_seconds;
  cc->user_agent = "hami-scheduler";
  auto client = HttpKubeClient::Create(*cc);
  if (!client.ok()) {
    hami::log::Error("{}", client.status().message());
    return 2;
  }
  Extender extender(cfg->extender, client->get());
  // Namespace labels for hami.io/webhook=ignore, cached for a minute.
  NamespaceLabelCache ns_cache(client->get());
  // The webhook denies a pod that asks more than the whole GPU quota of its namespace.
  cfg->webhook.quota_check = [&extender](const std::string& ns,
                                         const hami::sched::ResolvedPod& pod) {
    return extender.CheckQuotaEverFits(ns, pod);
  };
  HttpServer server(ServerOptions(*cfg), &extender, cfg->webhook, ns_cache.AsCallback());
  HttpServerOptions mo;
  mo.host = cfg->metrics_host;
  mo.port = cfg->metrics_port;
  mo.metrics_only = true;
  HttpServer metrics(mo, &extender, cfg->webhook);
  for (HttpServer* s : {&server, &metrics}) {
    if (s == &metrics && cfg->metrics_port < 0) continue;
    if (auto st = s->Start(); !st.ok()) {
      hami::log::Error("{}", st.message());
      return 1;
    }
  }
  extender.Start();
  // The web UI (docs/webui.md) on a listener of its own when HAMI_WEBUI_LISTEN is set.
  auto webui = SchedulerWebUi::FromEnv(client->get(), cfg->extender);
  if (!webui.ok()) {
    hami::log::Error("web UI: {}", webui.status().message());
    return 2;
  }
  if (*webui) hami::log::Info("web UI on port {}", (*webui)->port());
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  hami::log::Info("serving on {}:{} ({}), metrics {}", cfg->host, server.port(),
                  cfg->cert_file.empty() ? "http" : "https",
                  cfg->metrics_port < 0 ? std::string("on the same port")
                                        : cfg->metrics_host + ":" + std::to_string(metrics.port()));
  while (!g_stop) pause();
  server.Stop();
  metrics.Stop();
  extender.Stop();
  return 0;
}
