// Mixed deployments with HAMi's node lock hami.io/mutex.lock (issue 13), against the API-server
// double: (a) this scheduler next to HAMi's device plugin (a test double of it and its
// kubelet), (b) HAMi's scheduler (a test double of its Bind) next to this project's device
// plugin (the real Allocator). 200 pods on 10 nodes each: every container gets exactly the
// devices its scheduler chose for it, no pod is served twice or for another, no lock is left,
// and stale locks of crashed holders are recovered after expiry.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "common/time_format.h"
#include "deviceplugin/allocator.h"
#include "deviceplugin/kube_adapter.h"
#include "hami_doubles.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "k8s/testing/sim_kubelet.h"

namespace hami::mixed {
namespace {

using namespace std::chrono_literals;
using k8s::Annotation;
using k8s::Extender;
using k8s::ExtenderOptions;
using k8s::HttpKubeClient;
using k8s::MetaString;
using k8s::NodeLockMode;
using k8s::testing::FakeApiServer;
using k8s::testing::FakeContainer;

constexpr int kNodes = 10;
constexpr int kPods = 200;
// HAMi's device plugin's handshake ("Reported " + Go's time.String()) and this project's.
constexpr char kHamiHandshake[] = "Reported 2026-12-06 06:00:00.123456789 +0000 UTC m=+5.000000001";
// This project's, fresh (what its plugin writes every 30 s).
std::string OurHandshake() {
  std::string t = common::NowRfc3339();  // "YYYY-MM-DDTHH:MM:SSZ"
  return "Reported_" + t.substr(0, 10) + " " + t.substr(11, 8);
}

std::string Node(int i) { return "n" + std::to_string(i); }

// Pod i: every 7th has two GPU containers, every 3rd asks for 2 GPUs, the rest 1.
Json MakeTestPod(int i) {
  std::string name = "p" + std::to_string(i);
  auto ctr = [](const char* n, int gpus) {
    FakeContainer c;
    c.name = n;
    c.limits = {{"nvidia.com/gpu", std::to_string(gpus)}, {"nvidia.com/gpumem", "1000"}};
    return c;
  };
  if (i % 7 == 0) return k8s::testing::MakePod("default", name, {ctr("a", 1), ctr("b", 1)});
  return k8s::testing::MakePod("default", name, {ctr("main", i % 3 == 0 ? 2 : 1)});
}

int GpuContainers(int i) { return i % 7 == 0 ? 2 : 1; }

// "U1,T,m,c:U2,T,m,c:" -> "U1,U2" (what NVIDIA_VISIBLE_DEVICES should say).
std::string UuidsOf(const std::string& segment) {
  std::string out;
  for (std::size_t pos = 0; pos < segment.size();) {
    std::size_t end = segment.find(':', pos);
    if (end == std::string::npos) break;
    std::string dev = segment.substr(pos, end - pos);
    out += (out.empty() ? "" : ",") + dev.substr(0, dev.find(','));
    pos = end + 1;
  }
  return out;
}

std::string LockTime(std::chrono::system_clock::duration age) {
  return common::FormatRfc3339(std::chrono::system_clock::now() - age);
}

class MixedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    api_.set_bookmark_interval(200ms);
    k8s::ClientConfig cfg = api_.client_config();
    cfg_ = cfg;
    client_ = HttpKubeClient::Create(cfg).value();
    node_client_ = HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 50ms;
    opts_.record_events = false;
    opts_.quotas = false;
  }
  void TearDown() override {
    if (plugin_) plugin_->Stop();
    if (kubelet_) kubelet_->Stop();
    ext_.reset();
    api_.Stop();
  }
  void AddNodes(const std::string& handshake, int n = kNodes) {
    for (int i = 0; i < n; ++i) {
      Json node = k8s::testing::MakeNode(Node(i), k8s::testing::MakeGpus(Node(i), 4));
      node["metadata"]["annotations"]["hami.io/node-handshake"] = handshake;
      ASSERT_TRUE(api_.Create("nodes", node).ok());
    }
  }
  void SetLock(const std::string& node, const std::string& value) {
    ASSERT_TRUE(
        api_.MergePatch("nodes", "", node, {{"metadata", {{"annotations", {{kLockKey, value}}}}}})
            .ok());
  }
  std::string LockOn(const std::string& node) {
    auto n = api_.Get("nodes", "", node);
    return n.ok() ? Annotation(*n, kLockKey) : "?";
  }
  // Waits until no node carries the lock; returns the nodes that still do.
  std::vector<std::string> LocksLeft(std::chrono::milliseconds wait) {
    auto until = std::chrono::steady_clock::now() + wait;
    std::vector<std::string> left;
    do {
      left.clear();
      for (const auto& n : api_.List("nodes")) {
        if (!Annotation(n, kLockKey).empty()) left.push_back(MetaString(n, "name"));
      }
      if (left.empty()) break;
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < until);
    return left;
  }
  void StartExtender() {
    ext_ = std::make_unique<Extender>(opts_, client_.get());
    ext_->Start();
    ASSERT_TRUE(ext_->WaitReady(5s));
  }
  Json BindArgs(const Json& pod, const std::string& node) {
    return {{"podName", MetaString(pod, "name")},
            {"podNamespace", MetaString(pod, "namespace")},
            {"podUID", MetaString(pod, "uid")},
            {"node", node}};
  }
  // kube-scheduler's binds: many at once, each retried until it succeeds (or 60 s).
  void BindAll(const std::vector<Json>& pods, int* retries) {
    std::atomic<int> next{0}, failed{0};
    std::vector<std::thread> binders;
    for (int t = 0; t < 32; ++t) {
      binders.emplace_back([&] {
        for (int i = next++; i < static_cast<int>(pods.size()); i = next++) {
          auto until = std::chrono::steady_clock::now() + 60s;
          for (;;) {
            auto r = ext_->Bind(BindArgs(pods[i], Node(i % kNodes)));
            if (r.ok() && (*r)["error"] == "") break;
            failed++;
            if (std::chrono::steady_clock::now() > until) {
              ADD_FAILURE() << "bind of pod " << i << " never succeeded: " << r->dump();
              break;
            }
            std::this_thread::sleep_for(10ms);
          }
        }
      });
    }
    for (auto& b : binders) b.join();
    *retries = failed.load();
  }
  std::vector<Json> CreatePods() {
    std::vector<Json> pods;
    for (int i = 0; i < kPods; ++i) {
      auto p = api_.Create("pods", MakeTestPod(i));
      EXPECT_TRUE(p.ok());
      pods.push_back(*p);
    }
    return pods;
  }
  void RunOurSchedulerWithHamisPlugin(bool stale);
  void RunHamiSchedulerWithOurPlugin(bool stale);
  void ExpectAllSucceeded(const std::vector<Json>& pods) {
    for (const auto& p : pods) {
      auto cur = api_.Get("pods", "default", MetaString(p, "name"));
      ASSERT_TRUE(cur.ok());
      EXPECT_EQ(Annotation(*cur, "hami.io/bind-phase"), "success") << MetaString(p, "name");
    }
  }

  FakeApiServer api_;
  k8s::ClientConfig cfg_;
  std::unique_ptr<HttpKubeClient> client_, node_client_;
  ExtenderOptions opts_;
  std::unique_ptr<Extender> ext_;
  std::unique_ptr<SimHamiPlugin> plugin_;
  std::unique_ptr<k8s::testing::SimKubelet> kubelet_;
};

int TotalGpuContainers() {
  int n = 0;
  for (int i = 0; i < kPods; ++i) n += GpuContainers(i);
  return n;
}

// Each container served once, for its own pod, with what the scheduler wrote for it.
template <typename ServedList>
void ExpectExactlyOwnDevices(const ServedList& served) {
  std::map<std::string, int> per_pod;
  for (const auto& s : served) {
    EXPECT_EQ(s.served_uid, s.admitted_uid) << "pod " << s.admitted_uid << " got another's devices";
    EXPECT_EQ(s.devices, s.expected) << "pod " << s.admitted_uid;
    EXPECT_FALSE(s.devices.empty());
    per_pod[s.admitted_uid]++;
  }
  EXPECT_EQ(static_cast<int>(served.size()), TotalGpuContainers());
  EXPECT_EQ(static_cast<int>(per_pod.size()), kPods);
}

// (a) this scheduler + HAMi's device plugin; with `stale`, three locks of crashed holders.
void MixedTest::RunOurSchedulerWithHamisPlugin(bool stale) {
  AddNodes(kHamiHandshake);
  opts_.node_lock = NodeLockMode::kAuto;  // the handshake says: HAMi's plugin
  opts_.node_lock_expire = 1500ms;
  if (stale) {
    // n0: expired, its pod still exists; n1: fresh, its pod is gone; n2: fresh, its pod exists
    // and never finishes (a crashed HAMi scheduler's lock): waited on until it expires.
    ASSERT_TRUE(api_.Create("pods", k8s::testing::MakeGpuPod("default", "crashed", 1, 1000)).ok());
    ASSERT_TRUE(api_.Create("pods", k8s::testing::MakeGpuPod("default", "stuck", 1, 1000)).ok());
    SetLock("n0", LockTime(10min) + ",default,crashed");
    SetLock("n1", LockTime(0s) + ",default,gone");
    SetLock("n2", LockTime(0s) + ",default,stuck");
  }
  auto pods = CreatePods();
  StartExtender();
  plugin_ = std::make_unique<SimHamiPlugin>(node_client_.get());
  plugin_->Start();

  auto t0 = std::chrono::steady_clock::now();
  int retries = 0;
  BindAll(pods, &retries);
  auto until = std::chrono::steady_clock::now() + 60s;
  while (static_cast<int>(plugin_->served().size()) + plugin_->failures() < TotalGpuContainers() &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("our scheduler + HAMi's plugin%s: %d pods on %d nodes in %.2f s (%d bind retries)\n",
              stale ? " (3 stale locks)" : "", kPods, kNodes, secs, retries);

  EXPECT_EQ(plugin_->failures(), 0) << ::testing::PrintToString(plugin_->errors());
  EXPECT_EQ(plugin_->lock_misses(), 0) << "HAMi's plugin had to guess from its pod list";
  ExpectExactlyOwnDevices(plugin_->served());
  ExpectAllSucceeded(pods);
  EXPECT_TRUE(LocksLeft(5s).empty()) << ::testing::PrintToString(LocksLeft(0ms));
  EXPECT_GE(ext_->counters().node_locks_taken, static_cast<uint64_t>(kPods));
  if (stale) {
    EXPECT_GE(ext_->counters().node_locks_broken, 3u);
    // The crashed holders were not touched, let alone bound.
    EXPECT_TRUE(api_.Get("pods", "default", "crashed")->at("spec").value("nodeName", "").empty());
  }
}

TEST_F(MixedTest, OurSchedulerWithHamisDevicePlugin) { RunOurSchedulerWithHamisPlugin(false); }

TEST_F(MixedTest, OurSchedulerWithHamisDevicePluginRecoversStaleLocks) {
  RunOurSchedulerWithHamisPlugin(true);
}

// The same pods with this project's plugin (the simulated kubelet's exact-match rule) and no
// lock: the baseline the mixed pair's time is compared with.
TEST_F(MixedTest, AllOursBaselineTakesNoLock) {
  AddNodes(OurHandshake());
  auto pods = CreatePods();
  StartExtender();
  kubelet_ = std::make_unique<k8s::testing::SimKubelet>(node_client_.get());
  kubelet_->Start();
  auto t0 = std::chrono::steady_clock::now();
  int retries = 0;
  BindAll(pods, &retries);
  auto until = std::chrono::steady_clock::now() + 60s;
  while (static_cast<int>(kubelet_->served().size()) + kubelet_->failures() <
             TotalGpuContainers() &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("all ours: %d pods on %d nodes in %.2f s (%d bind retries)\n", kPods, kNodes, secs,
              retries);
  EXPECT_EQ(kubelet_->failures(), 0);
  std::vector<Served> served;
  for (const auto& s : kubelet_->served()) {
    served.push_back({s.pod_uid, s.served_uid, s.devices, s.expected});
  }
  ExpectExactlyOwnDevices(served);
  EXPECT_EQ(ext_->counters().node_locks_taken, 0u);
  EXPECT_TRUE(LocksLeft(0ms).empty());
}

// (b) HAMi's scheduler + this project's device plugin; with `stale`, a crashed holder's lock
// on n0.
void MixedTest::RunHamiSchedulerWithOurPlugin(bool stale) {
  AddNodes(OurHandshake());
  if (stale) {
    ASSERT_TRUE(api_.Create("pods", k8s::testing::MakeGpuPod("default", "crashed", 1, 1000)).ok());
    SetLock("n0", LockTime(0s) + ",default,crashed");
  }
  auto pods = CreatePods();
  // A short expiry, so the crashed holder's lock is recovered within the test; it must still
  // exceed the longest bind-to-Allocate time (with whole-second lock times) or HAMi's scheduler
  // would break live locks and bind a second pod to a node (HAMi #3096), which this project's
  // plugin then refuses rather than guess.
  SimHamiScheduler sched(client_.get(), 3s);

  // This project's device plugin, one per node, behind a simulated kubelet.
  char tmpl[] = "/tmp/hami-mixed-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string hook = tmpl;
  auto kube = deviceplugin::AdaptKubeClient(HttpKubeClient::Create(cfg_).value());
  std::map<std::string, std::unique_ptr<deviceplugin::Allocator>> plugins;
  for (int n = 0; n < kNodes; ++n) {
    deviceplugin::AllocatorOptions o;
    o.node_name = Node(n);
    o.hook_path = hook;
    for (int g = 0; g < 4; ++g) o.node_uuids.push_back("GPU-" + Node(n) + "-" + std::to_string(g));
    plugins[Node(n)] = std::make_unique<deviceplugin::Allocator>(o, kube.get());
  }
  std::mutex mu;
  std::vector<Served> served;
  std::vector<std::string> errors;
  std::atomic<bool> stop{false};
  std::thread kubelet([&] {
    std::set<std::string> done;
    while (!stop) {
      bool any = false;
      for (const auto& pod : api_.List("pods")) {
        std::string uid = MetaString(pod, "uid"), node = pod["spec"].value("nodeName", "");
        if (node.empty() || done.count(uid)) continue;
        done.insert(uid);
        any = true;
        auto expected = k8s::testing::Segments(Annotation(pod, kAllocated));
        for (std::size_t c = 0; c < pod["spec"]["containers"].size(); ++c) {
          int count =
              std::stoi(pod["spec"]["containers"][c]["resources"]["limits"]["nvidia.com/gpu"]
                            .get<std::string>());
          std::vector<std::string> ids;
          for (int k = 0; k < count; ++k)
            ids.push_back("GPU-" + node + "-" + std::to_string(k) + "::0");
          auto r = plugins[node]->AllocateContainer(ids);
          std::lock_guard<std::mutex> l(mu);
          if (!r.ok()) {
            errors.push_back(k8s::ObjectKey(pod) + ": " + r.status().ToString());
            break;
          }
          // Which pod was served: its directory is in the cache path; what: the UUIDs.
          std::string exp = c < expected.size() ? expected[c] : "";
          std::string dir = r->envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"];
          std::string visible = r->envs["NVIDIA_VISIBLE_DEVICES"];
          served.push_back({uid, dir.find(uid) != std::string::npos ? uid : dir,
                            visible == UuidsOf(exp) ? exp : visible, exp});
        }
      }
      if (!any) std::this_thread::sleep_for(2ms);
    }
  });

  auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> next{0};
  std::vector<std::thread> binders;
  for (int t = 0; t < 32; ++t) {
    binders.emplace_back([&] {
      for (int i = next++; i < kPods; i = next++) {
        std::string node = Node(i % kNodes);
        // HAMi's Filter picks the devices; here: distinct GPUs of the node, 1000 MiB, 5 %.
        std::string devs;
        for (int c = 0; c < GpuContainers(i); ++c) {
          int count = (i % 7 != 0 && i % 3 == 0) ? 2 : 1;
          for (int k = 0; k < count; ++k) {
            devs +=
                "GPU-" + node + "-" + std::to_string((i / kNodes + c + k) % 4) + ",NVIDIA,1000,5:";
          }
          devs += ";";
        }
        auto until = std::chrono::steady_clock::now() + 60s;
        while (!sched.Bind(pods[i], node, devs).ok()) {
          if (std::chrono::steady_clock::now() > until) {
            ADD_FAILURE() << "HAMi's bind of pod " << i << " never succeeded";
            break;
          }
          std::this_thread::sleep_for(20ms);  // kube-scheduler's retry, shortened
        }
      }
    });
  }
  for (auto& b : binders) b.join();
  auto until = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (static_cast<int>(served.size() + errors.size()) >= TotalGpuContainers()) break;
    }
    if (std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(10ms);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  kubelet.join();
  std::printf("HAMi's scheduler + our plugin%s: %d pods on %d nodes in %.2f s (%d lock refusals)\n",
              stale ? " (1 stale lock)" : "", kPods, kNodes, secs, sched.locked_refusals());
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  ExpectExactlyOwnDevices(served);
  ExpectAllSucceeded(pods);
  EXPECT_TRUE(LocksLeft(5s).empty()) << "this plugin must release the lock after Allocate";
  if (stale) {
    EXPECT_GE(sched.broken_locks(), 1);  // the crashed holder's, after 3 s
  }
  std::filesystem::remove_all(hook);
}

TEST_F(MixedTest, HamisSchedulerWithOurDevicePlugin) { RunHamiSchedulerWithOurPlugin(false); }

TEST_F(MixedTest, HamisSchedulerWithOurDevicePluginRecoversStaleLock) {
  RunHamiSchedulerWithOurPlugin(true);
}

}  // namespace
}  // namespace hami::mixed
