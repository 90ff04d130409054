#include "sched/model.h"

#include <gtest/gtest.h>

namespace hami::sched {
namespace {

using std::nullopt;
ContainerRequest C(std::optional<int32_t> count, std::optional<int64_t> mem = nullopt,
                   std::optional<int32_t> pct = nullopt, std::optional<int32_t> cores = nullopt,
                   std::optional<int32_t> prio = nullopt) {
  ContainerRequest r;
  r.gpu_count = count;
  r.memory_mib = mem;
  r.memory_percent = pct;
  r.cores = cores;
  r.priority = prio;
  return r;
}

TEST(Model, VgpuModeParse) {
  EXPECT_EQ(*ParseVgpuMode("hami-core"), VgpuMode::kHamiCore);
  EXPECT_EQ(*ParseVgpuMode("mig"), VgpuMode::kMig);
  EXPECT_EQ(*ParseVgpuMode("mps"), VgpuMode::kMps);
  for (const char* bad : {"", "MIG", "hami", "mps "}) {
    auto r = ParseVgpuMode(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_STREQ(VgpuModeName(VgpuMode::kHamiCore), "hami-core");
}

TEST(Model, PoliciesRejectUnknownValues) {
  EXPECT_EQ(*ParseNodePolicy("binpack"), NodePolicy::kBinpack);
  EXPECT_EQ(*ParseNodePolicy("spread"), NodePolicy::kSpread);
  EXPECT_EQ(*ParseGpuPolicy("binpack"), GpuPolicy::kBinpack);
  EXPECT_EQ(*ParseGpuPolicy("spread"), GpuPolicy::kSpread);
  for (const char* bad : {"", "Binpack", "topology", "spread,binpack"}) {
    auto n = ParseNodePolicy(bad);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(n.status().message().find(std::string("'") + bad + "'"), std::string::npos);
    EXPECT_FALSE(ParseGpuPolicy(bad).ok());
  }
}

TEST(Model, ScoringWeights) {
  struct Case {
    const char* text;
    bool ok;
    ScoringWeights want;
    const char* err;
  };
  const Case cases[] = {
      {"slot=1,core=1,memory=3", true, {1, 1, 3}, ""},
      {" memory = 2 , slot=0 ", true, {0, 0, 2}, ""},
      {"core=5", true, {0, 5, 0}, ""},
      {"", false, {}, "empty item"},
      {"slot=1,,core=1", false, {}, "empty item"},
      {"slot=1,", false, {}, "empty item"},
      {"gpu=1", false, {}, "unknown key 'gpu'"},
      {"slot", false, {}, "not key=value"},
      {"slot=1,slot=2", false, {}, "given twice"},
      {"slot=-1", false, {}, "value '-1'"},
      {"slot=1.5", false, {}, "value '1.5'"},
      {"slot=2147483648", false, {}, "value '2147483648'"},
      {"slot=1001", true, {1001, 0, 0}, ""},  // HAMi takes weights above 1000
      {"slot=", false, {}, "value ''"},
      {"slot=0,core=0", false, {}, "all weights are 0"},
  };
  for (const Case& c : cases) {
    auto r = ParseScoringWeights(c.text);
    EXPECT_EQ(r.ok(), c.ok) << c.text;
    if (c.ok && r.ok()) {
      EXPECT_EQ(*r, c.want) << c.text;
      EXPECT_EQ(*ParseScoringWeights(FormatScoringWeights(*r)), *r);
    }
    if (!c.ok && !r.ok()) {
      EXPECT_NE(r.status().message().find(c.err), std::string::npos) << r.status().message();
    }
  }
}

TEST(Model, SplitCommaList) {
  EXPECT_EQ(SplitCommaList(" A100, ,H100 ,"), (std::vector<std::string>{"A100", "H100"}));
  EXPECT_TRUE(SplitCommaList("").empty());
}

TEST(Model, ParsePodOptions) {
  auto o = ParsePodOptions({{"nvidia.com/use-gputype", "A100, h100"},
                            {"nvidia.com/nouse-gputype", "MIG"},
                            {"nvidia.com/use-gpuuuid", "GPU-1,GPU-2"},
                            {"nvidia.com/nouse-gpuuuid", "GPU-3"},
                            {"nvidia.com/numa-bind", "True"},
                            {"nvidia.com/vgpu-mode", "mps"},
                            {"hami.io/node-scheduler-policy", "spread"},
                            {"hami.io/gpu-scheduler-policy", "binpack"},
                            {"hami.io/device-scoring-weights", "slot=1,core=1,memory=3"},
                            {"unrelated", "x"}});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->use_types, (std::vector<std::string>{"A100", "h100"}));
  EXPECT_EQ(o->nouse_types, (std::vector<std::string>{"MIG"}));
  EXPECT_EQ(o->use_uuids, (std::vector<std::string>{"GPU-1", "GPU-2"}));
  EXPECT_EQ(o->nouse_uuids, (std::vector<std::string>{"GPU-3"}));
  EXPECT_TRUE(o->numa_bind);
  EXPECT_EQ(o->mode, VgpuMode::kMps);
  EXPECT_EQ(o->node_policy, NodePolicy::kSpread);
  EXPECT_EQ(o->gpu_policy, GpuPolicy::kBinpack);
  EXPECT_EQ(o->weights, (ScoringWeights{1, 1, 3}));

  auto empty = ParsePodOptions({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, PodOptions{});

  const std::pair<const char*, const char*> bad[] = {
      {"nvidia.com/vgpu-mode", "vgpu"},
      {"hami.io/device-scoring-weights", "slot=x"},
  };
  for (auto [k, v] : bad) {
    auto r = ParsePodOptions({{k, v}});
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_NE(r.status().message().find(k), std::string::npos) << r.status().message();
  }
}

// What HAMi accepts, with HAMi's meaning (its docs and device_test.go samples).
TEST(Model, HamiPodOptions) {
  struct Case {
    const char* key;
    const char* value;
    std::optional<GpuPolicy> policy;
    bool numa, exclusive, warns;
  } cases[] = {
      {"hami.io/gpu-scheduler-policy", "binpack", GpuPolicy::kBinpack, false, false, false},
      {"hami.io/gpu-scheduler-policy", "binpack,numa", GpuPolicy::kBinpack, true, false, false},
      {"hami.io/gpu-scheduler-policy", "spread, numa", GpuPolicy::kSpread, true, false, false},
      {"hami.io/gpu-scheduler-policy", "numa", std::nullopt, true, false, false},
      {"hami.io/gpu-scheduler-policy", "mutex", std::nullopt, false, true, false},
      {"hami.io/gpu-scheduler-policy", "topology-aware", std::nullopt, false, false, true},
      {"nvidia.com/numa-bind", "t", std::nullopt, true, false, false},
      {"nvidia.com/numa-bind", "T", std::nullopt, true, false, false},
      {"nvidia.com/numa-bind", "TRUE", std::nullopt, true, false, false},
      {"nvidia.com/numa-bind", "True", std::nullopt, true, false, false},
      {"nvidia.com/numa-bind", "1", std::nullopt, true, false, false},
      {"nvidia.com/numa-bind", "F", std::nullopt, false, false, false},
      {"nvidia.com/numa-bind", "yes", std::nullopt, false, false, true},
      // Unknown or empty policies: HAMi ignores the whole annotation (the configured policy
      // stands) and logs a warning; so do we, and the pod is accepted.
      {"hami.io/gpu-scheduler-policy", "binpak", std::nullopt, false, false, true},
      {"hami.io/gpu-scheduler-policy", "mutex,gang", std::nullopt, false, false, true},
      {"hami.io/gpu-scheduler-policy", "topology", std::nullopt, false, false, true},
      {"hami.io/gpu-scheduler-policy", " ", std::nullopt, false, false, true},
      {"hami.io/node-scheduler-policy", "most-allocated", std::nullopt, false, false, true},
  };
  for (const Case& c : cases) {
    auto o = ParsePodOptions({{c.key, c.value}});
    ASSERT_TRUE(o.ok()) << c.key << "=" << c.value << ": " << o.status().message();
    EXPECT_EQ(o->gpu_policy, c.policy) << c.value;
    EXPECT_EQ(o->numa_bind, c.numa) << c.value;
    EXPECT_EQ(o->exclusive, c.exclusive) << c.value;
    EXPECT_EQ(!o->warnings.empty(), c.warns) << c.value;
    EXPECT_EQ(o->node_policy, std::nullopt) << c.value;  // none of these names a node policy
  }
  // Scoring weights above 1000 (HAMi takes any non-negative integer).
  auto w =
      ParsePodOptions({{"hami.io/device-scoring-weights", "slot=1,core=5000,memory=2147483647"}});
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->weights->memory, 2147483647);
  PodRequest pod;
  pod.containers = {C(1, 1000)};
  pod.options = *w;
  EXPECT_TRUE(Resolve(pod, SchedulerConfig{}).ok());
  // mutex: every GPU container holds its cards exclusively.
  pod.options = *ParsePodOptions({{"hami.io/gpu-scheduler-policy", "mutex"}});
  auto r = Resolve(pod, SchedulerConfig{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->containers[0].exclusive());
}

// HAMi v2.8+'s type (register annotation, hostd views): the plain NVML name when it has the
// vendor prefix already.
TEST(Model, RegisterGpuType) {
  EXPECT_EQ(RegisterGpuType("NVIDIA H100 80GB HBM3"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(RegisterGpuType("Tesla T4"), "NVIDIA-Tesla T4");
  EXPECT_EQ(RegisterGpuType("NVIDIA-Tesla T4"), "NVIDIA-Tesla T4");
}

TEST(Model, NormalizeGpuType) {
  EXPECT_EQ(NormalizeGpuType("NVIDIA H100 80GB HBM3"), "NVIDIA-NVIDIA H100 80GB HBM3");
  EXPECT_EQ(NormalizeGpuType("NVIDIA-Tesla T4"), "NVIDIA-Tesla T4");
}

TEST(Model, ResolveDefaults) {
  SchedulerConfig cfg;
  cfg.default_cores = 5;
  struct Case {
    const char* name;
    ContainerRequest in;
    int64_t default_mem;
    ResolvedContainer want;
  };
  const Case cases[] = {
      {"nothing asked", {}, 0, {}},
      {"count only: whole card", C(2), 0, {2, 0, 100, 5, -1}},
      {"count only: default memory", C(1), 2048, {1, 2048, 0, 5, -1}},
      {"memory only: default count", C(nullopt, 3000), 0, {1, 3000, 0, 5, -1}},
      {"cores only: default count", C(nullopt, nullopt, nullopt, 30), 0, {1, 0, 100, 30, -1}},
      {"percentage", C(1, nullopt, 25), 0, {1, 0, 25, 5, -1}},
      {"zero memory uses default", C(1, 0), 1024, {1, 1024, 0, 5, -1}},
      {"explicit zero count", C(0, 10), 0, {}},
      {"priority", C(1, 1, nullopt, nullopt, 1), 0, {1, 1, 0, 5, 1}},
      {"exclusive", C(1, nullopt, nullopt, 100), 0, {1, 0, 100, 100, -1}},
  };
  for (const Case& c : cases) {
    cfg.default_memory_mib = c.default_mem;
    PodRequest pod;
    pod.containers = {c.in};
    auto r = Resolve(pod, cfg);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().message();
    EXPECT_EQ(r->containers[0], c.want) << c.name;
  }
  EXPECT_TRUE((ResolvedContainer{1, 0, 100, 100, -1}.exclusive()));
}

TEST(Model, ResolveErrorsNameTheContainer) {
  struct Case {
    ContainerRequest in;
    const char* err;
  };
  const Case cases[] = {
      {C(-1), "negative GPU count"},
      {C(65), "> 64"},
      {C(nullopt, -5), "negative GPU memory"},
      {C(nullopt, nullopt, 101), "percentage 101"},
      {C(nullopt, nullopt, -1), "percentage -1"},
      {C(nullopt, nullopt, nullopt, 101), "cores 101"},
      {C(nullopt, nullopt, nullopt, nullopt, -1), "priority -1"},
  };
  for (const Case& c : cases) {
    PodRequest pod;
    pod.init_containers = {{}};
    pod.containers = {{}, c.in};
    auto r = Resolve(pod, SchedulerConfig{});
    ASSERT_FALSE(r.ok()) << c.err;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("container 1"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.err), std::string::npos) << r.status().message();
    pod.containers = {{}};
    pod.init_containers = {c.in};
    r = Resolve(pod, SchedulerConfig{});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("init container 0"), std::string::npos);
  }
}

TEST(Model, ResolvePolicies) {
  SchedulerConfig cfg;
  cfg.node_policy = NodePolicy::kSpread;
  cfg.gpu_policy = GpuPolicy::kBinpack;
  cfg.weights = {2, 3, 4};
  PodRequest pod;
  auto r = Resolve(pod, cfg);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->node_policy, NodePolicy::kSpread);
  EXPECT_EQ(r->gpu_policy, GpuPolicy::kBinpack);
  EXPECT_EQ(r->weights, (ScoringWeights{2, 3, 4}));
  EXPECT_FALSE(r->UsesGpu());
  pod.options.node_policy = NodePolicy::kBinpack;
  pod.options.gpu_policy = GpuPolicy::kSpread;
  pod.options.weights = ScoringWeights{0, 0, 1};
  pod.init_containers = {C(1)};
  r = Resolve(pod, cfg);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->node_policy, NodePolicy::kBinpack);
  EXPECT_EQ(r->gpu_policy, GpuPolicy::kSpread);
  EXPECT_EQ(r->weights, (ScoringWeights{0, 0, 1}));
  EXPECT_TRUE(r->UsesGpu());
  pod.options.weights = ScoringWeights{0, 0, 0};
  EXPECT_FALSE(Resolve(pod, cfg).ok());
}

}  // namespace
}  // namespace hami::sched
