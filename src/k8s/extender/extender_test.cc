// The extender against the API-server test double: state from watches, filter/prioritize/bind
// with extender v1 JSON, the per-node bind turn, failure paths and restart.
#include "k8s/extender/extender.h"

#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "sched/node_codec.h"

namespace hami::k8s {
namespace {

using namespace std::chrono_literals;
using testing::FakeApiServer;
using testing::FakeContainer;
using testing::MakeGpuPod;
using testing::MakeGpus;
using testing::MakeNode;
using testing::MakePod;

class ExtenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    api_.set_bookmark_interval(200ms);
    ClientConfig cfg = api_.client_config();
    client_ = HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 20ms;
  }
  void TearDown() override {
    ext_.reset();
    client_.reset();
    api_.Stop();
  }
  void StartExtender() {
    ext_ = std::make_unique<Extender>(opts_, client_.get());
    ext_->Start();
    ASSERT_TRUE(ext_->WaitReady(5s));
  }
  Json AddPod(const Json& pod) {
    auto p = api_.Create("pods", pod);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : Json();
  }
  static Json Args(const Json& pod, std::vector<std::string> names) {
    return {{"pod", pod}, {"nodenames", names}};
  }
  static Json BindArgs(const Json& pod, const std::string& node) {
    return {{"podName", MetaString(pod, "name")},
            {"podNamespace", MetaString(pod, "namespace")},
            {"podUID", MetaString(pod, "uid")},
            {"node", node}};
  }
  template <typename F>
  bool Eventually(F f, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return f();
  }
  void ThreeNodes() {
    ASSERT_TRUE(api_.Create("nodes", MakeNode("n1", MakeGpus("n1", 2, 16000))).ok());
    ASSERT_TRUE(api_.Create("nodes", MakeNode("n2", MakeGpus("n2", 1, 16000))).ok());
    ASSERT_TRUE(api_.Create("nodes", MakeNode("n3", {})).ok());
  }
  void SetPhase(const Json& pod, const std::string& phase) {
    ASSERT_TRUE(api_.MergePatch("pods", MetaString(pod, "namespace"), MetaString(pod, "name"),
                                {{"metadata", {{"annotations", {{kBindPhaseAnnotation, phase}}}}}})
                    .ok());
  }

  FakeApiServer api_;
  std::unique_ptr<HttpKubeClient> client_;
  ExtenderOptions opts_;
  std::unique_ptr<Extender> ext_;
};

TEST_F(ExtenderTest, ReadyOnlyAfterInitialSync) {
  api_.FailNext("GET", "/api/v1/pods", 503, 2);
  ext_ = std::make_unique<Extender>(opts_, client_.get());
  EXPECT_FALSE(ext_->Ready());
  ext_->Start();
  EXPECT_TRUE(ext_->WaitReady(5s));
  EXPECT_TRUE(ext_->Ready());
}

TEST_F(ExtenderTest, FilterReturnsEveryFeasibleNodeWithReasons) {
  ThreeNodes();
  ASSERT_TRUE(api_.Create("nodes", MakeNode("n4", MakeGpus("n4", 4, 16000))).ok());
  StartExtender();
  EXPECT_EQ(ext_->node_count(), 3u);
  auto pod = MakeGpuPod("ns", "p", 2, 10000);
  auto r = ext_->Filter(Args(pod, {"n1", "n2", "n3", "n4", "ghost"}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["nodenames"], Json({"n1", "n4"}));
  EXPECT_EQ((*r)["error"], "");
  const Json& un = (*r)["failedAndUnresolvableNodes"];
  EXPECT_TRUE(un.contains("n2"));
  EXPECT_TRUE(un.contains("n3"));
  EXPECT_TRUE(un.contains("ghost"));
  EXPECT_EQ(un["n2"].get<std::string>().rfind("hami: ", 0), 0u);
  EXPECT_FALSE(r->contains("nodes"));
  // Memory that no GPU has left is a resolvable failure.
  auto big = MakeGpuPod("ns", "big", 1, 20000);
  auto rb = ext_->Filter(Args(big, {"n1"}));
  EXPECT_TRUE((*rb)["failedNodes"].contains("n1"));
  EXPECT_EQ((*rb)["nodenames"], Json::array());
}

TEST_F(ExtenderTest, FilterWithNodeObjectsAndCapitalizedFields) {
  ThreeNodes();
  StartExtender();
  Json items = Json::array({MakeNode("n1", MakeGpus("n1", 2, 16000)), MakeNode("n3", {})});
  Json args = {{"Pod", MakeGpuPod("ns", "p", 1, 1000)}, {"Nodes", {{"items", items}}}};
  auto r = ext_->Filter(args);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->contains("nodes"));
  ASSERT_EQ((*r)["nodes"]["items"].size(), 1u);
  EXPECT_EQ((*r)["nodes"]["items"][0]["metadata"]["name"], "n1");
  EXPECT_FALSE(r->contains("nodenames"));
  EXPECT_TRUE((*r)["failedAndUnresolvableNodes"].contains("n3"));
  // CPU-only pods fit everywhere.
  auto cpu = ext_->Filter(Args(MakePod("ns", "cpu", {{}}), {"n1", "n3"}));
  EXPECT_EQ((*cpu)["nodenames"], Json({"n1", "n3"}));
}

TEST_F(ExtenderTest, MalformedArgumentsAreErrorsAndBadAnnotationsNamed) {
  StartExtender();
  EXPECT_EQ(ext_->Filter(Json::array()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ext_->Filter({{"nodenames", {"a"}}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ext_->Filter({{"pod", Json::object()}, {"nodenames", {1, 2}}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ext_->Bind({{"podName", "x"}}).status().code(), StatusCode::kInvalidArgument);
  auto pod = MakeGpuPod("ns", "p", 1, 1000);
  pod["metadata"]["annotations"]["nvidia.com/vgpu-mode"] = "tightest";
  auto r = ext_->Filter(Args(pod, {"n1"}));
  ASSERT_TRUE(r.ok());
  EXPECT_NE((*r)["error"].get<std::string>().find("tightest"), std::string::npos);
  auto q = MakeGpuPod("ns", "q", 1, 1000);
  q["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpucores"] = "500m";
  auto rq = ext_->Filter(Args(q, {"n1"}));
  EXPECT_NE((*rq)["error"].get<std::string>().find("500m"), std::string::npos);
}

TEST_F(ExtenderTest, PrioritizeScoresZeroToTen) {
  ThreeNodes();
  StartExtender();
  // Fill n1 a bit so binpack prefers it.
  auto first = AddPod(MakeGpuPod("ns", "first", 2, 15000));
  ASSERT_EQ((*ext_->Bind(BindArgs(first, "n1")))["error"], "");
  SetPhase(first, "success");
  auto r = ext_->Prioritize(Args(MakeGpuPod("ns", "p", 1, 1000), {"n1", "n2", "n3"}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  std::map<std::string, int> score;
  for (const auto& hp : *r) {
    int s = hp["score"];
    EXPECT_GE(s, 0);
    EXPECT_LE(s, 10);
    score[hp["host"]] = s;
  }
  EXPECT_EQ(score["n3"], 0);
  EXPECT_GT(score["n1"], score["n2"]);
}

TEST_F(ExtenderTest, SingleNodeFilterModeReturnsOneNode) {
  ThreeNodes();
  opts_.single_node_filter = true;
  StartExtender();
  auto r = ext_->Filter(Args(MakeGpuPod("ns", "p", 1, 1000), {"n1", "n2"}));
  ASSERT_EQ((*r)["nodenames"].size(), 1u);
  EXPECT_EQ((*r)["failedNodes"].size(), 1u);
}

TEST_F(ExtenderTest, BindWritesHamiAnnotationsThenBinding) {
  ThreeNodes();
  StartExtender();
  FakeContainer init{"init", {}};
  FakeContainer a{
      "a", {{"nvidia.com/gpu", "2"}, {"nvidia.com/gpumem", "3000"}, {"nvidia.com/gpucores", "30"}}};
  FakeContainer b{"b", {{"nvidia.com/gpu", "1"}, {"nvidia.com/gpumem", "5000"}}};
  auto pod = AddPod(MakePod("ns", "p", {a, b}, {init}));
  auto r = ext_->Bind(BindArgs(pod, "n1"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)["error"], "") << r->dump();
  auto got = *api_.Get("pods", "ns", "p");
  EXPECT_EQ(got["spec"]["nodeName"], "n1");
  std::string alloc = Annotation(got, "hami.io/vgpu-devices-allocated");
  EXPECT_EQ(Annotation(got, "hami.io/vgpu-devices-to-allocate"), alloc);
  // One segment per container, init first: ";A1:A2:;B1:;"
  std::regex shape(
      R"(^;GPU-n1-\d,NVIDIA-NVIDIA A100-SXM4-80GB,3000,30:GPU-n1-\d,NVIDIA-NVIDIA A100-SXM4-80GB,3000,30:;GPU-n1-\d,NVIDIA-NVIDIA A100-SXM4-80GB,5000,0:;$)");
  EXPECT_TRUE(std::regex_match(alloc, shape)) << alloc;
  EXPECT_EQ(Annotation(got, "hami.io/vgpu-node"), "n1");
  EXPECT_EQ(Label(got, "hami.io/vgpu-node"), "n1");
  EXPECT_EQ(Annotation(got, "hami.io/bind-phase"), "allocating");
  EXPECT_TRUE(std::regex_match(Annotation(got, "hami.io/bind-time"), std::regex(R"(\d{10})")));
  EXPECT_TRUE(std::regex_match(Annotation(got, "hami.io/vgpu-time"), std::regex(R"(\d{10})")));
  EXPECT_EQ(ext_->TurnHolder("n1"), MetaString(pod, "uid"));
  auto usage = ext_->UsageSnapshot()["n1"];
  int64_t mem = 0;
  for (const auto& u : usage) mem += u.used_mem_mib;
  EXPECT_EQ(mem, 3000 * 2 + 5000);
  // The device plugin reports success: the node's turn is free again.
  SetPhase(got, "success");
  EXPECT_TRUE(Eventually([&] { return ext_->TurnHolder("n1").empty(); }));
  EXPECT_EQ(ext_->placement_count(), 1u);
}

TEST_F(ExtenderTest, CpuPodIsBoundWithoutAnnotationsOrTurn) {
  ThreeNodes();
  StartExtender();
  auto pod = AddPod(MakePod("ns", "cpu", {{}}));
  ASSERT_EQ((*ext_->Bind(BindArgs(pod, "n3")))["error"], "");
  auto got = *api_.Get("pods", "ns", "cpu");
  EXPECT_EQ(got["spec"]["nodeName"], "n3");
  EXPECT_EQ(Annotation(got, "hami.io/bind-phase"), "");
  EXPECT_EQ(ext_->TurnHolder("n3"), "");
}

TEST_F(ExtenderTest, FailedBindingReleasesEverything) {
  ThreeNodes();
  StartExtender();
  auto pod = AddPod(MakeGpuPod("ns", "p", 1, 1000));
  api_.FailNext("POST", "/binding", 500);
  auto r = ext_->Bind(BindArgs(pod, "n1"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE((*r)["error"], "");
  EXPECT_EQ(ext_->placement_count(), 0u);
  EXPECT_EQ(ext_->TurnHolder("n1"), "");
  auto got = *api_.Get("pods", "ns", "p");
  EXPECT_EQ(Annotation(got, "hami.io/bind-phase"), "failed");
  EXPECT_FALSE(got["spec"].contains("nodeName"));
  // The failed annotations are never counted, also not when the watch delivers them later.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ext_->placement_count(), 0u);
  EXPECT_GE(api_.List("events").size(), 1u);
  // A retry succeeds.
  ASSERT_EQ((*ext_->Bind(BindArgs(pod, "n1")))["error"], "");
  EXPECT_EQ(ext_->placement_count(), 1u);
  // Patch failure (e.g. the pod changed uid) also releases.
  auto other = AddPod(MakeGpuPod("ns", "o", 1, 1000));
  Json args = BindArgs(other, "n2");
  api_.FailNext("PATCH", "/pods/o", 409);
  EXPECT_NE((*ext_->Bind(args))["error"], "");
  EXPECT_EQ(ext_->TurnHolder("n2"), "");
  EXPECT_EQ(ext_->placement_count(), 1u);
}

TEST_F(ExtenderTest, BindThatDoesNotFitReservesNothing) {
  ThreeNodes();
  StartExtender();
  auto pod = AddPod(MakeGpuPod("ns", "p", 2, 1000));
  auto r = ext_->Bind(BindArgs(pod, "n2"));
  EXPECT_NE((*r)["error"].get<std::string>().find("n2"), std::string::npos);
  EXPECT_EQ(ext_->TurnHolder("n2"), "");
  EXPECT_EQ(ext_->placement_count(), 0u);
  auto wrong_uid = BindArgs(pod, "n1");
  wrong_uid["podUID"] = "nope";
  EXPECT_NE((*ext_->Bind(wrong_uid))["error"], "");
}

TEST_F(ExtenderTest, SecondBindOnANodeWaitsForTheFirstAllocation) {
  ThreeNodes();
  StartExtender();
  auto a = AddPod(MakeGpuPod("ns", "a", 1, 1000));
  auto b = AddPod(MakeGpuPod("ns", "b", 1, 1000));
  ASSERT_EQ((*ext_->Bind(BindArgs(a, "n1")))["error"], "");
  std::atomic<bool> done{false};
  Json result;
  std::thread t([&] {
    result = *ext_->Bind(BindArgs(b, "n1"));
    done = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(done.load());
  EXPECT_EQ(Annotation(*api_.Get("pods", "ns", "b"), "hami.io/bind-phase"), "");
  SetPhase(a, "success");
  t.join();
  EXPECT_EQ(result["error"], "");
  EXPECT_EQ(ext_->TurnHolder("n1"), MetaString(b, "uid"));
  // Deleting the holder frees the turn too.
  ASSERT_TRUE(api_.Delete("pods", "ns", "b").ok());
  EXPECT_TRUE(Eventually([&] { return ext_->TurnHolder("n1").empty(); }));
  EXPECT_TRUE(Eventually([&] { return ext_->placement_count() == 1u; }));
}

TEST_F(ExtenderTest, BusyNodeTimesOutCleanly) {
  ThreeNodes();
  opts_.bind_wait_timeout = 100ms;
  StartExtender();
  auto a = AddPod(MakeGpuPod("ns", "a", 1, 1000));
  auto b = AddPod(MakeGpuPod("ns", "b", 1, 1000));
  ASSERT_EQ((*ext_->Bind(BindArgs(a, "n1")))["error"], "");
  auto r = *ext_->Bind(BindArgs(b, "n1"));
  EXPECT_NE(r["error"].get<std::string>().find("busy"), std::string::npos);
  EXPECT_EQ(ext_->placement_count(), 1u);
  EXPECT_EQ(ext_->counters().bind_turn_timeouts, 1u);
}

TEST_F(ExtenderTest, AllocateTimeoutMarksPodFailedAndFreesTurn) {
  ThreeNodes();
  opts_.allocate_timeout = 150ms;
  StartExtender();
  auto a = AddPod(MakeGpuPod("ns", "a", 1, 1000));
  ASSERT_EQ((*ext_->Bind(BindArgs(a, "n1")))["error"], "");
  EXPECT_TRUE(Eventually([&] { return ext_->TurnHolder("n1").empty(); }));
  EXPECT_TRUE(Eventually(
      [&] { return Annotation(*api_.Get("pods", "ns", "a"), "hami.io/bind-phase") == "failed"; }));
  EXPECT_GE(ext_->counters().allocate_timeouts, 1u);
  // The pod is bound: its GPUs stay counted until it terminates.
  EXPECT_EQ(ext_->placement_count(), 1u);
  ASSERT_TRUE(api_.MergePatch("pods", "ns", "a", {{"status", {{"phase", "Failed"}}}}).ok());
  EXPECT_TRUE(Eventually([&] { return ext_->placement_count() == 0u; }));
}

TEST_F(ExtenderTest, FinishedAndDeletedPodsFreeTheirSlices) {
  ThreeNodes();
  StartExtender();
  auto a = AddPod(MakeGpuPod("ns", "a", 1, 1000));
  auto b = AddPod(MakeGpuPod("ns", "b", 1, 1000));
  ASSERT_EQ((*ext_->Bind(BindArgs(a, "n1")))["error"], "");
  SetPhase(a, "success");
  ASSERT_EQ((*ext_->Bind(BindArgs(b, "n1")))["error"], "");
  EXPECT_EQ(ext_->placement_count(), 2u);
  ASSERT_TRUE(api_.MergePatch("pods", "ns", "a", {{"status", {{"phase", "Succeeded"}}}}).ok());
  ASSERT_TRUE(api_.Delete("pods", "ns", "b").ok());
  EXPECT_TRUE(Eventually([&] { return ext_->placement_count() == 0u; }));
  for (const auto& [node, gpus] : ext_->UsageSnapshot()) {
    for (const auto& g : gpus) EXPECT_EQ(g.used_slices, 0) << node;
  }
}

TEST_F(ExtenderTest, RestartRebuildsTheSameState) {
  ThreeNodes();
  ASSERT_TRUE(api_.Create("nodes", MakeNode("n4", MakeGpus("n4", 4, 16000))).ok());
  StartExtender();
  std::vector<Json> pods;
  for (int i = 0; i < 6; ++i) {
    auto p = AddPod(MakeGpuPod("ns", "p" + std::to_string(i), 1 + i % 2, 1000 + 100 * i, 10));
    std::string node = i % 2 ? "n4" : "n1";
    ASSERT_EQ((*ext_->Bind(BindArgs(p, node)))["error"], "") << i;
    if (i != 4) SetPhase(p, "success");  // p4 (on n1) is still allocating
    pods.push_back(p);
  }
  auto before = ext_->UsageSnapshot();
  std::string holder = ext_->TurnHolder("n1");
  EXPECT_TRUE(Eventually([&] { return ext_->TurnHolder("n4").empty(); }));
  std::string metrics_before = ext_->Metrics();
  ext_.reset();
  StartExtender();
  EXPECT_EQ(ext_->UsageSnapshot(), before);
  EXPECT_EQ(ext_->placement_count(), 6u);
  EXPECT_EQ(ext_->TurnHolder("n1"), holder);
  EXPECT_EQ(ext_->TurnHolder("n4"), "");
  // The metrics agree too (minus the per-process counters at the end).
  std::string m = ext_->Metrics();
  auto cut = [](const std::string& s) { return s.substr(0, s.find("# HELP hami_build_info")); };
  EXPECT_EQ(cut(m), cut(metrics_before));
}

TEST_F(ExtenderTest, NodeChangesAndDeviceFilters) {
  opts_.device_filters["n1"].uuids = {"GPU-n1-0"};
  ThreeNodes();
  StartExtender();
  auto snap = ext_->UsageSnapshot();
  EXPECT_EQ(snap["n1"].size(), 1u);  // one of two GPUs hidden by nodeconfig
  ASSERT_TRUE(api_.Replace("nodes", MakeNode("n3", MakeGpus("n3", 8))).ok());
  EXPECT_TRUE(Eventually([&] { return ext_->node_count() == 3u; }));
  Json bad = MakeNode("n2", {});
  bad["metadata"]["annotations"]["hami.io/node-nvidia-register"] = "[{\"id\":1}]";
  ASSERT_TRUE(api_.Replace("nodes", bad).ok());
  EXPECT_TRUE(Eventually([&] { return ext_->node_count() == 2u; }));
  EXPECT_GE(ext_->counters().bad_annotations, 1u);
  ASSERT_TRUE(api_.Delete("nodes", "", "n3").ok());
  EXPECT_TRUE(Eventually([&] { return ext_->node_count() == 1u; }));
}

TEST_F(ExtenderTest, ReadsHamisOlderTextRegisterForm) {
  Json node = MakeNode("legacy", {});
  node["metadata"]["annotations"]["hami.io/node-nvidia-register"] =
      "GPU-l0,10,16000,100,NVIDIA-Tesla T4,0,true:GPU-l1,10,16000,100,NVIDIA-Tesla T4,0,true:";
  ASSERT_TRUE(api_.Create("nodes", node).ok());
  StartExtender();
  auto snap = ext_->UsageSnapshot();
  ASSERT_EQ(snap["legacy"].size(), 2u);
  auto r = ext_->Filter(Args(MakeGpuPod("ns", "p", 2, 8000), {"legacy"}));
  EXPECT_EQ((*r)["nodenames"], Json({"legacy"}));
}

TEST_F(ExtenderTest, MetricsUseSpecNamesAndLabels) {
  ThreeNodes();
  StartExtender();
  auto a = AddPod(MakeGpuPod("ns", "a", 1, 1024, 25));
  ASSERT_EQ((*ext_->Bind(BindArgs(a, "n2")))["error"], "");
  std::string m = ext_->Metrics();
  for (const char* name :
       {"hami_gpu_memory_limit_bytes", "hami_gpu_core_limit_ratio",
        "hami_gpu_memory_allocated_bytes", "hami_gpu_core_allocated_ratio", "hami_gpu_shared_count",
        "hami_node_gpu_overview", "hami_node_gpu_memory_allocated_ratio",
        "hami_vgpu_memory_allocated_bytes", "hami_vgpu_core_allocated_ratio", "hami_build_info"}) {
    EXPECT_NE(m.find(std::string("# TYPE ") + name + " gauge"), std::string::npos) << name;
  }
  EXPECT_NE(m.find("hami_gpu_memory_allocated_bytes{node=\"n2\",device_uuid=\"GPU-n2-0\","
                   "device_index=\"0\",device_type=\"NVIDIA-NVIDIA A100-SXM4-80GB\"} 1073741824"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("hami_vgpu_core_allocated_ratio{namespace=\"ns\",pod=\"a\",container_index="
                   "\"0\",device_uuid=\"GPU-n2-0\",node=\"n2\"} 25"),  // percent, as HAMi
            std::string::npos);
  EXPECT_NE(m.find("hami_gpu_shared_count{node=\"n2\",device_uuid=\"GPU-n2-0\",device_index=\"0\","
                   "device_type=\"NVIDIA-NVIDIA A100-SXM4-80GB\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace hami::k8s
