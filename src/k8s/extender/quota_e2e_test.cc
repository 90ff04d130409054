// GPU quotas end to end (docs/quotas.md): hami-scheduler over HTTP against the API-server double
// and a simulated kubelet, ResourceQuota objects in five namespaces, 1,000 pods raced by eight
// "kube-schedulers" while running pods finish. Checks: no namespace ever over its quota
// (recomputed from the API server's pods), every pod left pending says which quota, a restart
// of the scheduler mid-run rebuilds exactly the same usage, the webhook denies a pod larger
// than its whole quota, and the quota metric.
#include <httplib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/http_server.h"
#include "k8s/extender/quotas.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/testing/sim_kubelet.h"

namespace hami::k8s {
namespace {

using namespace std::chrono_literals;
using testing::FakeApiServer;
using testing::MakeGpus;
using testing::MakeNode;
using testing::SimKubelet;

constexpr int kNamespaces = 5;

Json Quota(const std::string& ns, const std::string& name, const Json& hard) {
  return {{"apiVersion", "v1"},
          {"kind", "ResourceQuota"},
          {"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"hard", hard}}}};
}

// The usage per namespace recomputed from the pods stored in the API server: every pod that
// carries a placement the scheduler counts (not failed, not finished).
std::map<std::string, sched::QuotaAmount> LedgerFromApi(FakeApiServer& api) {
  std::map<std::string, sched::QuotaAmount> used;
  for (const auto& p : api.List("pods")) {
    if (PodTerminated(p) || Annotation(p, kBindPhaseAnnotation) == "failed") continue;
    auto placement = PlacementFromPod(p);
    if (!placement.ok() || !placement->has_value()) continue;
    used[MetaString(p, "namespace")] += sched::PlacementQuotaUsage(**placement);
  }
  return used;
}

class QuotaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    api_.set_bookmark_interval(200ms);
    ClientConfig cfg = api_.client_config();
    client_ = HttpKubeClient::Create(cfg).value();
    kubelet_client_ = HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 50ms;
    opts_.record_events = false;
    opts_.bind_wait_timeout = 10s;
  }
  void TearDown() override {
    StopScheduler();
    if (kubelet_) kubelet_->Stop();
    client_.reset();
    kubelet_client_.reset();
    api_.Stop();
  }
  void StartScheduler() {
    ext_ = std::make_unique<Extender>(opts_, client_.get());
    WebhookOptions w;
    Extender* ext = ext_.get();
    w.quota_check = [ext](const std::string& ns, const sched::ResolvedPod& pod) {
      return ext->CheckQuotaEverFits(ns, pod);
    };
    HttpServerOptions so;
    so.max_connections = 32;
    so.keep_alive_timeout_s = 1;
    http_ = std::make_unique<HttpServer>(so, ext_.get(), w);
    ASSERT_TRUE(http_->Start().ok());
    ext_->Start();
    ASSERT_TRUE(ext_->WaitReady(10s));
  }
  void StopScheduler() {
    http_.reset();
    ext_.reset();
  }
  std::unique_ptr<httplib::Client> Http() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", http_->port());
    c->set_keep_alive(true);
    c->set_read_timeout(60, 0);
    return c;
  }
  static Json Post(httplib::Client& c, const std::string& path, const Json& body, int* status) {
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    *status = r ? r->status : -1;
    return r ? Json::parse(r->body, nullptr, false) : Json();
  }
  // The extender's quota rows as namespace -> usage.
  std::map<std::string, sched::QuotaAmount> ExtenderUsage() {
    std::map<std::string, sched::QuotaAmount> used;
    for (const auto& row : ext_->QuotaSnapshot()) {
      sched::QuotaAmount& a = used[row.owner];
      if (row.dim == sched::QuotaDim::kMemory) a.memory_mib = row.used;
      if (row.dim == sched::QuotaDim::kCores) a.cores = row.used;
      if (row.dim == sched::QuotaDim::kCards) a.cards = row.used;
    }
    return used;
  }
  void ExpectWithinQuotas(const std::map<std::string, sched::QuotaAmount>& used) {
    for (const auto& [ns, a] : used) {
      auto it = limits_.find(ns);
      if (it == limits_.end()) continue;
      for (int i = 0; i < sched::kQuotaDims; ++i) {
        auto d = static_cast<sched::QuotaDim>(i);
        if (auto limit = it->second.Get(d)) {
          EXPECT_LE(a.Get(d), *limit) << ns << " over its " << sched::QuotaDimName(d) << " quota";
        }
      }
    }
  }
  // The ledger, restricted to what the extender reports (dimensions with a quota).
  std::map<std::string, sched::QuotaAmount> Bounded(std::map<std::string, sched::QuotaAmount> m) {
    for (const auto& [ns, l] : limits_) m[ns];  // namespaces without pods: zero
    for (auto& [ns, a] : m) {
      const sched::QuotaLimits& l = limits_[ns];
      if (!l.memory_mib) a.memory_mib = 0;
      if (!l.cores) a.cores = 0;
      if (!l.cards) a.cards = 0;
    }
    return m;
  }

  FakeApiServer api_;
  std::unique_ptr<HttpKubeClient> client_, kubelet_client_;
  ExtenderOptions opts_;
  std::unique_ptr<Extender> ext_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<SimKubelet> kubelet_;
  std::map<std::string, sched::QuotaLimits> limits_;
};

TEST_F(QuotaE2eTest, ThousandPodsRaceForQuotasWithARestart) {
  constexpr int kNodes = 20, kPods = 1000, kWorkers = 8;
  std::vector<std::string> names;
  for (int i = 0; i < kNodes; ++i) {
    names.push_back("node-" + std::to_string(i));
    ASSERT_TRUE(api_.Create("nodes", MakeNode(names.back(), MakeGpus(names.back(), 4))).ok());
  }
  // Capacity (80 cards of 80 GiB, 10 slices each) is never what stops a pod: the quotas are.
  struct Q {
    std::string ns, name;
    Json hard;
  };
  const std::vector<Q> quotas = {
      {"ns-0", "gpu", {{"limits.nvidia.com/gpumem", "40960"}}},
      {"ns-1", "gpu", {{"limits.nvidia.com/gpucores", "300"}}},
      {"ns-2", "gpu", {{"limits.nvidia.com/gpu", "6"}}},
      {"ns-3", "mem", {{"limits.nvidia.com/gpumem", "61440"}, {"requests.cpu", "8"}}},
      {"ns-3", "cores", {{"limits.nvidia.com/gpucores", "400"}}},  // both objects apply
      {"ns-4", "gpu", {{"limits.nvidia.com/gpumem", "20480"}, {"limits.nvidia.com/gpu", "4"}}},
  };
  for (const auto& q : quotas) {
    ASSERT_TRUE(api_.Create("resourcequotas", Quota(q.ns, q.name, q.hard)).ok());
    auto l = QuotaLimitsFromResourceQuota(Quota(q.ns, q.name, q.hard), {}, 1);
    ASSERT_TRUE(l.ok());
    limits_[q.ns] = sched::Tighter(limits_[q.ns], *l);
  }
  StartScheduler();
  kubelet_ = std::make_unique<SimKubelet>(kubelet_client_.get());
  kubelet_->Start();

  std::atomic<int> next{0}, bound{0}, pending{0}, http_errors{0};
  std::mutex bad_mu;
  std::vector<std::string> bad_reasons;  // pending for anything but its namespace's quota
  auto worker = [&](int w, int end) {
    std::mt19937 rng(static_cast<uint32_t>(w) * 7919u + static_cast<uint32_t>(end));
    auto c = Http();
    for (int i; (i = next++) < end;) {
      std::string ns = "ns-" + std::to_string(i % kNamespaces);
      std::string pod_name = "p" + std::to_string(i);
      Json pod;
      if (rng() % 8 == 0) {  // a percentage of the card: converted on the chosen card
        pod =
            testing::MakePod(ns, pod_name,
                             {{"main",
                               {{"nvidia.com/gpu", "1"},
                                {"nvidia.com/gpumem-percentage", std::to_string(2 + rng() % 8)}}}});
      } else {
        pod = testing::MakeGpuPod(ns, pod_name, 1 + static_cast<int>(rng() % 2),
                                  1024 * (1 + static_cast<int>(rng() % 8)),
                                  10 * static_cast<int>(rng() % 4));
      }
      auto created = api_.Create("pods", pod);
      if (!created.ok()) continue;
      // As kube-scheduler: filter, prioritize, bind; a bind that lost a capacity race to
      // another worker (same best node) is retried, a quota refusal leaves the pod pending.
      std::string why;
      bool done = false;
      for (int attempt = 0; attempt < 5 && !done; ++attempt) {
        int st = 0;
        Json f = Post(*c, "/filter", {{"pod", *created}, {"nodenames", names}}, &st);
        if (st != 200) break;
        if (f["nodenames"].empty()) {
          // Every node says why; the reason must be this namespace's quota.
          for (const char* k : {"failedNodes", "failedAndUnresolvableNodes"}) {
            for (const auto& [node, msg] : f[k].items()) why = msg.get<std::string>();
          }
          done = true;
          break;
        }
        Json p = Post(*c, "/prioritize", {{"pod", *created}, {"nodenames", f["nodenames"]}}, &st);
        std::string best;
        int best_score = -1;
        for (const auto& hp : p) {
          if (hp["score"].get<int>() > best_score) {
            best_score = hp["score"];
            best = hp["host"];
          }
        }
        Json b = Post(*c, "/bind",
                      {{"podName", pod_name},
                       {"podNamespace", ns},
                       {"podUID", MetaString(*created, "uid")},
                       {"node", best}},
                      &st);
        if (st != 200) break;
        why = b["error"].get<std::string>();
        done = why.empty() || why.find(" would exceed its ") != std::string::npos;
      }
      if (!done && why.empty()) {
        http_errors++;
        continue;
      }
      if (done && why.empty()) {
        bound++;
        continue;
      }
      pending++;
      if (why.find("namespace " + ns + " would exceed its ") == std::string::npos) {
        std::lock_guard<std::mutex> lock(bad_mu);
        bad_reasons.push_back(pod_name + ": " + why);
      }
    }
  };
  // Running pods finish now and then, freeing quota for later pods.
  std::atomic<bool> churn_stop{false};
  auto churn = [&] {
    std::mt19937 rng(99);
    while (!churn_stop) {
      std::this_thread::sleep_for(10ms);
      std::vector<Json> running;
      for (auto& p : api_.List("pods")) {
        if (Annotation(p, kBindPhaseAnnotation) == "success" && !PodTerminated(p)) {
          running.push_back(std::move(p));
        }
      }
      if (running.empty() || rng() % 2) continue;
      const Json& victim = running[rng() % running.size()];
      (void)api_.Delete("pods", MetaString(victim, "namespace"), MetaString(victim, "name"));
    }
  };
  // No namespace is ever over its quota, by the API server's pods, checked all along.
  std::atomic<bool> monitor_stop{false};
  std::atomic<int> samples{0};
  std::thread monitor([&] {
    while (!monitor_stop) {
      ExpectWithinQuotas(LedgerFromApi(api_));
      samples++;
      std::this_thread::sleep_for(20ms);
    }
  });

  auto run_phase = [&](int begin, int end, bool with_churn) {
    next = begin;  // each worker's last fetch went past the previous phase's end
    std::thread ch;
    if (with_churn) ch = std::thread(churn);
    std::vector<std::thread> ws;
    for (int w = 0; w < kWorkers; ++w) ws.emplace_back(worker, w, end);
    for (auto& t : ws) t.join();
    churn_stop = true;
    if (ch.joinable()) ch.join();
    churn_stop = false;
  };
  auto settle = [&](std::map<std::string, sched::QuotaAmount> want) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (ExtenderUsage() != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    return ExtenderUsage() == want;
  };

  // Phase 1: half the pods, with pods finishing meanwhile.
  run_phase(0, kPods / 2, true);
  auto ledger = Bounded(LedgerFromApi(api_));
  ASSERT_TRUE(settle(ledger)) << "extender usage never matched the pods";
  auto before = ext_->QuotaSnapshot();

  // Restart mid-run: a new scheduler lists quotas and pods and rebuilds exactly that usage.
  StopScheduler();
  StartScheduler();
  EXPECT_EQ(ext_->QuotaSnapshot(), before);

  // Phase 2: the other half against the restarted scheduler.
  run_phase(kPods / 2, kPods, true);
  monitor_stop = true;
  monitor.join();
  ledger = Bounded(LedgerFromApi(api_));
  ExpectWithinQuotas(ledger);
  EXPECT_TRUE(settle(ledger)) << "extender usage never matched the pods";

  std::printf("%d pods bound, %d pending for their quota, %d overshoot checks\n", bound.load(),
              pending.load(), samples.load());
  EXPECT_EQ(http_errors.load(), 0);
  EXPECT_GT(samples.load(), 0);
  EXPECT_GT(bound.load(), 50);
  EXPECT_EQ(bound.load() + pending.load(), kPods);
  EXPECT_GT(pending.load(), 300);  // the quotas hold far fewer than 1,000 pods
  EXPECT_TRUE(bad_reasons.empty()) << bad_reasons.size() << " pods pending for another reason, "
                                   << "first: " << bad_reasons.front();
  for (const auto& [ns, l] : limits_) {
    EXPECT_FALSE(ledger[ns].IsZero()) << ns << " never got a pod placed";
  }

  // The webhook denies what can never fit; the metric shows HAMi's series.
  auto c = Http();
  int st = 0;
  Json w =
      Post(*c, "/webhook",
           testing::MakeAdmissionReview(testing::MakeGpuPod("ns-4", "huge", 1, 30 * 1024)), &st);
  EXPECT_EQ(st, 200);
  EXPECT_FALSE(w["response"]["allowed"].get<bool>());
  EXPECT_EQ(w["response"]["status"]["message"],
            "hami: namespace ns-4: the pod asks 30 GiB of gpumem, more than its whole gpumem "
            "quota of 20 GiB");
  auto m = c->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("hami_resource_quota_used{namespace=\"ns-0\",quota_name=\"nvidia.com/"
                         "gpumem\",limit=\"40960\"} " +
                         std::to_string(ledger["ns-0"].memory_mib) + "\n"),
            std::string::npos);
}

// A quota appearing, tightening and going away takes effect on the next decision, with the
// named reason while it holds.
TEST_F(QuotaE2eTest, QuotaChangesTakeEffect) {
  ASSERT_TRUE(api_.Create("nodes", MakeNode("n1", MakeGpus("n1", 2))).ok());
  StartScheduler();
  auto c = Http();
  auto filter = [&](const std::string& name, int64_t mem) {
    auto created = api_.Create("pods", testing::MakeGpuPod("team-a", name, 1, mem));
    EXPECT_TRUE(created.ok());
    int st = 0;
    Json f = Post(*c, "/filter", {{"pod", *created}, {"nodenames", {"n1"}}}, &st);
    EXPECT_EQ(st, 200);
    return f;
  };
  EXPECT_EQ(filter("a", 8192)["nodenames"], Json({"n1"}));
  ASSERT_TRUE(
      api_.Create("resourcequotas", Quota("team-a", "q", {{"limits.nvidia.com/gpumem", "4096"}}))
          .ok());
  auto wait_for = [&](auto pred) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  };
  ASSERT_TRUE(wait_for([&] { return !ext_->QuotaSnapshot().empty(); }));
  Json f = filter("b", 8192);
  EXPECT_EQ(f["nodenames"], Json::array());
  EXPECT_EQ(f["failedAndUnresolvableNodes"]["n1"],
            "hami: namespace team-a would exceed its gpumem quota: 0/4 GiB used, 8 GiB asked");
  ASSERT_TRUE(api_.Delete("resourcequotas", "team-a", "q").ok());
  ASSERT_TRUE(wait_for([&] { return ext_->QuotaSnapshot().empty(); }));
  EXPECT_EQ(filter("c", 8192)["nodenames"], Json({"n1"}));
}

}  // namespace
}  // namespace hami::k8s
