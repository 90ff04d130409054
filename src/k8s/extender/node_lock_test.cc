// HAMi's node lock as this scheduler reads and writes it (sched/node_lock.h) with the samples of
// HAMi's pkg/util/nodelock/nodelock_test.go, and the --node-lock / --node-lock-expire switches.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/time_format.h"
#include "k8s/extender/config.h"
#include "sched/node_lock.h"

namespace hami::k8s {
namespace {

using namespace std::chrono_literals;

TEST(NodeLockCodec, HamisSamples) {
  // GenerateNodeLockKeyByPod: time.Now().Format(time.RFC3339) + ",<ns>,<name>" (test pods
  // hami-ns/hami, test-ns/test-pod, namespace/pod), in the scheduler's local zone.
  for (const auto& [value, ns, pod] :
       {std::tuple{"2026-12-06T06:05:03Z,hami-ns,hami", "hami-ns", "hami"},
        std::tuple{"2026-12-06T14:05:03+08:00,test-ns,test-pod", "test-ns", "test-pod"},
        std::tuple{"2026-12-06T06:05:03Z,namespace,pod", "namespace", "pod"}}) {
    auto l = sched::ParseNodeLock(value);
    ASSERT_TRUE(l.ok()) << value << ": " << l.status().ToString();
    EXPECT_EQ(l->ns, ns);
    EXPECT_EQ(l->pod, pod);
  }
  auto utc = sched::ParseNodeLock("2026-12-06T06:05:03Z,test-ns,test-pod");
  auto zoned = sched::ParseNodeLock("2026-12-06T14:05:03+08:00,test-ns,test-pod");
  EXPECT_EQ(utc->time, zoned->time);
  // What this scheduler writes is what HAMi writes (UTC is a valid RFC3339 local zone).
  EXPECT_EQ(sched::FormatNodeLock(*zoned), "2026-12-06T06:05:03Z,test-ns,test-pod");
  // The older bare form (GenerateNodeLockKeyByPod(nil)).
  auto bare = sched::ParseNodeLock("2026-12-06T06:05:03Z");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->pod.empty());
  EXPECT_EQ(sched::FormatNodeLock(*bare), "2026-12-06T06:05:03Z");
  // HAMi's "node lock is invalid" sample, and "expected 3 parts".
  for (const char* bad :
       {"lock", "", "2026-12-06T06:05:03Z,a", "2026-12-06T06:05:03Z,a,b,c", "yesterday,ns,pod"}) {
    auto r = sched::ParseNodeLock(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("hami.io/mutex.lock"), std::string::npos) << bad;
  }
  // An owner HAMi cannot use still has a time that expires.
  EXPECT_FALSE(sched::ParseNodeLock("2026-12-06T06:05:03Z,,p").ok());
  EXPECT_TRUE(sched::ParseNodeLockTime("2026-12-06T06:05:03Z,,p").ok());
  EXPECT_FALSE(sched::ParseNodeLockTime("lock").ok());
}

TEST(NodeLockCodec, ExpiryIsStrictlyOlderThan) {
  auto l = sched::ParseNodeLock("2026-12-06T06:05:03Z,ns,p").value();
  EXPECT_FALSE(sched::NodeLockExpired(l, l.time + 5min, 5min));
  EXPECT_TRUE(sched::NodeLockExpired(l, l.time + 5min + 1s, 5min));
  EXPECT_FALSE(sched::NodeLockExpired(l, l.time - 1h, 5min));  // a clock behind: not expired
}

TEST(NodeLockMode, HandshakeTellsWhosePluginRunsOnTheNode) {
  auto node = [](const std::string& h) {
    return Json{{"metadata", {{"name", "n"}, {"annotations", {{"hami.io/node-handshake", h}}}}}};
  };
  const auto now = common::ParseRfc3339("2026-12-06T06:05:03Z").value();
  ASSERT_TRUE(OurPluginHandshake(node("Reported_2026-12-06 06:05:03")).has_value());
  EXPECT_EQ(*OurPluginHandshake(node("Reported_2026-12-06 06:05:03")), now);
  EXPECT_TRUE(NodeRunsOurDevicePlugin(node("Reported_2026-12-06 06:05:03"), now));
  EXPECT_TRUE(NodeRunsOurDevicePlugin(node("Reported_2026-12-06 06:03:33"), now));
  EXPECT_TRUE(NodeRunsOurDevicePlugin(node("Reported_2026-12-06 06:06:00"), now));  // skew
  // Not refreshed for 90 s (three of its 30 s reports): the plugin that wrote it may be gone
  // (HAMi's newer plugins do not rewrite the handshake), so the lock is taken; likewise a time far
  // in the future.
  EXPECT_FALSE(NodeRunsOurDevicePlugin(node("Reported_2026-12-06 06:03:32"), now));
  EXPECT_FALSE(NodeRunsOurDevicePlugin(node("Reported_2026-12-06 06:06:34"), now));
  EXPECT_FALSE(NodeRunsOurDevicePlugin(node("Reported_2026-13-06 06:05:03"), now));
  for (const char* h : {"Reported 2026-12-06 06:05:03.5 +0000 UTC m=+1.0",  // HAMi's plugin
                        "Requesting_2026.12.06 06:05:03",  // HAMi's scheduler asking
                        "Deleted_2026.12.06 06:05:03", "", "Reported_2026-12-06 06:05",
                        "Reported_2026-12-06T06:05:03", "Reported_2026-12-06 06:05:03x"}) {
    EXPECT_FALSE(NodeRunsOurDevicePlugin(node(h), now)) << h;
  }
  EXPECT_FALSE(NodeRunsOurDevicePlugin(Json{{"metadata", {{"name", "n"}}}}, now));
  EXPECT_EQ(ParseNodeLockMode("auto").value(), NodeLockMode::kAuto);
  EXPECT_EQ(ParseNodeLockMode("hami").value(), NodeLockMode::kHami);
  EXPECT_EQ(ParseNodeLockMode("off").value(), NodeLockMode::kOff);
  EXPECT_NE(ParseNodeLockMode("on").status().message().find("--node-lock"), std::string::npos);
}

TEST(NodeLockMode, GoDurations) {
  EXPECT_EQ(ParseGoDuration("f", "5m").value(), 5min);
  EXPECT_EQ(ParseGoDuration("f", "300s").value(), 300s);
  EXPECT_EQ(ParseGoDuration("f", "1h30m").value(), 90min);
  EXPECT_EQ(ParseGoDuration("f", "1.5s").value(), 1500ms);
  EXPECT_EQ(ParseGoDuration("f", "250ms").value(), 250ms);
  EXPECT_EQ(ParseGoDuration("f", "2us").value(), std::chrono::microseconds(2));
  EXPECT_EQ(ParseGoDuration("f", "0").value(), 0s);
  EXPECT_EQ(ParseGoDuration("f", "-1m").value(), -1min);
  for (const char* bad : {"", "5", "m", "5 m", "5x", "1..5s", "s5", "99999999999h"}) {
    auto r = ParseGoDuration("--node-lock-expire", bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--node-lock-expire"), std::string::npos) << bad;
  }
}

std::optional<SchedulerFlags> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "hami-scheduler");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int code = 0;
  return ParseFlags(static_cast<int>(argv.size()), argv.data(), code);
}

TEST(NodeLockMode, FlagsAndHamisEnvironment) {
  auto def = Parse({});
  ASSERT_TRUE(def);
  auto c = BuildConfig(*def, "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->extender.node_lock, NodeLockMode::kAuto);
  EXPECT_EQ(c->extender.node_lock_expire, 5min);  // HAMi's NodeLockTimeout

  ::setenv("HAMI_NODELOCK_EXPIRE", "90s", 1);  // HAMi's chart: nodeLockExpire
  auto env = Parse({"--node-lock=hami"});
  ::unsetenv("HAMI_NODELOCK_EXPIRE");
  ASSERT_TRUE(env);
  c = BuildConfig(*env, "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->extender.node_lock, NodeLockMode::kHami);
  EXPECT_EQ(c->extender.node_lock_expire, 90s);

  auto flag = Parse({"--node-lock", "off", "--node-lock-expire=2m"});
  ASSERT_TRUE(flag);
  c = BuildConfig(*flag, "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->extender.node_lock, NodeLockMode::kOff);
  EXPECT_EQ(c->extender.node_lock_expire, 2min);

  for (const auto& [args, word] :
       {std::pair{std::vector<std::string>{"--node-lock=sometimes"}, "--node-lock"},
        std::pair{std::vector<std::string>{"--node-lock-expire=soon"}, "--node-lock-expire"},
        std::pair{std::vector<std::string>{"--node-lock-expire=0"}, "--node-lock-expire"},
        std::pair{std::vector<std::string>{"--node-lock-expire=-5m"}, "--node-lock-expire"}}) {
    auto f = Parse(args);
    ASSERT_TRUE(f);
    auto bad = BuildConfig(*f, "");
    ASSERT_FALSE(bad.ok()) << args[0];
    EXPECT_NE(bad.status().message().find(word), std::string::npos) << bad.status().ToString();
  }
}

}  // namespace
}  // namespace hami::k8s
