// hami-scheduler's web UI from the environment: refused values, and a cluster served over HTTP
// from the API-server double (nodes, a placed pod, a pending pod with the engine's reason).
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/webui/serve.h"

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
  ClientConfig cfg;
  cfg.server = api.url();
  cfg.qps = 0;
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
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  (*ui)->Stop();
  api.Stop();
}

}  // namespace
}  // namespace hami::k8s
