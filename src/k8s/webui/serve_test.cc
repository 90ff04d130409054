// hami-scheduler's web UI from the environment: refused values, and a cluster served over HTTP
// from the API-server double (nodes, a placed pod, a pending pod with the engine's reason).
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/webui/cluster_source.h"
#include "k8s/webui/serve.h"
#include "sched/annotation.h"

namespace hami::k8s {
namespace {

using Json = nlohmann::json;

struct EnvGuard {
  ~EnvGuard() {
    unsetenv("HAMI_WEBUI_LISTEN");
    unsetenv("HAMI_WEBUI_MONITOR_PORT");
    unsetenv("HAMI_WEBUI_MONITOR_URLS");
  }
};

// A pod the scheduler placed on `node`: the placement annotation as the extender writes it.
Json PlacedPod(const std::string& ns, const std::string& name, const std::string& uid,
               const std::string& node, const std::string& uuid, int64_t mem, int cores) {
  Json pod = testing::MakeGpuPod(ns, name, 1, mem, cores);
  pod["metadata"]["uid"] = uid;
  pod["spec"]["nodeName"] = node;
  pod["spec"]["schedulerName"] = "hami-scheduler";
  pod["status"]["phase"] = "Running";
  sched::PodPlacement p;
  p.containers = {{{uuid, "NVIDIA-NVIDIA A100-SXM4-80GB", mem, cores}}};
  pod["metadata"]["annotations"][sched::kDevicesAllocatedAnnotation] =
      sched::EncodePlacement(p).value();
  pod["metadata"]["annotations"][kVgpuNodeAnnotation] = node;
  return pod;
}

Json PendingPod(const std::string& ns, const std::string& name, const std::string& uid,
                int64_t mem) {
  Json pod = testing::MakeGpuPod(ns, name, 1, mem);
  pod["metadata"]["uid"] = uid;
  pod["spec"]["schedulerName"] = "hami-scheduler";
  return pod;
}

Json ResourceQuota(const std::string& ns, const std::string& name, const Json& hard) {
  return {{"apiVersion", "v1"},
          {"kind", "ResourceQuota"},
          {"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"hard", hard}}}};
}

// The quota view's data: a namespace's ResourceQuota with the usage of its placed pods (memory
// back in the MiB the quota gives, with memoryFactor 2), and a pending pod that fits a node but
// not the quota waits with the quota's named reason; one that fits no node (and is over the quota
// too) keeps the engine's: freeing quota would not help it.
TEST(ClusterWebUiSource, QuotasFromResourceQuotasAndPlacedPods) {
  ClusterSourceOptions o;
  o.memory_factor = 2;  // placements and the book count MiB x 2
  ClusterWebUiSource src(o, nullptr);
  src.UpsertNode(testing::MakeNode("n1", testing::MakeGpus("n1", 2)));
  src.UpsertQuota(ResourceQuota("team-a", "gpu",
                                {{"limits.nvidia.com/gpumem", "40960"},
                                 {"limits.nvidia.com/gpucores", "100"},
                                 {"requests.cpu", "8"}}));
  src.UpsertPod(PlacedPod("team-a", "run", "u1", "n1", "GPU-n1-0", 2 * 30720, 40));
  src.UpsertPod(PendingPod("team-a", "held", "u2", 16384));
  src.UpsertPod(PendingPod("team-a", "too-big", "u3", 500000));  // over the quota and any card
  webui::Snapshot s = src.Collect();
  ASSERT_EQ(s.quotas.size(), 1u);
  const webui::QuotaRow& q = s.quotas[0];
  EXPECT_EQ(q.kind, "namespace");
  EXPECT_EQ(q.owner, "team-a");
  EXPECT_EQ(q.memory_mib.used, 30720);
  EXPECT_EQ(q.memory_mib.limit, 40960);
  EXPECT_EQ(q.cores.used, 40);
  EXPECT_EQ(q.cores.limit, 100);
  EXPECT_LT(q.gpus.limit, 0);
  EXPECT_EQ(s.quota_names.memory, "limits.nvidia.com/gpumem");
  EXPECT_EQ(s.quota_names.gpus, "limits.nvidia.com/gpu");
  ASSERT_EQ(s.pending.size(), 2u);
  const webui::PendingRow& held = s.pending[0].name == "held" ? s.pending[0] : s.pending[1];
  const webui::PendingRow& big = s.pending[0].name == "held" ? s.pending[1] : s.pending[0];
  EXPECT_TRUE(held.quota);
  EXPECT_EQ(held.reason,
            "namespace team-a would exceed its gpumem quota: 60/80 GiB used, 32 GiB asked");
  EXPECT_FALSE(big.quota);
  EXPECT_EQ(big.reason, "0/1 nodes fit: 1 insufficient GPU memory");
  // The pod ends: its usage goes; the quota removed: no row.
  Json done = PlacedPod("team-a", "run", "u1", "n1", "GPU-n1-0", 2 * 30720, 40);
  done["status"]["phase"] = "Succeeded";
  src.UpsertPod(done);
  EXPECT_EQ(src.Collect().quotas[0].memory_mib.used, 0);
  src.DeleteQuota(ResourceQuota("team-a", "gpu", Json::object()));
  EXPECT_TRUE(src.Collect().quotas.empty());
}

TEST(ClusterWebUiSource, QuotasOffShowNothingAndHoldNothing) {
  ClusterSourceOptions o;
  o.quotas = false;
  ClusterWebUiSource src(o, nullptr);
  src.UpsertNode(testing::MakeNode("n1", testing::MakeGpus("n1", 1)));
  src.UpsertQuota(ResourceQuota("team-a", "gpu", {{"limits.nvidia.com/gpumem", "1024"}}));
  src.UpsertPod(PendingPod("team-a", "p", "u1", 4096));
  webui::Snapshot s = src.Collect();
  EXPECT_FALSE(s.quotas_enforced);
  EXPECT_TRUE(s.quotas.empty());
  ASSERT_EQ(s.pending.size(), 1u);
  EXPECT_FALSE(s.pending[0].quota);
  EXPECT_EQ(s.pending[0].reason, "fits 1 node(s) now; waiting for kube-scheduler");
}

TEST(SchedulerWebUi, OffWithoutListenAndNamedErrorsForBadValues) {
  EnvGuard g;
  unsetenv("HAMI_WEBUI_LISTEN");
  auto off = SchedulerWebUi::FromEnv(nullptr, ExtenderOptions{});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  for (const char* bad : {"8080", "127.0.0.1:http", "127.0.0.1:70000"}) {
    setenv("HAMI_WEBUI_LISTEN", bad, 1);
    auto r = SchedulerWebUi::FromEnv(nullptr, ExtenderOptions{});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("HAMI_WEBUI_LISTEN"), std::string::npos);
  }
  setenv("HAMI_WEBUI_LISTEN", "127.0.0.1:0", 1);
  setenv("HAMI_WEBUI_MONITOR_PORT", "-1", 1);
  EXPECT_FALSE(SchedulerWebUi::FromEnv(nullptr, ExtenderOptions{}).ok());
  setenv("HAMI_WEBUI_MONITOR_PORT", "9394", 1);
  setenv("HAMI_WEBUI_MONITOR_URLS", "ftp://x", 1);
  auto u = SchedulerWebUi::FromEnv(nullptr, ExtenderOptions{});
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("ftp://x"), std::string::npos);
}

TEST(SchedulerWebUi, ServesTheClusterFromWatches) {
  EnvGuard g;
  testing::FakeApiServer api;
  ASSERT_TRUE(api.Start().ok());
  ASSERT_TRUE(api.Create("nodes", testing::MakeNode("n1", testing::MakeGpus("n1", 2))).ok());
  Json big = testing::MakeGpuPod("team-a", "big", 1, 500000);
  big["spec"]["schedulerName"] = "hami-scheduler";
  ASSERT_TRUE(api.Create("pods", big).ok());
  // Over its namespace's quota too, but it fits no card at all: the engine's reason stays.
  ASSERT_TRUE(api.Create("resourcequotas",
                         ResourceQuota("team-a", "gpu", {{"limits.nvidia.com/gpumem", "1024"}}))
                  .ok());
  ClientConfig cfg = api.client_config();
  auto client = HttpKubeClient::Create(cfg).value();
  setenv("HAMI_WEBUI_LISTEN", "127.0.0.1:0", 1);
  auto ui = SchedulerWebUi::FromEnv(client.get(), ExtenderOptions{});
  ASSERT_TRUE(ui.ok()) << ui.status().ToString();
  ASSERT_NE(*ui, nullptr);
  httplib::Client c("127.0.0.1", (*ui)->port());
  Json o;
  for (int i = 0; i < 100; ++i) {  // the watches list first
    auto r = c.Get("/ui/api/overview");
    ASSERT_TRUE(r);
    o = Json::parse(r->body);
    if (o["cards"]["total"] == 2 && o["pending"]["total"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(o["mode"], "cluster");
  EXPECT_EQ(o["cards"]["total"], 2);
  ASSERT_EQ(o["pending"]["total"], 1);
  EXPECT_EQ(o["pending"]["items"][0]["reason"], "0/1 nodes fit: 1 insufficient GPU memory");
  EXPECT_EQ(o["pending"]["items"][0]["quota"], false);
  // The ResourceQuota through the UI's own watch.
  Json q;
  for (int i = 0; i < 100; ++i) {
    q = Json::parse(c.Get("/ui/api/quotas")->body);
    if (q["configured"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(q["configured"], 1);
  EXPECT_EQ(q["items"][0]["owner"], "team-a");
  EXPECT_EQ(q["items"][0]["memory"]["limit"], 1024);
  EXPECT_EQ(q["items"][0]["memory"]["used"], 0);
  EXPECT_TRUE(q["items"][0]["gpus"].is_null());
  EXPECT_EQ(q["resources"]["memory"], "limits.nvidia.com/gpumem");
  EXPECT_EQ(q["waiting"]["total"], 0);
  auto bad = c.Get("/ui/api/quotas?type=A100");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(Json::parse(bad->body)["error"]["message"],
            "parameter \"type\" does not apply to quotas");
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  (*ui)->Stop();
  api.Stop();
}

}  // namespace
}  // namespace hami::k8s
