// This scheduler's Bind with HAMi's node lock, step by step against the API-server double:
// which nodes get the lock (--node-lock), what it looks like, that another pod's live lock is
// waited on and never overwritten, and that the lock goes away on every way a bind ends.
#include <gtest/gtest.h>

#include "common/time_format.h"
#include "hami_doubles.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "sched/node_lock.h"

namespace hami::mixed {
namespace {

using namespace std::chrono_literals;
using k8s::Annotation;
using k8s::Extender;
using k8s::ExtenderOptions;
using k8s::MetaString;
using k8s::NodeLockMode;
using k8s::testing::FakeApiServer;

class NodeLockBindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    k8s::ClientConfig cfg = api_.client_config();
    client_ = k8s::HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 20ms;
    opts_.record_events = false;
    opts_.quotas = false;
    std::string now = common::NowRfc3339();
    AddNode("ours", "Reported_" + now.substr(0, 10) + " " + now.substr(11, 8));
    AddNode("theirs", "Reported 2026-12-06 06:00:00.5 +0000 UTC m=+1.000000001");
  }
  void TearDown() override {
    ext_.reset();
    api_.Stop();
  }
  void AddNode(const std::string& name, const std::string& handshake) {
    Json node = k8s::testing::MakeNode(name, k8s::testing::MakeGpus(name, 2));
    node["metadata"]["annotations"]["hami.io/node-handshake"] = handshake;
    ASSERT_TRUE(api_.Create("nodes", node).ok());
  }
  void Start() {
    ext_ = std::make_unique<Extender>(opts_, client_.get());
    ext_->Start();
    ASSERT_TRUE(ext_->WaitReady(5s));
  }
  Json Pod(const std::string& name) {
    return api_.Create("pods", k8s::testing::MakeGpuPod("default", name, 1, 1000)).value();
  }
  std::string Bind(const Json& pod, const std::string& node) {
    auto r = ext_->Bind({{"podName", MetaString(pod, "name")},
                         {"podNamespace", "default"},
                         {"podUID", MetaString(pod, "uid")},
                         {"node", node}});
    return r.ok() ? (*r)["error"].get<std::string>() : r.status().ToString();
  }
  std::string Lock(const std::string& node) {
    return Annotation(api_.Get("nodes", "", node).value(), kLockKey);
  }
  void SetLock(const std::string& node, const std::string& value) {
    ASSERT_TRUE(
        api_.MergePatch("nodes", "", node, {{"metadata", {{"annotations", {{kLockKey, value}}}}}})
            .ok());
  }
  void SetPhase(const std::string& pod, const std::string& phase) {
    ASSERT_TRUE(api_.MergePatch("pods", "default", pod,
                                {{"metadata", {{"annotations", {{"hami.io/bind-phase", phase}}}}}})
                    .ok());
  }
  bool LockGoneWithin(const std::string& node, std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (!Lock(node).empty()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  FakeApiServer api_;
  std::unique_ptr<k8s::HttpKubeClient> client_;
  ExtenderOptions opts_;
  std::unique_ptr<Extender> ext_;
};

TEST_F(NodeLockBindTest, AutoLocksOnlyNodesOfHamisPluginAsHamisSchedulerWould) {
  Start();
  Json a = Pod("a"), b = Pod("b");
  uint64_t node_patches = api_.request_count("PATCH");
  ASSERT_EQ(Bind(a, "ours"), "");
  EXPECT_EQ(Lock("ours"), "");  // this project's plugin: its own protocol, no node write
  ASSERT_EQ(Bind(b, "theirs"), "");
  std::string v = Lock("theirs");
  auto lock = sched::ParseNodeLock(v);
  ASSERT_TRUE(lock.ok()) << v;
  EXPECT_EQ(lock->ns, "default");
  EXPECT_EQ(lock->pod, "b");
  EXPECT_LT(std::chrono::system_clock::now() - lock->time, 5s);
  HamiLock hami = ParseHamiLock(v);  // what HAMi's plugin reads
  EXPECT_TRUE(hami.ok);
  EXPECT_EQ(hami.name, "b");
  // HAMi's plugin also needs these on the pod (GetPendingPod / Allocate).
  Json pod = api_.Get("pods", "default", "b").value();
  EXPECT_EQ(Annotation(pod, "hami.io/bind-phase"), "allocating");
  EXPECT_FALSE(Annotation(pod, "hami.io/bind-time").empty());
  EXPECT_EQ(Annotation(pod, "hami.io/vgpu-node"), "theirs");
  EXPECT_FALSE(Annotation(pod, kToAllocate).empty());
  EXPECT_GE(api_.request_count("PATCH") - node_patches, 3u);  // lock + pod (a) + pod (b)
  // The plugin answers; if it did not remove the lock, this scheduler removes it (still b's).
  SetPhase("b", "success");
  EXPECT_TRUE(LockGoneWithin("theirs", 3s));
}

TEST_F(NodeLockBindTest, AnotherPodsLiveLockIsWaitedOnNeverOverwritten) {
  opts_.bind_wait_timeout = 300ms;
  Start();
  Pod("holder");
  std::string held = common::NowRfc3339() + ",default,holder";
  SetLock("theirs", held);
  Json p = Pod("p");
  std::string err = Bind(p, "theirs");
  EXPECT_NE(err.find("is locked"), std::string::npos) << err;
  EXPECT_NE(err.find(held), std::string::npos) << err;
  EXPECT_EQ(Lock("theirs"), held);
  Json cur = api_.Get("pods", "default", "p").value();
  EXPECT_TRUE(cur["spec"].value("nodeName", "").empty());  // not bound
  EXPECT_EQ(Annotation(cur, "hami.io/bind-phase"), "");
  EXPECT_EQ(ext_->placement_count(), 0u);  // its GPUs were given back
  EXPECT_EQ(ext_->TurnHolder("theirs"), "");
  EXPECT_EQ(ext_->counters().node_locks_busy, 1u);
  // The holder finishes (HAMi's plugin marks it success): the next try takes the node at once.
  SetPhase("holder", "success");
  EXPECT_EQ(Bind(p, "theirs"), "");
  EXPECT_EQ(ParseHamiLock(Lock("theirs")).name, "p");
}

TEST_F(NodeLockBindTest, StaleLocksAreBrokenAfterExpiryOrWhenTheirPodIsGone) {
  opts_.node_lock_expire = 1500ms;
  Start();
  Pod("crashed");
  SetLock("theirs", common::NowRfc3339() + ",default,crashed");
  auto t0 = std::chrono::steady_clock::now();
  Json p = Pod("p");
  EXPECT_EQ(Bind(p, "theirs"), "");  // waits for the expiry, then breaks it
  // The lock's time has whole seconds (RFC 3339 as HAMi writes it): up to 1 s of its age is
  // not seen.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 450ms);
  EXPECT_EQ(ParseHamiLock(Lock("theirs")).name, "p");
  // A lock whose pod does not exist: broken without waiting; so is HAMi's bare-time form once
  // it expired, and a value that is no lock at all.
  AddNode("theirs2", "Reported 2026-12-06 06:00:00 +0000 UTC");
  AddNode("theirs3", "");
  AddNode("theirs4", "Deleted_2026.12.06 06:00:00");
  SetLock("theirs2", common::NowRfc3339() + ",default,gone");
  SetLock("theirs3", common::FormatRfc3339(std::chrono::system_clock::now() - 1h));
  SetLock("theirs4", "lock");  // HAMi's own test sample of a malformed lock
  for (int i = 0; i < 300 && ext_->node_count() < 5; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(ext_->node_count(), 5u);  // the node watch delivered the new nodes
  for (const char* n : {"theirs2", "theirs3", "theirs4"}) {
    Json q = Pod(std::string("q-") + n);
    EXPECT_EQ(Bind(q, n), "") << n;
    EXPECT_EQ(ParseHamiLock(Lock(n)).name, std::string("q-") + n);
  }
  EXPECT_EQ(ext_->counters().node_locks_broken, 4u);
}

// The watch may deliver a failed bind attempt's own "failed" mark after the next attempt of
// the same pod took the node lock again (under load, CI saw it): that late event ended the new
// attempt's turn, and with it the new lock went, while the pod was bound and still to be
// allocated. Such an event is older than the bind that followed and is ignored for the turn.
TEST_F(NodeLockBindTest, ALateEventOfAFailedAttemptLeavesTheNextAttemptsLock) {
  Start();
  Json p = Pod("p");
  api_.FailNext("POST", "/binding", 500);
  EXPECT_NE(Bind(p, "theirs"), "");
  Json failed_mark = api_.Get("pods", "default", "p").value();
  ASSERT_EQ(Annotation(failed_mark, "hami.io/bind-phase"), "failed");
  ASSERT_EQ(Bind(p, "theirs"), "");
  ASSERT_FALSE(Lock("theirs").empty());
  ext_->UpsertPod(failed_mark);        // delivered late
  std::this_thread::sleep_for(300ms);  // the reaper releases queued locks at once
  EXPECT_FALSE(Lock("theirs").empty()) << "the second attempt's lock went with a stale event";
  EXPECT_FALSE(ext_->TurnHolder("theirs").empty());
}

TEST_F(NodeLockBindTest, LockReleasedWhenTheBindFailsOrThePodGoes) {
  Start();
  Json p = Pod("p");
  api_.FailNext("POST", "/binding", 500);
  EXPECT_NE(Bind(p, "theirs"), "");
  EXPECT_EQ(Lock("theirs"), "");  // released on the failure path, as HAMi's Bind does
  // Bound, then deleted before the plugin served it: the turn and the lock go.
  ASSERT_EQ(Bind(p, "theirs"), "");
  EXPECT_FALSE(Lock("theirs").empty());
  ASSERT_TRUE(api_.Delete("pods", "default", "p").ok());
  EXPECT_TRUE(LockGoneWithin("theirs", 3s));
  // Bound, never allocated: the allocate timeout fails it and releases the lock.
  ext_.reset();
  opts_.allocate_timeout = 200ms;
  Start();
  Json q = Pod("q");
  ASSERT_EQ(Bind(q, "theirs"), "");
  EXPECT_TRUE(LockGoneWithin("theirs", 3s));
  EXPECT_EQ(Annotation(api_.Get("pods", "default", "q").value(), "hami.io/bind-phase"), "failed");
}

TEST_F(NodeLockBindTest, ModeHamiLocksEveryNodeAndOffNone) {
  opts_.node_lock = NodeLockMode::kHami;
  Start();
  ASSERT_EQ(Bind(Pod("a"), "ours"), "");
  EXPECT_EQ(ParseHamiLock(Lock("ours")).name, "a");
  ext_.reset();
  opts_.node_lock = NodeLockMode::kOff;
  Start();
  ASSERT_EQ(Bind(Pod("b"), "theirs"), "");
  EXPECT_EQ(Lock("theirs"), "");
}

}  // namespace
}  // namespace hami::mixed
