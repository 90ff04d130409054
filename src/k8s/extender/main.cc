// hami-scheduler: kube-scheduler extender + mutating webhook. Thin main: flags and config,
// API client, extender (watches), HTTP(S) server; exits non-zero on bad configuration.
#include <unistd.h>
#include <csignal>
#include <cstdio>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/config.h"
#include "k8s/extender/http_server.h"
#include "k8s/extender/namespace_cache.h"
#include "k8s/webui/serve.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  using namespace hami::k8s;
  int exit_code = 0;
  auto flags = ParseFlags(argc, argv, exit_code);
  if (!flags) return exit_code;
  auto cfg = LoadConfig(*flags);
  if (!cfg.ok()) {
    std::fprintf(stderr, "hami-scheduler: bad configuration: %s\n", cfg.status().message().c_str());
    return 2;
  }
  auto cc = ResolveClientConfig(flags->kubeconfig);
  if (!cc.ok()) {
    std::fprintf(stderr, "hami-scheduler: cannot configure the API client: %s\n",
                 cc.status().message().c_str());
    return 2;
  }
  cc->qps = cfg->client.qps;
  cc->burst = cfg->client.burst;
  cc->user_agent = "hami-scheduler";
  auto client = HttpKubeClient::Create(*cc);
  if (!client.ok()) {
    std::fprintf(stderr, "hami-scheduler: %s\n", client.status().message().c_str());
    return 2;
  }
  Extender extender(cfg->extender, client->get());
  // Namespace labels for hami.io/webhook=ignore, cached for a minute.
  NamespaceLabelCache ns_cache(client->get());
  HttpServerOptions so;
  so.host = cfg->host;
  so.port = cfg->port;
  so.cert_file = cfg->cert_file;
  so.key_file = cfg->key_file;
  so.threads = cfg->threads;
  HttpServer server(so, &extender, cfg->webhook, ns_cache.AsCallback());
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "hami-scheduler: %s\n", s.message().c_str());
    return 1;
  }
  extender.Start();
  // The web UI (docs/webui.md) on a listener of its own when HAMI_WEBUI_LISTEN is set.
  auto webui = SchedulerWebUi::FromEnv(client->get(), cfg->extender);
  if (!webui.ok()) {
    std::fprintf(stderr, "hami-scheduler: web UI: %s\n", webui.status().message().c_str());
    return 2;
  }
  if (*webui) std::fprintf(stderr, "hami-scheduler: web UI on port %d\n", (*webui)->port());
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::fprintf(stderr, "hami-scheduler: serving on %s:%d (%s)\n", cfg->host.c_str(), server.port(),
               cfg->cert_file.empty() ? "http" : "https");
  while (!g_stop) pause();
  server.Stop();
  extender.Stop();
  return 0;
}
