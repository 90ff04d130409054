#include <gtest/gtest.h>

#include <random>

#include "sched/engine.h"
#include "sched/test_util.h"

namespace hami::sched {
namespace {

using namespace testing;  // NOLINT

TEST(ClusterState, NodeLifecycleErrors) {
  ClusterState s;
  EXPECT_TRUE(s.AddNode(N("n1", {G("GPU-0")})).ok());
  EXPECT_EQ(s.AddNode(N("n1", {G("GPU-0")})).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.UpdateNode(N("n2", {G("GPU-0")})).code(), StatusCode::kNotFound);
  EXPECT_EQ(s.RemoveNode("n2").code(), StatusCode::kNotFound);
  struct Case {
    NodeInfo node;
    const char* err;
  };
  const Case bad[] = {
      {N("", {}), "empty name"},
      {N("x", {G("")}), "empty UUID"},
      {N("x", {G("GPU-0"), G("GPU-0")}), "duplicate UUID"},
      {N("x", {G("GPU-0", 0)}), "memory must be > 0"},
      {N("x", {G("GPU-0", 1, "T", 0, 10, 0)}), "cores must be > 0"},
      {N("x", {G("GPU-0", 1, "T", 0, 0)}), "split count must be > 0"},
  };
  for (const Case& c : bad) {
    Status st = s.AddNode(c.node);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.err;
    EXPECT_NE(st.message().find(c.err), std::string::npos) << st.message();
  }
  EXPECT_EQ(s.node_count(), 1u);
  EXPECT_TRUE(s.UpsertNode(N("n2", {})).ok());
  EXPECT_TRUE(s.UpsertNode(N("n2", {G("GPU-0")})).ok());
  EXPECT_EQ(s.NodeNames(), (std::vector<std::string>{"n1", "n2"}));
  EXPECT_TRUE(s.RemoveNode("n1").ok());
  EXPECT_EQ(s.FindNode("n1"), nullptr);
  ASSERT_NE(s.FindNode("n2"), nullptr);
  EXPECT_EQ(s.FindNode("n2")->gpus.size(), 1u);
  EXPECT_EQ(s.node_count(), 1u);
}

TEST(ClusterState, PlacementValidation) {
  ClusterState s;
  PodPlacement two_same = One({D("GPU-0", 1), D("GPU-0", 1)});
  PodPlacement bad_init = One({D("GPU-0", 1)});
  bad_init.num_init = 2;
  struct Case {
    const char* uid;
    const char* node;
    PodPlacement p;
    const char* err;
  };
  const Case cases[] = {
      {"", "n", One({}), "empty pod uid"},
      {"u", "", One({}), "empty node"},
      {"u", "n", One({D("", 1)}), "empty UUID"},
      {"u", "n", One({D("GPU-0", -1)}), "negative memory"},
      {"u", "n", One({D("GPU-0", 1, -1)}), "negative cores"},
      {"u", "n", two_same, "twice in one container"},
      {"u", "n", bad_init, "num_init 2"},
  };
  for (const Case& c : cases) {
    Status st = s.AddPlacement(c.uid, c.node, c.p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.err;
    EXPECT_NE(st.message().find(c.err), std::string::npos) << st.message();
  }
  EXPECT_EQ(s.placement_count(), 0u);
  EXPECT_EQ(s.RemovePlacement("nope").code(), StatusCode::kNotFound);
}

TEST(ClusterState, IncrementalUsage) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
  ASSERT_TRUE(s.AddPlacement("a", "n1", One({D("GPU-0", 3000, 30), D("GPU-1", 3000, 30)})).ok());
  ASSERT_TRUE(s.AddPlacement("b", "n1", One({D("GPU-0", 1000, 100)})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{4000, 130, 2, 1}));
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), (GpuUsage{3000, 30, 1, 0}));
  EXPECT_FALSE(s.Usage("n1", "GPU-9").has_value());
  EXPECT_FALSE(s.Usage("n9", "GPU-0").has_value());
  // Replacing a pod's placement subtracts the old one.
  ASSERT_TRUE(s.AddPlacement("a", "n1", One({D("GPU-1", 500, 5)})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{1000, 100, 1, 1}));
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), (GpuUsage{500, 5, 1, 0}));
  ASSERT_TRUE(s.RemovePlacement("b").ok());
  ASSERT_TRUE(s.RemovePlacement("a").ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), GpuUsage{});
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), GpuUsage{});
  EXPECT_EQ(s.placement_count(), 0u);
}

TEST(ClusterState, InitContainersCountAsPeakNotSum) {
  struct Case {
    const char* name;
    PodPlacement p;
    GpuUsage want0;
  };
  PodPlacement a;  // init 5000/50 on GPU-0; apps 3000/30 + 1000/10 on GPU-0
  a.containers = {{D("GPU-0", 5000, 50)}, {D("GPU-0", 3000, 30)}, {D("GPU-0", 1000, 10)}};
  a.num_init = 1;
  PodPlacement b = a;  // unknown init count: everything summed (over-counts, never under)
  b.num_init = 0;
  PodPlacement c;  // two init containers run one after the other: max of them
  c.containers = {{D("GPU-0", 5000, 10)}, {D("GPU-0", 2000, 60)}, {}};
  c.num_init = 2;
  PodPlacement d;  // init on GPU-1 only: GPU-0 carries only the apps
  d.containers = {{D("GPU-1", 9000, 90)}, {D("GPU-0", 100, 1)}};
  d.num_init = 1;
  const Case cases[] = {
      {"peak of init vs sum of apps", a, {5000, 50, 2, 0}},
      {"num_init 0 sums", b, {9000, 90, 3, 0}},
      {"max over init containers", c, {5000, 60, 1, 0}},
      {"other GPU", d, {100, 1, 1, 0}},
  };
  for (const Case& k : cases) {
    ClusterState s;
    ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
    ASSERT_TRUE(s.AddPlacement("p", "n1", k.p).ok());
    EXPECT_EQ(*s.Usage("n1", "GPU-0"), k.want0) << k.name;
    ASSERT_TRUE(s.RemovePlacement("p").ok());
    EXPECT_EQ(*s.Usage("n1", "GPU-0"), GpuUsage{}) << k.name;
    EXPECT_EQ(*s.Usage("n1", "GPU-1"), GpuUsage{}) << k.name;
  }
}

TEST(ClusterState, PlacementsSurviveNodeChanges) {
  ClusterState s;
  // The pod arrives before its node.
  ASSERT_TRUE(s.AddPlacement("p", "n1", One({D("GPU-0", 1000, 10), D("GPU-1", 2000, 20)})).ok());
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), (GpuUsage{2000, 20, 1, 0}));
  // GPU-1 disappears, then comes back.
  ASSERT_TRUE(s.UpdateNode(N("n1", {G("GPU-0")})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{1000, 10, 1, 0}));
  ASSERT_TRUE(s.UpdateNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), (GpuUsage{2000, 20, 1, 0}));
  // The node goes away and comes back.
  ASSERT_TRUE(s.RemoveNode("n1").ok());
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-1"), G("GPU-0")})).ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{1000, 10, 1, 0}));
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), (GpuUsage{2000, 20, 1, 0}));
  ASSERT_TRUE(s.RemovePlacement("p").ok());
  EXPECT_EQ(*s.Usage("n1", "GPU-1"), GpuUsage{});
}

TEST(ClusterState, RestoreRejectsBadInputWithoutChange) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0")})).ok());
  ASSERT_TRUE(s.AddPlacement("p", "n1", One({D("GPU-0", 1000)})).ok());
  std::vector<PlacedPod> pods = {{"q", "n1", One({D("GPU-0", 1)})}, {"", "n1", One({})}};
  EXPECT_EQ(s.RestoreFromPlacements(pods).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{1000, 0, 1, 0}));
  EXPECT_TRUE(s.HasPlacement("p"));
  pods.pop_back();
  ASSERT_TRUE(s.RestoreFromPlacements(pods).ok());
  EXPECT_FALSE(s.HasPlacement("p"));
  EXPECT_EQ(*s.Usage("n1", "GPU-0"), (GpuUsage{1, 0, 1, 0}));
}

// Random add/replace/remove sequences: the incremental state equals a state restored from the
// surviving placements, and one built by adding them in another order.
TEST(ClusterState, RestoreEqualsIncrementalRandomized) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    std::vector<NodeInfo> nodes;
    for (int n = 0; n < 6; ++n) {
      std::vector<GpuInfo> gpus;
      for (int g = 0; g < 4; ++g) gpus.push_back(G("GPU-" + std::to_string(n) + std::to_string(g)));
      nodes.push_back(N("n" + std::to_string(n), gpus));
    }
    ClusterState inc, restored, reordered;
    for (auto* s : {&inc, &restored, &reordered})
      for (const auto& n : nodes) ASSERT_TRUE(s->AddNode(n).ok());
    std::map<std::string, PlacedPod> live;
    for (int step = 0; step < 300; ++step) {
      int op = pick(10);
      std::string uid = "pod" + std::to_string(pick(40));
      if (op < 7) {
        const NodeInfo& node = nodes[pick(6)];
        PodPlacement p;
        int containers = 1 + pick(3);
        p.num_init = pick(containers + 1);
        for (int c = 0; c < containers; ++c) {
          ContainerDevices devs;
          int first = pick(4), count = pick(3);
          for (int k = 0; k < count && first + k < 4; ++k)
            devs.push_back(DeviceAlloc{node.gpus[first + k].uuid, "T", pick(5000), pick(101)});
          p.containers.push_back(devs);
        }
        ASSERT_TRUE(inc.AddPlacement(uid, node.name, p).ok());
        live[uid] = PlacedPod{uid, node.name, p};
      } else if (live.contains(uid)) {
        ASSERT_TRUE(inc.RemovePlacement(uid).ok());
        live.erase(uid);
      } else {
        EXPECT_EQ(inc.RemovePlacement(uid).code(), StatusCode::kNotFound);
      }
    }
    std::vector<PlacedPod> list;
    for (auto& [uid, p] : live) list.push_back(p);
    ASSERT_TRUE(restored.RestoreFromPlacements(list).ok());
    std::shuffle(list.begin(), list.end(), rng);
    for (const auto& p : list) ASSERT_TRUE(reordered.AddPlacement(p.uid, p.node, p.placement).ok());
    EXPECT_EQ(inc.UsageSnapshot(), restored.UsageSnapshot()) << "seed " << seed;
    EXPECT_EQ(inc.UsageSnapshot(), reordered.UsageSnapshot()) << "seed " << seed;
    EXPECT_EQ(inc.placement_count(), live.size());
    // Removing everything leaves zero usage.
    for (const auto& p : list) ASSERT_TRUE(inc.RemovePlacement(p.uid).ok());
    for (const auto& [name, gpus] : inc.UsageSnapshot())
      for (const auto& u : gpus) EXPECT_EQ(u, GpuUsage{}) << name;
  }
}

}  // namespace
}  // namespace hami::sched
