// hami-scheduler over HTTP against the API-server double and a simulated kubelet: the HTTP
// front (health, readiness, metrics, malformed bodies), 1,000 pods filtered, prioritized and
// bound while nodes and pods change (no GPU over-committed, annotations consistent, state
// equal to what the annotations say), and 50 GPU pods bound to one node at once.
#include <httplib.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/http_server.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/testing/sim_kubelet.h"
#include "sched/annotation.h"
#include "sched/node_codec.h"

namespace hami::k8s {
namespace {

using namespace std::chrono_literals;
using testing::FakeApiServer;
using testing::MakeGpuPod;
using testing::MakeGpus;
using testing::MakeNode;
using testing::SimKubelet;

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    api_.set_bookmark_interval(200ms);
    ClientConfig cfg = api_.client_config();
    client_ = HttpKubeClient::Create(cfg).value();
    kubelet_client_ = HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 50ms;
    opts_.record_events = false;
  }
  void TearDown() override {
    http_.reset();
    if (kubelet_) kubelet_->Stop();
    ext_.reset();
    client_.reset();
    kubelet_client_.reset();
    api_.Stop();
  }
  void StartAll(bool wait_ready = true) {
    ext_ = std::make_unique<Extender>(opts_, client_.get());
    HttpServerOptions so;
    so.max_connections = 96;
    so.keep_alive_timeout_s = 1;
    http_ = std::make_unique<HttpServer>(so, ext_.get(), WebhookOptions{});
    ASSERT_TRUE(http_->Start().ok());
    ext_->Start();
    if (wait_ready) {
      ASSERT_TRUE(ext_->WaitReady(5s));
    }
    kubelet_ = std::make_unique<SimKubelet>(kubelet_client_.get());
    kubelet_->Start();
  }
  std::unique_ptr<httplib::Client> Http() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", http_->port());
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_read_timeout(60, 0);
    return c;
  }
  static Json Post(httplib::Client& c, const std::string& path, const Json& body, int* status) {
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    if (!r) {
      std::printf("transport error: %s\n", httplib::to_string(r.error()).c_str());
      *status = -1;
      return nullptr;
    }
    *status = r->status;
    return Json::parse(r->body, nullptr, false);
  }

  FakeApiServer api_;
  std::unique_ptr<HttpKubeClient> client_, kubelet_client_;
  ExtenderOptions opts_;
  std::unique_ptr<Extender> ext_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<SimKubelet> kubelet_;
};

TEST_F(E2eTest, HttpFrontHealthReadinessMetricsAndBadBodies) {
  api_.FailNext("GET", "/api/v1/nodes", 503, 3);
  ASSERT_TRUE(api_.Create("nodes", MakeNode("n1", MakeGpus("n1", 2))).ok());
  StartAll(false);
  auto c = Http();
  EXPECT_EQ(c->Get("/healthz")->status, 200);
  auto early = c->Get("/readyz");
  ASSERT_TRUE(early);
  if (!ext_->Ready()) {
    EXPECT_EQ(early->status, 503);
  }
  ASSERT_TRUE(ext_->WaitReady(5s));
  EXPECT_EQ(c->Get("/readyz")->status, 200);
  auto m = c->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("hami_gpu_memory_limit_bytes{node=\"n1\""), std::string::npos);
  EXPECT_EQ(c->Get("/nope")->status, 404);
  for (const char* path : {"/filter", "/prioritize", "/bind", "/webhook"}) {
    for (const char* body :
         {"", "{", "[]", "null", "{\"pod\":5}", "{\"kind\":7}", "{\"podName\":{}}", "\"str\""}) {
      auto r = c->Post(path, body, "application/json");
      ASSERT_TRUE(r) << path << " " << body;
      EXPECT_EQ(r->status, 400) << path << " " << body << " -> " << r->body;
      Json j = Json::parse(r->body, nullptr, false);
      ASSERT_TRUE(j.is_object()) << r->body;
      EXPECT_FALSE(j["error"].get<std::string>().empty());
    }
  }
  // A good filter and webhook call over HTTP.
  int status = 0;
  Json f = Post(*c, "/filter", {{"pod", MakeGpuPod("ns", "p", 1, 1000)}, {"nodenames", {"n1"}}},
                &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(f["nodenames"], Json({"n1"}));
  Json w = Post(*c, "/webhook", testing::MakeAdmissionReview(MakeGpuPod("ns", "p", 1, 1)), &status);
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(w["response"]["allowed"]);
}

// Recomputes per-GPU usage from the pods' annotations as stored in the API server.
struct Ledger {
  std::map<std::string, sched::GpuInfo> gpus;  // uuid -> info
  std::map<std::string, std::string> gpu_node;
  std::map<std::string, sched::GpuUsage> used;
};

TEST_F(E2eTest, ThousandPodsUnderChurnNeverOvercommit) {
  constexpr int kNodes = 40, kPods = 1000, kWorkers = 8;
  for (int i = 0; i < kNodes; ++i) {
    std::string n = "node-" + std::to_string(i);
    ASSERT_TRUE(api_.Create("nodes", MakeNode(n, MakeGpus(n, 4))).ok());
  }
  opts_.bind_wait_timeout = 10s;
  StartAll();
  std::atomic<int> next{0}, bound{0}, unschedulable{0}, bind_errors{0}, http_errors{0};
  std::atomic<bool> churn_stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      auto c = Http();
      std::vector<std::string> names;
      for (int i = 0; i < kNodes + 4; ++i) names.push_back("node-" + std::to_string(i));
      for (int i; (i = next++) < kPods;) {
        int count = 1 + static_cast<int>(rng() % 2);
        int mem = 1000 + static_cast<int>(rng() % 7) * 1000;
        int cores = static_cast<int>(rng() % 4) * 10;
        auto created =
            api_.Create("pods", MakeGpuPod("ns", "p" + std::to_string(i), count, mem, cores));
        if (!created.ok()) continue;
        int st = 0;
        Json f = Post(*c, "/filter", {{"pod", *created}, {"nodenames", names}}, &st);
        if (st != 200) {
          http_errors++;
          continue;
        }
        if (f["nodenames"].empty()) {
          unschedulable++;
          continue;
        }
        Json p = Post(*c, "/prioritize", {{"pod", *created}, {"nodenames", f["nodenames"]}}, &st);
        if (st != 200) {
          http_errors++;
          continue;
        }
        std::string best;
        int best_score = -1;
        for (const auto& hp : p) {
          if (hp["score"].get<int>() > best_score) {
            best_score = hp["score"];
            best = hp["host"];
          }
        }
        Json b = Post(*c, "/bind",
                      {{"podName", MetaString(*created, "name")},
                       {"podNamespace", "ns"},
                       {"podUID", MetaString(*created, "uid")},
                       {"node", best}},
                      &st);
        if (st != 200) {
          http_errors++;
        } else if (!b["error"].get<std::string>().empty()) {
          if (bind_errors++ == 0) std::printf("first lost race: %s\n", b.dump().c_str());
        } else {
          bound++;
        }
      }
    });
  }
  // Churn: pods finish or are deleted, node annotations are rewritten, nodes come and go.
  std::thread churn([&] {
    std::mt19937 rng(99);
    int round = 0;
    while (!churn_stop) {
      std::this_thread::sleep_for(5ms);
      // Only pods that are running (served) finish or go away, as in a real cluster.
      std::vector<Json> running;
      for (auto& p : api_.List("pods")) {
        if (Annotation(p, "hami.io/bind-phase") == "success" && !PodTerminated(p)) {
          running.push_back(std::move(p));
        }
      }
      if (!running.empty() && rng() % 3 == 0) {
        const Json& victim = running[rng() % running.size()];
        if (rng() % 2) {
          (void)api_.Delete("pods", "ns", MetaString(victim, "name"));
        } else {
          (void)api_.MergePatch("pods", "ns", MetaString(victim, "name"),
                                {{"status", {{"phase", "Succeeded"}}}});
        }
      }
      std::string n = "node-" + std::to_string(rng() % kNodes);
      (void)api_.Replace("nodes", MakeNode(n, MakeGpus(n, 4)));
      std::string extra = "node-" + std::to_string(kNodes + round % 4);
      if (round % 2 == 0) {
        (void)api_.Create("nodes", MakeNode(extra, MakeGpus(extra, 2, 8000)));
      } else {
        (void)api_.Delete("nodes", "", extra);
      }
      ++round;
    }
  });
  for (auto& t : workers) t.join();
  churn_stop = true;
  churn.join();
  EXPECT_EQ(http_errors.load(), 0);
  EXPECT_GT(bound.load(), kPods / 2);

  // Settle: every bound pod is served by the simulated kubelet (or gone).
  auto settled = [&] {
    for (const auto& p : api_.List("pods")) {
      if (Annotation(p, "hami.io/bind-phase") == "allocating") return false;
    }
    return true;
  };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!settled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(settled());
  EXPECT_EQ(kubelet_->failures(), 0) << (kubelet_->errors().empty() ? "" : kubelet_->errors()[0]);
  for (const auto& s : kubelet_->served()) {
    EXPECT_EQ(s.served_uid, s.pod_uid);
    EXPECT_EQ(s.devices, s.expected);
  }

  // The ledger from the API server's pods and nodes.
  Ledger L;
  for (const auto& n : api_.List("nodes")) {
    auto gpus = sched::DecodeNodeRegister(Annotation(n, "hami.io/node-nvidia-register"));
    ASSERT_TRUE(gpus.ok());
    for (const auto& g : *gpus) {
      L.gpus[g.uuid] = g;
      L.gpu_node[g.uuid] = MetaString(n, "name");
    }
  }
  int checked = 0;
  for (const auto& p : api_.List("pods")) {
    std::string node = p["spec"].value("nodeName", "");
    std::string alloc = Annotation(p, "hami.io/vgpu-devices-allocated");
    std::string phase = Annotation(p, "hami.io/bind-phase");
    if (node.empty()) {
      EXPECT_TRUE(alloc.empty() || phase == "failed") << ObjectKey(p);
      continue;
    }
    ++checked;
    EXPECT_EQ(Annotation(p, "hami.io/vgpu-node"), node);
    EXPECT_EQ(phase, "success");
    auto segs = sched::DecodeContainerDevices(alloc);
    ASSERT_TRUE(segs.ok()) << alloc;
    ASSERT_EQ(segs->size(), 1u);
    int want = std::stoi(
        p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].get<std::string>());
    EXPECT_EQ(static_cast<int>((*segs)[0].size()), want);
    EXPECT_EQ(Annotation(p, "hami.io/vgpu-devices-to-allocate"), ";");  // served
    if (PodTerminated(p)) continue;
    for (const auto& d : (*segs)[0]) {
      EXPECT_TRUE(d.uuid.rfind("GPU-" + node + "-", 0) == 0) << d.uuid << " on " << node;
      auto& u = L.used[d.uuid];
      u.used_mem_mib += d.used_mem_mib;
      u.used_cores += d.used_cores;
      u.used_slices += 1;
    }
  }
  EXPECT_GT(checked, 0);
  for (const auto& [uuid, u] : L.used) {
    if (!L.gpus.count(uuid)) continue;  // node removed meanwhile
    const auto& g = L.gpus[uuid];
    EXPECT_LE(u.used_mem_mib, g.memory_mib) << uuid;
    EXPECT_LE(u.used_cores, g.cores) << uuid;
    EXPECT_LE(u.used_slices, g.split_count) << uuid;
  }
  // The extender's state equals the ledger once the watches have caught up.
  auto matches = [&] {
    auto snap = ext_->UsageSnapshot();
    for (const auto& [node, gpus] : snap) {
      auto api_node = api_.Get("nodes", "", node);
      if (!api_node.ok()) continue;
      auto decoded =
          sched::DecodeNodeRegister(Annotation(*api_node, "hami.io/node-nvidia-register"));
      for (std::size_t i = 0; i < gpus.size(); ++i) {
        const auto& want = L.used[(*decoded)[i].uuid];
        if (gpus[i].used_mem_mib != want.used_mem_mib || gpus[i].used_slices != want.used_slices ||
            gpus[i].used_cores != want.used_cores) {
          return false;
        }
      }
    }
    return true;
  };
  deadline = std::chrono::steady_clock::now() + 5s;
  while (!matches() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(matches());
  std::printf("bound %d, unschedulable %d, lost races %d, checked %d\n", bound.load(),
              unschedulable.load(), bind_errors.load(), checked);
}

TEST_F(E2eTest, TlsServerAndClientVerifyCertificates) {
  // A self-signed certificate for 127.0.0.1 (the openssl tool is part of the build image).
  char tmpl[] = "/tmp/k8s_tls_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=hami-scheduler "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir + "/tls.key -out " + dir + "/tls.crt >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl tool not available";
  ext_ = std::make_unique<Extender>(opts_, client_.get());
  HttpServerOptions so;
  so.cert_file = dir + "/tls.crt";
  so.key_file = dir + "/tls.key";
  so.keep_alive_timeout_s = 1;
  http_ = std::make_unique<HttpServer>(so, ext_.get(), WebhookOptions{});
  ASSERT_TRUE(http_->Start().ok());
  // The API client over HTTPS with the CA: the TLS handshake passes and the server answers
  // (404: the extender is not an API server), so the error is NotFound, not Unavailable.
  ClientConfig cfg;
  cfg.server = "https://127.0.0.1:" + std::to_string(http_->port());
  cfg.ca_pem = ReadFile(dir + "/tls.crt").value();
  cfg.qps = 0;
  auto tls_client = HttpKubeClient::Create(cfg).value();
  EXPECT_EQ(tls_client->Get(Resource::Nodes(), "", "x").status().code(), StatusCode::kNotFound);
  // Without the CA the certificate is refused.
  cfg.ca_pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  auto untrusted = HttpKubeClient::Create(cfg).value();
  EXPECT_EQ(untrusted->Get(Resource::Nodes(), "", "x").status().code(), StatusCode::kUnavailable);
  cfg.insecure_skip_tls_verify = true;
  auto insecure = HttpKubeClient::Create(cfg).value();
  EXPECT_EQ(insecure->Get(Resource::Nodes(), "", "x").status().code(), StatusCode::kNotFound);
  // Bad certificate files are a clear start-up error.
  HttpServerOptions bad = so;
  bad.cert_file = dir + "/missing.crt";
  HttpServer broken(bad, ext_.get(), WebhookOptions{});
  EXPECT_EQ(broken.Start().code(), StatusCode::kInvalidArgument);
  std::system(("rm -rf " + dir).c_str());
}

TEST_F(E2eTest, FiftyPodsBoundToOneNodeAllStartPromptly) {
  ASSERT_TRUE(api_.Create("nodes", MakeNode("big", MakeGpus("big", 8, 81920))).ok());
  opts_.bind_wait_timeout = 30s;
  StartAll();
  constexpr int kPods = 50;
  std::vector<Json> pods;
  for (int i = 0; i < kPods; ++i) {
    auto p = api_.Create("pods", MakeGpuPod("ns", "w" + std::to_string(i), 1 + i % 2, 4000, 10));
    ASSERT_TRUE(p.ok());
    pods.push_back(*p);
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> binders;
  std::atomic<int> ok{0};
  for (int i = 0; i < kPods; ++i) {
    binders.emplace_back([&, i] {
      auto c = Http();
      int st = 0;
      Json b = Post(*c, "/bind",
                    {{"podName", MetaString(pods[i], "name")},
                     {"podNamespace", "ns"},
                     {"podUID", MetaString(pods[i], "uid")},
                     {"node", "big"}},
                    &st);
      if (st == 200 && b["error"] == "") {
        ok++;
      } else {
        std::printf(
            "bind %d: status %d %s at %.2f s\n", i, st, b.dump().c_str(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    });
  }
  for (auto& t : binders) t.join();
  auto all_served = [&] {
    for (const auto& p : api_.List("pods")) {
      if (Annotation(p, "hami.io/bind-phase") != "success") return false;
    }
    return true;
  };
  // The simulated kubelet marks a pod served (bind-phase success, through the API) before it
  // records what it handed out: wait for both.
  while ((!all_served() || kubelet_->served().size() < static_cast<std::size_t>(kPods)) &&
         std::chrono::steady_clock::now() - start < 60s) {
    std::this_thread::sleep_for(5ms);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("50 pods on one node served in %.2f s\n", secs);
  EXPECT_EQ(ok.load(), kPods);
  EXPECT_TRUE(all_served());
  if (!all_served()) {
    std::printf("turn holder: %s\n", ext_->TurnHolder("big").c_str());
    for (const auto& p : api_.List("pods")) {
      std::printf("%s %s rv=%s phase=%s node=%s\n", MetaString(p, "name").c_str(),
                  MetaString(p, "uid").c_str(), MetaString(p, "resourceVersion").c_str(),
                  Annotation(p, "hami.io/bind-phase").c_str(),
                  p["spec"].value("nodeName", "").c_str());
    }
    for (const auto& e : kubelet_->errors()) std::printf("kubelet: %s\n", e.c_str());
  }
  EXPECT_LT(secs, 60);
  EXPECT_EQ(kubelet_->failures(), 0);
  auto served = kubelet_->served();
  EXPECT_EQ(served.size(), static_cast<std::size_t>(kPods));
  std::set<std::string> uids;
  for (const auto& s : served) {
    EXPECT_EQ(s.served_uid, s.pod_uid) << "swapped";
    EXPECT_EQ(s.devices, s.expected);
    uids.insert(s.served_uid);
  }
  EXPECT_EQ(uids.size(), static_cast<std::size_t>(kPods));
}

}  // namespace
}  // namespace hami::k8s
