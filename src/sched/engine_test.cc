#include "sched/engine.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "sched/test_util.h"

namespace hami::sched {
namespace {

using namespace testing;  // NOLINT

GpuInfo Unhealthy(GpuInfo g) {
  g.healthy = false;
  return g;
}
GpuInfo Mode(GpuInfo g, VgpuMode m) {
  g.mode = m;
  return g;
}

struct ReasonCase {
  const char* name;
  std::vector<GpuInfo> gpus;
  std::vector<PodPlacement> existing;  // placed on n1 before the decision
  PodRequest pod;
  Reason want;
  std::vector<std::vector<std::string>> want_uuids = {};  // per container, when it fits
};

PodRequest With(PodRequest p, PodOptions o) {
  p.options = std::move(o);
  return p;
}
PodOptions UseTypes(std::vector<std::string> v) {
  PodOptions o;
  o.use_types = std::move(v);
  return o;
}
PodOptions NoUseTypes(std::vector<std::string> v) {
  PodOptions o;
  o.nouse_types = std::move(v);
  return o;
}
PodOptions UseUuids(std::vector<std::string> v) {
  PodOptions o;
  o.use_uuids = std::move(v);
  return o;
}
PodOptions NoUseUuids(std::vector<std::string> v) {
  PodOptions o;
  o.nouse_uuids = std::move(v);
  return o;
}
PodOptions Numa() {
  PodOptions o;
  o.numa_bind = true;
  return o;
}
PodOptions WantMode(VgpuMode m) {
  PodOptions o;
  o.mode = m;
  return o;
}

std::vector<ReasonCase> ReasonCases() {
  return {
      {"fits", {G("GPU-0")}, {}, P({C(1, 1000)}), Reason::kFits, {{"GPU-0"}}},
      {"memory",
       {G("GPU-0")},
       {One({D("GPU-0", 9500)})},
       P({C(1, 1000)}),
       Reason::kInsufficientMemory},
      {"memory exactly full fits",
       {G("GPU-0")},
       {One({D("GPU-0", 9000)})},
       P({C(1, 1000)}),
       Reason::kFits,
       {{"GPU-0"}}},
      {"cores",
       {G("GPU-0")},
       {One({D("GPU-0", 0, 80)})},
       P({C(1, 1000, 30)}),
       Reason::kInsufficientCores},
      {"cores exhausted rejects a 0-core slice",
       {G("GPU-0")},
       {One({D("GPU-0", 0, 50)}), One({D("GPU-0", 0, 50)})},
       P({C(1, 1000, 0)}),
       Reason::kInsufficientCores},
      {"no free slot",
       {G("GPU-0", 10000, "NVIDIA-A100", 0, 2)},
       {One({D("GPU-0", 1)}), One({D("GPU-0", 1)})},
       P({C(1, 1000)}),
       Reason::kNoFreeSlot},
      {"card held exclusively",
       {G("GPU-0")},
       {One({D("GPU-0", 100, 100)})},
       P({C(1, 1000)}),
       Reason::kCardExclusive},
      {"exclusive needs an empty card",
       {G("GPU-0")},
       {One({D("GPU-0", 100, 1)})},
       P({C(1, 1000, 100)}),
       Reason::kCardInUse},
      {"exclusive on an empty card",
       {G("GPU-0")},
       {},
       P({C(1, std::nullopt, 100)}),
       Reason::kFits,
       {{"GPU-0"}}},
      {"unhealthy", {Unhealthy(G("GPU-0"))}, {}, P({C(1, 1)}), Reason::kUnhealthy},
      {"mode mismatch",
       {Mode(G("GPU-0"), VgpuMode::kMig)},
       {},
       With(P({C(1, 1)}), WantMode(VgpuMode::kHamiCore)),
       Reason::kModeMismatch},
      {"mode matches",
       {Mode(G("GPU-0"), VgpuMode::kMps)},
       {},
       With(P({C(1, 1)}), WantMode(VgpuMode::kMps)),
       Reason::kFits,
       {{"GPU-0"}}},
      {"no mode asked: any mode",
       {Mode(G("GPU-0"), VgpuMode::kMig)},
       {},
       P({C(1, 1)}),
       Reason::kFits,
       {{"GPU-0"}}},
      {"type not included",
       {G("GPU-0", 10000, "NVIDIA-Tesla T4")},
       {},
       With(P({C(1, 1)}), UseTypes({"A100"})),
       Reason::kTypeNotIncluded},
      {"type included, case-insensitive substring",
       {G("GPU-0", 10000, "NVIDIA-A100-SXM4-80GB")},
       {},
       With(P({C(1, 1)}), UseTypes({"h100", "a100-sxm"})),
       Reason::kFits,
       {{"GPU-0"}}},
      {"type excluded, case-insensitive",
       {G("GPU-0", 10000, "NVIDIA-Tesla T4")},
       {},
       With(P({C(1, 1)}), NoUseTypes({"t4"})),
       Reason::kTypeExcluded},
      {"type include picks the right GPU",
       {G("GPU-0", 10000, "NVIDIA-Tesla T4"), G("GPU-1", 10000, "NVIDIA-A100")},
       {},
       With(P({C(1, 1)}), UseTypes({"A100"})),
       Reason::kFits,
       {{"GPU-1"}}},
      {"uuid not included (exact, case-sensitive)",
       {G("GPU-0")},
       {},
       With(P({C(1, 1)}), UseUuids({"gpu-0"})),
       Reason::kUuidNotIncluded},
      {"uuid included",
       {G("GPU-0"), G("GPU-1")},
       {},
       With(P({C(1, 1)}), UseUuids({"GPU-1"})),
       Reason::kFits,
       {{"GPU-1"}}},
      {"uuid excluded",
       {G("GPU-0")},
       {},
       With(P({C(1, 1)}), NoUseUuids({"GPU-0"})),
       Reason::kUuidExcluded},
      {"uuid substring is not a match",
       {G("GPU-0")},
       {},
       With(P({C(1, 1)}), UseUuids({"GPU"})),
       Reason::kUuidNotIncluded},
      {"too few GPUs", {G("GPU-0")}, {}, P({C(2, 1)}), Reason::kTooFewGpus},
      {"no GPU", {}, {}, P({C(1, 1)}), Reason::kNoGpu},
      {"numa: GPUs on different NUMA nodes",
       {G("GPU-0", 10000, "T", 0), G("GPU-1", 10000, "T", 1)},
       {},
       With(P({C(2, 1)}), Numa()),
       Reason::kNuma},
      {"numa off: any two GPUs",
       {G("GPU-0", 10000, "T", 0), G("GPU-1", 10000, "T", 1)},
       {},
       P({C(2, 1)}),
       Reason::kFits,
       {{"GPU-0", "GPU-1"}}},
      {"numa: picks the NUMA node with two fitting GPUs",
       {G("GPU-0", 10000, "T", 0), G("GPU-1", 10000, "T", 1), G("GPU-2", 10000, "T", 0),
        G("GPU-3", 10000, "T", 1)},
       {One({D("GPU-0", 9999)})},
       With(P({C(2, 10)}), Numa()),
       Reason::kFits,
       {{"GPU-1", "GPU-3"}}},
      {"an unhealthy GPU of the wanted type says unhealthy",
       {G("GPU-0", 10000, "NVIDIA-Tesla T4"), Unhealthy(G("GPU-1", 10000, "NVIDIA-A100"))},
       {},
       With(P({C(1, 1)}), UseTypes({"A100"})),
       Reason::kUnhealthy},
      {"largest reason over GPUs wins",
       {G("GPU-0", 10000, "NVIDIA-Tesla T4"), G("GPU-1"), Unhealthy(G("GPU-2"))},
       {One({D("GPU-1", 9999)})},
       With(P({C(1, 1000)}), NoUseTypes({"T4"})),
       Reason::kInsufficientMemory},
      {"percentage converts per GPU: too much",
       {G("GPU-0")},
       {One({D("GPU-0", 5000)})},
       P({C(1, std::nullopt, std::nullopt, 60)}),
       Reason::kInsufficientMemory},
      {"percentage converts per GPU: fits",
       {G("GPU-0")},
       {One({D("GPU-0", 5000)})},
       P({C(1, std::nullopt, std::nullopt, 50)}),
       Reason::kFits,
       {{"GPU-0"}}},
      {"whole card by default",
       {G("GPU-0")},
       {One({D("GPU-0", 1)})},
       P({C(1)}),
       Reason::kInsufficientMemory},
      {"second container no longer fits",
       {G("GPU-0")},
       {},
       P({C(1, 6000), C(1, 6000)}),
       Reason::kInsufficientMemory},
      {"second container takes another GPU",
       {G("GPU-0"), G("GPU-1")},
       {},
       P({C(1, 6000), C(1, 6000)}),
       Reason::kFits,
       {{"GPU-0"}, {"GPU-1"}}},
      {"init container's GPU reused by the app",
       {G("GPU-0")},
       {},
       P({C(1, 8000)}, {C(1, 8000)}),
       Reason::kFits,
       {{"GPU-0"}, {"GPU-0"}}},
      {"init containers reuse each other's GPU",
       {G("GPU-0")},
       {},
       P({C(1, 1000)}, {C(1, 8000), C(1, 8000)}),
       Reason::kFits,
       {{"GPU-0"}, {"GPU-0"}, {"GPU-0"}}},
      {"init container that does not fit",
       {G("GPU-0")},
       {One({D("GPU-0", 5000)})},
       P({C(1, 1000)}, {C(1, 8000)}),
       Reason::kInsufficientMemory},
      {"multi-GPU container: distinct GPUs",
       {G("GPU-0"), G("GPU-1"), G("GPU-2")},
       {},
       P({C(3, 100)}),
       Reason::kFits,
       {{"GPU-0", "GPU-1", "GPU-2"}}},
      {"multi-GPU container: one GPU short",
       {G("GPU-0"), G("GPU-1"), G("GPU-2")},
       {One({D("GPU-1", 9999)})},
       P({C(3, 100)}),
       Reason::kInsufficientMemory},
      {"containers without GPU keep their segment",
       {G("GPU-0")},
       {},
       P({C(std::nullopt), C(1, 10)}, {C(0)}),
       Reason::kFits,
       {{}, {}, {"GPU-0"}}},
  };
}

TEST(Engine, ReasonsTable) {
  Engine engine;
  for (const ReasonCase& c : ReasonCases()) {
    ClusterState s;
    ASSERT_TRUE(s.AddNode(N("n1", c.gpus)).ok()) << c.name;
    for (size_t i = 0; i < c.existing.size(); ++i)
      ASSERT_TRUE(s.AddPlacement("old" + std::to_string(i), "n1", c.existing[i]).ok()) << c.name;
    std::vector<std::string> cand = {"n1"};
    auto f = engine.Filter(s, c.pod, cand);
    ASSERT_TRUE(f.ok()) << c.name << ": " << f.status().message();
    ASSERT_EQ(f->nodes.size(), 1u);
    EXPECT_EQ(f->nodes[0].reason, c.want)
        << c.name << ": got " << ReasonName(f->nodes[0].reason) << ", " << f->summary.message;
    auto fp = engine.FilterWithPlacements(s, c.pod, cand);
    ASSERT_TRUE(fp.ok());
    ASSERT_EQ(fp->placements.size(), 1u);
    EXPECT_EQ(fp->placements[0].has_value(), c.want == Reason::kFits) << c.name;
    // Place (the general path) agrees with Filter (which may take the fast path).
    auto placed = engine.Place(s, c.pod, "n1");
    EXPECT_EQ(placed.ok(), c.want == Reason::kFits) << c.name;
    auto d = engine.Schedule(s, c.pod);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->scheduled, c.want == Reason::kFits) << c.name;
    if (c.want != Reason::kFits) {
      EXPECT_EQ(placed.status().code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(d->summary.counts[static_cast<int>(c.want)], 1) << c.name;
      continue;
    }
    ASSERT_TRUE(placed.ok());
    EXPECT_EQ(*placed, d->placement) << c.name;
    EXPECT_EQ(*fp->placements[0], d->placement) << c.name;
    EXPECT_EQ(d->node, "n1");
    ASSERT_EQ(d->placement.containers.size(), c.want_uuids.size()) << c.name;
    EXPECT_EQ(d->placement.num_init, static_cast<int32_t>(c.pod.init_containers.size()));
    for (size_t k = 0; k < c.want_uuids.size(); ++k) {
      std::vector<std::string> got;
      for (const auto& dev : d->placement.containers[k]) got.push_back(dev.uuid);
      EXPECT_EQ(got, c.want_uuids[k]) << c.name << " container " << k;
    }
    // Recording the decision keeps the node consistent.
    ASSERT_TRUE(s.AddPlacement("new", "n1", d->placement).ok());
  }
}

TEST(Engine, PlacementCarriesTypeMemoryAndCores) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0", 40000, "NVIDIA-A100-40GB"),
                                 G("GPU-1", 80000, "NVIDIA-A100-80GB")}))
                  .ok());
  Engine engine;
  auto d = engine.Schedule(s, P({C(2, std::nullopt, 30, 25)}));
  ASSERT_TRUE(d.ok() && d->scheduled);
  ASSERT_EQ(d->placement.containers.size(), 1u);
  ContainerDevices want = {{"GPU-0", "NVIDIA-A100-40GB", 10000, 30},
                           {"GPU-1", "NVIDIA-A100-80GB", 20000, 30}};
  ContainerDevices got = d->placement.containers[0];
  std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.uuid < b.uuid; });
  EXPECT_EQ(got, want);
}

TEST(Engine, DefaultsComeFromConfig) {
  SchedulerConfig cfg;
  cfg.default_memory_mib = 4000;
  cfg.default_cores = 20;
  cfg.default_gpu_num = 2;
  Engine engine(cfg);
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
  auto d = engine.Schedule(s, P({C(std::nullopt, std::nullopt, 20)}));
  ASSERT_TRUE(d.ok() && d->scheduled);
  ASSERT_EQ(d->placement.containers[0].size(), 2u);
  EXPECT_EQ(d->placement.containers[0][0].used_mem_mib, 4000);
  EXPECT_EQ(d->placement.containers[0][0].used_cores, 20);
}

// GPU policy: binpack fills the fuller GPU, spread the emptier; ties by index.
TEST(Engine, GpuPolicies) {
  struct Case {
    const char* name;
    GpuPolicy policy;
    std::vector<PodPlacement> existing;
    int count;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"binpack", GpuPolicy::kBinpack, {One({D("GPU-2", 5000)})}, 1, {"GPU-2"}},
      {"spread", GpuPolicy::kSpread, {One({D("GPU-0", 5000)})}, 1, {"GPU-1"}},
      {"binpack tie by index", GpuPolicy::kBinpack, {}, 1, {"GPU-0"}},
      {"spread tie by index", GpuPolicy::kSpread, {}, 2, {"GPU-0", "GPU-1"}},
      {"spread avoids the two used",
       GpuPolicy::kSpread,
       {One({D("GPU-0", 100)}), One({D("GPU-1", 100)})},
       2,
       {"GPU-2", "GPU-3"}},
      {"binpack takes the two used",
       GpuPolicy::kBinpack,
       {One({D("GPU-3", 100)}), One({D("GPU-1", 200)})},
       2,
       {"GPU-1", "GPU-3"}},
      // Best fit: the card left with the least memory, although GPU-0 has more slices and
      // cores in use (higher utilisation, which binpack preferred before issue 4).
      {"binpack: best memory fit over higher utilisation",
       GpuPolicy::kBinpack,
       {One({D("GPU-0", 100, 40)}), One({D("GPU-0", 100, 40)}), One({D("GPU-0", 100, 10)}),
        One({D("GPU-2", 6000)})},
       1,
       {"GPU-2"}},
      // Same memory left (0.5 of the card): the card left with fewer spare cores (0.6 vs 0.9).
      {"binpack: equal memory fit, fewer cores left",
       GpuPolicy::kBinpack,
       {One({D("GPU-1", 4000, 10)}), One({D("GPU-3", 4000, 40)})},
       1,
       {"GPU-3"}},
      // Cores left below the memory left (0.2 and 0.1 vs 0.5) do not matter: tie by index.
      {"binpack: cores below the memory left tie",
       GpuPolicy::kBinpack,
       {One({D("GPU-2", 4000, 80)}), One({D("GPU-3", 4000, 90)})},
       1,
       {"GPU-2"}},
      // Spread keeps its meaning: the least utilised card, not the worst fit.
      {"spread: least utilised",
       GpuPolicy::kSpread,
       {One({D("GPU-0", 2000)}), One({D("GPU-1", 100, 50)}), One({D("GPU-2", 1000)}),
        One({D("GPU-3", 1500)})},
       1,
       {"GPU-2"}},
  };
  for (const Case& c : cases) {
    for (bool annotate : {false, true}) {
      SchedulerConfig cfg;
      cfg.gpu_policy =
          annotate ? (c.policy == GpuPolicy::kBinpack ? GpuPolicy::kSpread : GpuPolicy::kBinpack)
                   : c.policy;
      Engine engine(cfg);
      ClusterState s;
      ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0"), G("GPU-1"), G("GPU-2"), G("GPU-3")})).ok());
      for (size_t i = 0; i < c.existing.size(); ++i)
        ASSERT_TRUE(s.AddPlacement("o" + std::to_string(i), "n1", c.existing[i]).ok());
      PodRequest pod = P({C(c.count, 1000)});
      if (annotate) pod.options.gpu_policy = c.policy;
      auto d = engine.Schedule(s, pod);
      ASSERT_TRUE(d.ok() && d->scheduled) << c.name;
      std::vector<std::string> got;
      for (const auto& dev : d->placement.containers[0]) got.push_back(dev.uuid);
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, c.want) << c.name << (annotate ? " (annotation)" : " (config)");
    }
  }
}

// Node policy: binpack prefers the fuller node, spread the emptier; ties by name; weights
// decide which dimension counts.
TEST(Engine, NodePoliciesAndWeights) {
  ClusterState s;
  // "slots": 5 small slices (slots 50 % used, memory 5 %); "memory": one big slice (10 %, 90 %).
  ASSERT_TRUE(s.AddNode(N("slots", {G("GPU-0")})).ok());
  ASSERT_TRUE(s.AddNode(N("memory", {G("GPU-0")})).ok());
  ASSERT_TRUE(s.AddNode(N("empty-b", {G("GPU-0")})).ok());
  ASSERT_TRUE(s.AddNode(N("empty-a", {G("GPU-0")})).ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(s.AddPlacement("s" + std::to_string(i), "slots", One({D("GPU-0", 100)})).ok());
  ASSERT_TRUE(s.AddPlacement("m", "memory", One({D("GPU-0", 8000)})).ok());
  struct Case {
    const char* name;
    NodePolicy policy;
    std::optional<ScoringWeights> weights;
    const char* want;
  };
  const Case cases[] = {
      {"binpack, memory weighs most", NodePolicy::kBinpack, ScoringWeights{0, 0, 1}, "memory"},
      {"binpack, slots weigh most", NodePolicy::kBinpack, ScoringWeights{1, 0, 0}, "slots"},
      {"binpack, default weights", NodePolicy::kBinpack, std::nullopt, "memory"},
      {"spread: emptiest, tie by name", NodePolicy::kSpread, std::nullopt, "empty-a"},
      {"spread, slot weight", NodePolicy::kSpread, ScoringWeights{1, 0, 0}, "empty-a"},
  };
  for (const Case& c : cases) {
    for (bool annotate : {false, true}) {
      SchedulerConfig cfg;
      cfg.node_policy =
          annotate ? (c.policy == NodePolicy::kBinpack ? NodePolicy::kSpread : NodePolicy::kBinpack)
                   : c.policy;
      PodRequest pod = P({C(1, 1000)});
      if (annotate) {
        pod.options.node_policy = c.policy;
        pod.options.weights = c.weights;
      } else if (c.weights) {
        cfg.weights = *c.weights;
      }
      Engine engine(cfg);
      auto d = engine.Schedule(s, pod);
      ASSERT_TRUE(d.ok() && d->scheduled) << c.name;
      EXPECT_EQ(d->node, c.want) << c.name << (annotate ? " (annotation)" : " (config)");
      EXPECT_GE(d->extender_score, 0);
      EXPECT_LE(d->extender_score, 10);
      // Filter ranks the same node best.
      auto f = engine.Filter(s, pod);
      ASSERT_TRUE(f.ok());
      const NodeVerdict* best = nullptr;
      for (const auto& v : f->nodes)
        if (v.fits() &&
            (!best || v.score > best->score || (v.score == best->score && v.node < best->node)))
          best = &v;
      ASSERT_NE(best, nullptr);
      EXPECT_EQ(best->node, c.want) << c.name;
      EXPECT_EQ(best->score, d->score);
    }
  }
}

// Binpack at both levels scores a node by how tightly the pod's GPUs fit there (issue 4),
// the utilisation only breaks ties; the other combinations keep the utilisation score. The
// fast path (one container), the general path (NUMA binding forces it) and a memory
// percentage give every node the same score.
TEST(Engine, BestFitNodeScore) {
  ClusterState s;
  // Pod: 1 GPU, 2000 MiB (20 %), cores 0. "fuller" is the fullest node but its best card
  // keeps 1000 MiB; on "tight-a" and "tight-b" GPU-0 is filled exactly; "tight-b" is fuller.
  ASSERT_TRUE(s.AddNode(N("fuller", {G("GPU-0"), G("GPU-1")})).ok());
  ASSERT_TRUE(s.AddNode(N("tight-a", {G("GPU-0"), G("GPU-1")})).ok());
  ASSERT_TRUE(s.AddNode(N("tight-b", {G("GPU-0"), G("GPU-1")})).ok());
  ASSERT_TRUE(s.AddNode(N("empty", {G("GPU-0"), G("GPU-1")})).ok());
  ASSERT_TRUE(s.AddPlacement("f0", "fuller", One({D("GPU-0", 7000)})).ok());
  ASSERT_TRUE(s.AddPlacement("f1", "fuller", One({D("GPU-1", 7000)})).ok());
  ASSERT_TRUE(s.AddPlacement("a0", "tight-a", One({D("GPU-0", 8000)})).ok());
  ASSERT_TRUE(s.AddPlacement("b0", "tight-b", One({D("GPU-0", 8000)})).ok());
  ASSERT_TRUE(s.AddPlacement("b1", "tight-b", One({D("GPU-1", 1000)})).ok());
  struct Case {
    NodePolicy node;
    GpuPolicy gpu;
    const char* want_node;
    const char* want_gpu;
  };
  const Case cases[] = {
      {NodePolicy::kBinpack, GpuPolicy::kBinpack, "tight-b", "GPU-0"},
      {NodePolicy::kBinpack, GpuPolicy::kSpread, "fuller", "GPU-0"},
      {NodePolicy::kSpread, GpuPolicy::kBinpack, "empty", "GPU-0"},
      {NodePolicy::kSpread, GpuPolicy::kSpread, "empty", "GPU-0"},
  };
  for (const Case& c : cases) {
    SchedulerConfig cfg;
    cfg.node_policy = c.node;
    cfg.gpu_policy = c.gpu;
    Engine engine(cfg);
    const std::string name = std::string(PolicyName(c.node)) + "/" + PolicyName(c.gpu);
    PodRequest mib = P({C(1, 2000, 0)});
    PodRequest pct = P({C(1, std::nullopt, 0, 20)});
    PodRequest numa = mib;
    numa.options.numa_bind = true;  // every GPU on NUMA 0: the same choice, general path
    std::optional<std::vector<int64_t>> scores;
    for (const PodRequest* pod : {&mib, &pct, &numa}) {
      auto d = engine.Schedule(s, *pod);
      ASSERT_TRUE(d.ok() && d->scheduled) << name;
      EXPECT_EQ(d->node, c.want_node) << name;
      ASSERT_EQ(d->placement.containers.size(), 1u);
      EXPECT_EQ(d->placement.containers[0][0].uuid, c.want_gpu) << name;
      auto f = engine.Filter(s, *pod);
      ASSERT_TRUE(f.ok());
      std::vector<int64_t> got;
      for (const auto& v : f->nodes) got.push_back(v.score);
      if (scores) {
        EXPECT_EQ(got, *scores) << name;
      } else {
        scores = got;
      }
    }
  }
}

TEST(Engine, ScoreScale) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0", 10000, "T", 0, 1)})).ok());
  SchedulerConfig cfg;
  cfg.weights = {0, 0, 1};
  // The pod fills the only GPU: binpack 10, spread 0.
  auto b = Engine(cfg).Schedule(s, P({C(1)}));
  ASSERT_TRUE(b.ok() && b->scheduled);
  EXPECT_EQ(b->score, 1'000'000);
  EXPECT_EQ(b->extender_score, 10);
  cfg.node_policy = NodePolicy::kSpread;
  auto sp = Engine(cfg).Schedule(s, P({C(1, 2500)}));
  ASSERT_TRUE(sp.ok() && sp->scheduled);
  EXPECT_EQ(sp->score, 750'000);
  EXPECT_EQ(sp->extender_score, 8);
}

TEST(Engine, SummaryLikeKubeScheduler) {
  ClusterState s;
  for (int i = 0; i < 3; ++i) {
    std::string n = "mem" + std::to_string(i);
    ASSERT_TRUE(s.AddNode(N(n, {G("GPU-0", 10000, "NVIDIA-A100")})).ok());
    ASSERT_TRUE(s.AddPlacement("p" + std::to_string(i), n, One({D("GPU-0", 9000)})).ok());
  }
  ASSERT_TRUE(s.AddNode(N("t4", {G("GPU-0", 10000, "NVIDIA-Tesla T4")})).ok());
  ASSERT_TRUE(s.AddNode(N("free", {G("GPU-0", 10000, "NVIDIA-A100")})).ok());
  PodRequest pod = With(P({C(1, 5000)}), UseTypes({"A100"}));
  std::vector<std::string> cand = {"mem0", "t4", "mem1", "ghost", "mem2"};
  auto f = Engine().Filter(s, pod, cand);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->summary.message,
            "0/5 nodes fit: 3 insufficient GPU memory, 1 node not registered (no GPU "
            "annotation), 1 no GPU of type A100");
  ASSERT_EQ(f->nodes.size(), 5u);
  for (size_t i = 0; i < cand.size(); ++i) EXPECT_EQ(f->nodes[i].node, cand[i]);
  EXPECT_EQ(f->nodes[3].reason, Reason::kNodeUnknown);
  auto d = Engine().Schedule(s, pod, cand);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->scheduled);
  EXPECT_EQ(d->summary.message, f->summary.message);
  auto all = Engine().Schedule(s, pod);
  ASSERT_TRUE(all.ok() && all->scheduled);
  EXPECT_EQ(all->node, "free");
  EXPECT_EQ(all->summary.message,
            "1/5 nodes fit: 3 insufficient GPU memory, 1 no GPU of type A100");
}

TEST(Engine, PodWithoutGpuFitsEverywhere) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {})).ok());
  std::vector<std::string> cand = {"n1", "ghost"};
  auto f = Engine().Filter(s, P({C(std::nullopt)}, {C(0)}), cand);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->summary.fitting, 2);
  auto d = Engine().Schedule(s, P({C(std::nullopt), C(std::nullopt)}));
  ASSERT_TRUE(d.ok() && d->scheduled);
  EXPECT_EQ(d->placement.containers.size(), 2u);
}

TEST(Engine, InvalidRequestsAndUnknownNodes) {
  ClusterState s;
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0")})).ok());
  Engine e;
  PodRequest bad = P({C(1, std::nullopt, 101)});
  EXPECT_EQ(e.Filter(s, bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.Schedule(s, bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.Place(s, bad, "n1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.Place(s, P({C(1, 1)}), "ghost").status().code(), StatusCode::kNotFound);
  auto ex = e.Place(s, P({C(1, 20000)}), "n1");
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(ex.status().message().find("insufficient GPU memory"), std::string::npos);
}

// Scheduling and recording pods until nothing fits never over-commits a GPU, and Filter's
// verdicts (fast path) agree with Place (general path) on every node.
TEST(Engine, RandomizedNeverOvercommits) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    ClusterState s;
    for (int n = 0; n < 8; ++n) {
      std::vector<GpuInfo> gpus;
      for (int g = 0; g < 4; ++g) {
        GpuInfo gpu =
            G("GPU-" + std::to_string(n) + std::to_string(g), n % 2 ? 12000 : 1000 * (8 + pick(8)),
              g % 2 ? "NVIDIA-A100" : "NVIDIA-Tesla T4", g / 2, 2 + pick(4));
        gpu.healthy = pick(20) != 0;
        gpus.push_back(gpu);
      }
      ASSERT_TRUE(s.AddNode(N("node" + std::to_string(n), gpus)).ok());
    }
    SchedulerConfig cfg;
    cfg.node_policy = seed % 2 ? NodePolicy::kBinpack : NodePolicy::kSpread;
    cfg.gpu_policy = seed % 3 ? GpuPolicy::kBinpack : GpuPolicy::kSpread;
    Engine e(cfg);
    int placed = 0;
    for (int i = 0; i < 200; ++i) {
      PodRequest pod;
      int cores = pick(4) == 0 ? 100 : pick(60);
      ContainerRequest c = pick(3) == 0 ? C(1 + pick(2), std::nullopt, cores, 10 + pick(60))
                                        : C(1 + pick(3), 500 + pick(6000), cores);
      pod.containers = {c};
      if (pick(4) == 0) pod.containers.push_back(C(1, 1000, pick(30)));
      if (pick(4) == 0) pod.init_containers.push_back(C(1, 2000));
      if (pick(5) == 0) pod.options.numa_bind = true;
      if (pick(6) == 0) pod.options.use_types = {"a100"};
      if (pick(6) == 0) pod.options.nouse_uuids = {"GPU-00", "GPU-11"};
      auto f = e.Filter(s, pod);
      ASSERT_TRUE(f.ok());
      for (const auto& v : f->nodes) {
        auto p = e.Place(s, pod, v.node);
        ASSERT_EQ(p.ok(), v.fits()) << v.node << " " << ReasonName(v.reason);
        if (!p.ok()) {
          EXPECT_NE(p.status().message().find(std::string("(") + ReasonName(v.reason) + ")"),
                    std::string::npos)
              << p.status().message() << " vs " << ReasonName(v.reason);
        }
      }
      auto d = e.Schedule(s, pod);
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(d->scheduled, f->summary.fitting > 0);
      if (!d->scheduled) continue;
      ASSERT_TRUE(s.AddPlacement("pod" + std::to_string(i), d->node, d->placement).ok());
      ++placed;
      if (pick(5) == 0) {
        ASSERT_TRUE(s.RemovePlacement("pod" + std::to_string(i)).ok());
      }
    }
    EXPECT_GT(placed, 10);
    for (const auto& name : s.NodeNames()) {
      const NodeInfo* n = s.FindNode(name);
      for (const auto& g : n->gpus) {
        GpuUsage u = *s.Usage(name, g.uuid);
        EXPECT_LE(u.used_mem_mib, g.memory_mib) << name << " " << g.uuid;
        EXPECT_LE(u.used_cores, g.cores) << name << " " << g.uuid;
        EXPECT_LE(u.used_slices, g.split_count) << name << " " << g.uuid;
        if (u.exclusive > 0) {
          EXPECT_EQ(u.used_slices, 1) << name << " " << g.uuid;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hami::sched

namespace hami::sched {
namespace {

TEST(Engine, ReasonNamesAndDescriptions) {
  for (int i = 0; i < kReasonCount; ++i) {
    auto r = static_cast<Reason>(i);
    EXPECT_STRNE(ReasonName(r), "Unknown") << i;
    EXPECT_STRNE(ReasonText(r), "unknown") << i;
    EXPECT_EQ(DescribeReason(r, PodOptions{}).empty(), false);
  }
  PodOptions o;
  o.use_types = {"A100", "H100"};
  o.nouse_types = {"T4"};
  o.mode = VgpuMode::kMig;
  EXPECT_EQ(DescribeReason(Reason::kTypeNotIncluded, o), "no GPU of type A100 or H100");
  EXPECT_EQ(DescribeReason(Reason::kTypeExcluded, o), "only GPUs of excluded type T4");
  EXPECT_EQ(DescribeReason(Reason::kModeMismatch, o), "no GPU in vgpu-mode mig");
  EXPECT_EQ(DescribeReason(Reason::kInsufficientMemory, o), "insufficient GPU memory");
}

}  // namespace
}  // namespace hami::sched

namespace hami::sched {
namespace {

// Engine calls only read the state: concurrent decisions on one state agree with serial ones
// (run under the TSan preset this also checks for races).
TEST(Engine, ConcurrentReadersAgree) {
  using namespace testing;  // NOLINT
  ClusterState s;
  for (int n = 0; n < 50; ++n) {
    std::vector<GpuInfo> gpus;
    for (int g = 0; g < 4; ++g) gpus.push_back(G("GPU-" + std::to_string(n) + std::to_string(g)));
    ASSERT_TRUE(s.AddNode(N("n" + std::to_string(n), gpus)).ok());
    ASSERT_TRUE(s.AddPlacement("p" + std::to_string(n), "n" + std::to_string(n),
                               One({D(gpus[n % 4].uuid, 1000 * (n % 9))}))
                    .ok());
  }
  Engine e;
  std::vector<PodRequest> pods;
  for (int i = 0; i < 40; ++i) pods.push_back(P({C(1 + i % 3, 500 * (i % 17), i % 50)}));
  std::vector<std::string> want;
  for (const auto& p : pods) want.push_back(e.Schedule(s, p)->node);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round)
        for (size_t i = 0; i < pods.size(); ++i)
          if (e.Schedule(s, pods[i])->node != want[i]) ++mismatches[t];
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace hami::sched

namespace hami::sched {
namespace {

// Node updates (health, GPUs gone) and placements arriving before nodes are seen by the next
// decision without any rebuild.
TEST(Engine, FollowsNodeAndPlacementChanges) {
  using namespace testing;  // NOLINT
  ClusterState s;
  Engine e;
  std::vector<std::string> cand = {"n1"};
  auto reason = [&](const PodRequest& p) { return e.Filter(s, p, cand)->nodes[0].reason; };
  ASSERT_TRUE(s.AddPlacement("early", "n1", One({D("GPU-0", 6000)})).ok());
  EXPECT_EQ(reason(P({C(1, 5000)})), Reason::kNodeUnknown);
  ASSERT_TRUE(s.AddNode(N("n1", {G("GPU-0")})).ok());
  EXPECT_EQ(reason(P({C(1, 5000)})), Reason::kInsufficientMemory);
  EXPECT_EQ(reason(P({C(1, 4000)})), Reason::kFits);
  NodeInfo sick = N("n1", {G("GPU-0")});
  sick.gpus[0].healthy = false;
  ASSERT_TRUE(s.UpdateNode(sick).ok());
  EXPECT_EQ(reason(P({C(1, 4000)})), Reason::kUnhealthy);
  ASSERT_TRUE(s.UpdateNode(N("n1", {G("GPU-0"), G("GPU-1")})).ok());
  auto d = e.Schedule(s, P({C(1, 5000)}));
  ASSERT_TRUE(d.ok() && d->scheduled);
  EXPECT_EQ(d->placement.containers[0][0].uuid, "GPU-1");
  ASSERT_TRUE(s.RemovePlacement("early").ok());
  EXPECT_EQ(reason(P({C(2, 10000)})), Reason::kFits);
  ASSERT_TRUE(s.RemoveNode("n1").ok());
  EXPECT_EQ(reason(P({C(1, 1)})), Reason::kNodeUnknown);
}

}  // namespace
}  // namespace hami::sched
