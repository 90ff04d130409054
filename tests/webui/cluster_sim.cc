// A simulated cluster serving the scheduler's web UI, for the browser test and the benchmark:
// the API-server double with N GPU nodes, the real extender placing pods (filter + bind, the
// simulated kubelet serving Allocate), pods that cannot fit left pending, a fake node-monitor
// /metrics with per-pod use, and ClusterWebUiSource + WebUi on one HTTP port.
// With --quota 1: ResourceQuotas for team-a (GPU memory, compute, cards) and team-b (cards),
// created before the pods so the extender places under them, and one team-a pod left pending
// by its quota.
// Usage: webui_cluster_sim --nodes N [--gpus 8] [--pods P] [--pending K] [--quota 1]
//        --port-file FILE
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/testing/sim_kubelet.h"
#include "k8s/webui/cluster_source.h"
#include "webui/server.h"

namespace {

using hami::k8s::Json;
namespace kt = hami::k8s::testing;
std::atomic<bool> g_stop{false};

struct Args {
  int nodes = 10, gpus = 8, pods = 0, pending = 3;
  bool quota = false;
  std::string port_file;
};

Args Parse(int argc, char** argv) {
  Args a;
  a.pods = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--nodes")
      a.nodes = std::atoi(v.c_str());
    else if (k == "--gpus")
      a.gpus = std::atoi(v.c_str());
    else if (k == "--pods")
      a.pods = std::atoi(v.c_str());
    else if (k == "--pending")
      a.pending = std::atoi(v.c_str());
    else if (k == "--quota")
      a.quota = v == "1";
    else if (k == "--port-file")
      a.port_file = v;
    else {
      std::fprintf(stderr, "webui_cluster_sim: unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.pods < 0) a.pods = a.nodes * 2;  // about a quarter of the cards hold something
  return a;
}

std::string NodeName(int i) {
  char b[32];
  std::snprintf(b, sizeof b, "gpu-node-%04d", i);
  return b;
}

// Every fourth node has H100s, the rest A100s.
Json Node(int i, int gpus) {
  const std::string name = NodeName(i);
  auto g = kt::MakeGpus(name, gpus);
  if (i % 4 == 3) {
    for (auto& x : g) x.type = "NVIDIA-NVIDIA H100 80GB HBM3";
  }
  return kt::MakeNode(name, g);
}

Json GpuPod(const std::string& ns, const std::string& name, int count, int64_t mem, int cores) {
  Json pod = kt::MakeGpuPod(ns, name, count, mem, cores);
  pod["spec"]["schedulerName"] = "hami-scheduler";
  return pod;
}

// Places `pod` with the extender as kube-scheduler would: filter over a window of candidates,
// bind to the first that fits.
bool Schedule(hami::k8s::Extender& ext, kt::FakeApiServer& api, const Json& created, int nodes,
              int start) {
  Json names = Json::array();
  for (int k = 0; k < std::min(nodes, 50); ++k) names.push_back(NodeName((start + k) % nodes));
  auto f = ext.Filter({{"pod", created}, {"nodenames", names}});
  if (!f.ok() || !(*f)["nodenames"].is_array() || (*f)["nodenames"].empty()) return false;
  const std::string node = (*f)["nodenames"][0];
  auto b = ext.Bind({{"podName", created["metadata"]["name"]},
                     {"podNamespace", created["metadata"]["namespace"]},
                     {"podUID", created["metadata"]["uid"]},
                     {"node", node}});
  if (!b.ok() || !(*b)["error"].get<std::string>().empty()) return false;
  (void)api.MergePatch("pods", created["metadata"]["namespace"], created["metadata"]["name"],
                       {{"status", {{"phase", "Running"}}}});
  return true;
}

// What the node monitors would export: each placed pod uses 60 % of its memory and runs at
// 95 % of its compute limit when its index is even (throttled), 20 % otherwise.
std::string MonitorMetrics(kt::FakeApiServer& api) {
  std::string out;
  int i = 0;
  for (const Json& pod : api.List("pods")) {
    auto placement = hami::k8s::PlacementFromPod(pod);
    if (!placement.ok() || !placement->has_value()) continue;
    const std::string ns = hami::k8s::MetaString(pod, "namespace");
    const std::string name = hami::k8s::MetaString(pod, "name");
    const double share = (i++ % 2 == 0) ? 0.95 : 0.2;
    for (const auto& c : (*placement)->containers) {
      for (const auto& d : c) {
        const std::string l = "{namespace=\"" + ns + "\",pod=\"" + name +
                              "\",container=\"main\",vdevice_index=\"0\",device_uuid=\"" + d.uuid +
                              "\"} ";
        out += "hami_vgpu_memory_used_bytes" + l +
               std::to_string(static_cast<int64_t>(d.used_mem_mib * 0.6) << 20) + "\n";
        out += "hami_container_device_utilization_ratio" + l +
               std::to_string((d.used_cores ? d.used_cores : 100) / 100.0 * share) + "\n";
      }
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  kt::FakeApiServer api;
  if (!api.Start().ok()) return 1;
  for (int i = 0; i < a.nodes; ++i) (void)api.Create("nodes", Node(i, a.gpus));
  hami::k8s::ClientConfig cfg = api.client_config();
  auto client = hami::k8s::HttpKubeClient::Create(cfg).value();
  auto kubelet_client = hami::k8s::HttpKubeClient::Create(cfg).value();
  auto ui_client = hami::k8s::HttpKubeClient::Create(cfg).value();
  hami::k8s::ExtenderOptions eo;
  eo.record_events = false;
  hami::k8s::Extender ext(eo, client.get());
  ext.Start();
  if (!ext.WaitReady(std::chrono::seconds(120))) return 1;
  kt::SimKubelet kubelet(kubelet_client.get());
  kubelet.Start();

  if (a.quota) {
    auto quota = [&](const std::string& ns, const Json& hard) {
      (void)api.Create("resourcequotas", {{"apiVersion", "v1"},
                                          {"kind", "ResourceQuota"},
                                          {"metadata", {{"namespace", ns}, {"name", "gpu"}}},
                                          {"spec", {{"hard", hard}}}});
    };
    quota("team-a", {{"limits.nvidia.com/gpumem", "73728"},
                     {"limits.nvidia.com/gpucores", "200"},
                     {"limits.nvidia.com/gpu", "10"}});
    quota("team-b", {{"limits.nvidia.com/gpu", "20"}});
    // The extender must see the quotas before it places the first pod.
    for (int i = 0; i < 100 && ext.QuotaSnapshot().size() < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const char* teams[] = {"team-a", "team-b", "research", "inference"};
  int placed = 0;
  for (int i = 0; i < a.pods; ++i) {
    const int count = i % 7 == 0 ? 2 : 1;
    const int64_t mem = 4096 + (i % 5) * 4096;
    const int cores = (i % 3 + 1) * 10;
    auto created =
        api.Create("pods", GpuPod(teams[i % 4], "job-" + std::to_string(i), count, mem, cores));
    if (created.ok() && Schedule(ext, api, *created, a.nodes, i)) ++placed;
  }
  for (int i = 0; i < a.pending; ++i) {  // more memory than any card has, or a missing type
    if (i % 3 == 2) {
      Json pod = GpuPod(teams[i % 4], "wants-v100-" + std::to_string(i), 1, 8192, 20);
      pod["metadata"]["annotations"]["nvidia.com/use-gputype"] = "V100";
      (void)api.Create("pods", pod);
      continue;
    }
    (void)api.Create("pods", GpuPod(teams[i % 4], "too-big-" + std::to_string(i), 1, 200000, 0));
  }
  if (a.quota) {  // fits a card, not team-a's memory quota
    Json held = GpuPod("team-a", "over-quota", 1, 8192, 10);
    if (auto c = api.Create("pods", held); c.ok()) (void)Schedule(ext, api, *c, a.nodes, 0);
  }

  httplib::Server srv;
  srv.Get("/metrics", [&api](const httplib::Request&, httplib::Response& res) {
    res.set_content(MonitorMetrics(api), "text/plain; version=0.0.4");
  });
  // Baseline for bench/webui: what a UI built on the scheduler's Prometheus exposition reads.
  srv.Get("/scheduler-metrics", [&ext](const httplib::Request&, httplib::Response& res) {
    res.set_content(ext.Metrics(), "text/plain; version=0.0.4");
  });
  const int port = srv.bind_to_any_port("127.0.0.1");
  hami::k8s::ClusterSourceOptions so;
  so.monitor_urls = {"http://127.0.0.1:" + std::to_string(port) + "/metrics"};
  so.scrape_interval = std::chrono::milliseconds(2000);
  auto source = std::make_unique<hami::k8s::ClusterWebUiSource>(so, ui_client.get());
  hami::k8s::ClusterWebUiSource* src = source.get();
  src->Start();
  if (!src->WaitReady(std::chrono::seconds(120))) return 1;
  hami::webui::WebUiOptions wo;
  wo.snapshot_ttl = std::chrono::milliseconds(2000);  // as hami-scheduler (k8s/webui/serve.cc)
  hami::webui::WebUi ui(std::move(source), wo);
  ui.Register(srv);
  ui.Start();
  std::thread th([&] { srv.listen_after_bind(); });
  std::fprintf(stderr,
               "webui_cluster_sim: %d nodes x %d GPUs, %d pods placed, %d pending, "
               "http://127.0.0.1:%d/ui/\n",
               a.nodes, a.gpus, placed, a.pending, port);
  if (!a.port_file.empty()) std::ofstream(a.port_file) << port << "\n";
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ui.Stop();
  srv.stop();
  th.join();
  src->Stop();
  kubelet.Stop();
  ext.Stop();
  api.Stop();
  return 0;
}
