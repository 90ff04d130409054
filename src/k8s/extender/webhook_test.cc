// The mutating webhook: every rule, the patch it returns, malformed reviews.
#include "k8s/extender/webhook.h"

#include <gtest/gtest.h>

#include "k8s/client/base64.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

using testing::FakeContainer;
using testing::MakeAdmissionReview;
using testing::MakeGpuPod;
using testing::MakePod;

struct Outcome {
  bool allowed = false;
  std::string message;
  int code = 0;
  Json patch;    // decoded JSONPatch (null when none)
  Json patched;  // the pod after applying it
};

Outcome Review(const Json& pod, const WebhookOptions& o = {}, const NamespaceLabels& ns = nullptr) {
  auto r = ReviewAdmission(MakeAdmissionReview(pod), o, ns);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  Outcome out;
  if (!r.ok()) return out;
  EXPECT_EQ((*r)["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ((*r)["kind"], "AdmissionReview");
  const Json& resp = (*r)["response"];
  EXPECT_EQ(resp["uid"], "705ab4f5-6393-11e8-b7cc");
  out.allowed = resp["allowed"];
  if (resp.contains("status")) {
    out.message = resp["status"]["message"];
    out.code = resp["status"]["code"];
  }
  out.patched = pod;
  if (resp.contains("patch")) {
    EXPECT_EQ(resp["patchType"], "JSONPatch");
    auto text = Base64Decode(resp["patch"].get<std::string>());
    EXPECT_TRUE(text.ok());
    out.patch = Json::parse(*text);
    out.patched = pod.patch(out.patch);
  }
  return out;
}

TEST(WebhookTest, PodsWithoutManagedResourcesPassUntouched) {
  auto o = Review(MakePod("ns", "cpu", {{}}));
  EXPECT_TRUE(o.allowed);
  EXPECT_TRUE(o.patch.is_null());
}

TEST(WebhookTest, SetsSchedulerNameForGpuPods) {
  auto o = Review(MakeGpuPod("ns", "p", 1, 1000));
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.patched["spec"]["schedulerName"], "hami-scheduler");
  WebhookOptions custom;
  custom.scheduler_name = "my-gpu-scheduler";
  auto pod = MakeGpuPod("ns", "p", 1, 1000);
  pod["spec"].erase("schedulerName");
  EXPECT_EQ(Review(pod, custom).patched["spec"]["schedulerName"], "my-gpu-scheduler");
  // A pod that names another (non-default) scheduler keeps it.
  pod["spec"]["schedulerName"] = "volcano";
  EXPECT_EQ(Review(pod).patched["spec"]["schedulerName"], "volcano");
}

TEST(WebhookTest, FillsDefaults) {
  WebhookOptions o;
  o.sched.default_gpu_num = 2;
  o.sched.default_memory_mib = 4096;
  o.sched.default_cores = 20;
  FakeContainer mem_only{"m", {{"nvidia.com/gpumem", "3000"}}};
  FakeContainer count_only{"c", {{"nvidia.com/gpu", "1"}}};
  FakeContainer none{"x", {}};
  auto r = Review(MakePod("ns", "p", {mem_only, count_only, none}), o);
  ASSERT_TRUE(r.allowed) << r.message;
  const Json& cs = r.patched["spec"]["containers"];
  EXPECT_EQ(cs[0]["resources"]["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(cs[0]["resources"]["limits"]["nvidia.com/gpumem"], "3000");
  EXPECT_EQ(cs[0]["resources"]["limits"]["nvidia.com/gpucores"], "20");
  EXPECT_EQ(cs[1]["resources"]["limits"]["nvidia.com/gpumem"], "4096");
  // A count alone is a whole card: gpucores=100 (HAMi), not the default cores.
  EXPECT_EQ(cs[1]["resources"]["limits"]["nvidia.com/gpucores"], "100");
  EXPECT_FALSE(cs[2]["resources"]["limits"].contains("nvidia.com/gpu"));
  // A container without a resources object gets one.
  Json pod = MakePod("ns", "p", {mem_only});
  pod["spec"]["containers"][0].erase("resources");
  pod["spec"]["initContainers"] = Json::array(
      {{{"name", "i"}, {"resources", {{"requests", {{"nvidia.com/gpucores", "10"}}}}}}});
  auto r2 = Review(pod, o);
  ASSERT_TRUE(r2.allowed) << r2.message;
  EXPECT_EQ(r2.patched["spec"]["initContainers"][0]["resources"]["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(r2.patched["spec"]["initContainers"][0]["resources"]["requests"]["nvidia.com/gpu"],
            "2");
}

TEST(WebhookTest, HonoursConfiguredResourceNames) {
  WebhookOptions o;
  o.names.count = "example.com/vgpu";
  o.names.memory = "example.com/vgpu-mem";
  FakeContainer c{"c", {{"example.com/vgpu-mem", "100"}}};
  auto r = Review(MakePod("ns", "p", {c}), o);
  EXPECT_EQ(r.patched["spec"]["containers"][0]["resources"]["limits"]["example.com/vgpu"], "1");
  // nvidia.com names are not managed under this configuration.
  EXPECT_TRUE(Review(MakeGpuPod("ns", "q", 1, 1), o).patch.is_null());
}

TEST(WebhookTest, DeniesPresetNodeName) {
  auto pod = MakeGpuPod("ns", "p", 1, 1000);
  pod["spec"]["nodeName"] = "gpu-7";
  auto r = Review(pod);
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("gpu-7"), std::string::npos);
  EXPECT_EQ(r.code, 403);
}

TEST(WebhookTest, DeniesPrivilegedContainersWithGpuResources) {
  FakeContainer c{"trainer", {{"nvidia.com/gpu", "1"}}, true};
  auto r = Review(MakePod("ns", "p", {c}));
  EXPECT_FALSE(r.allowed);
  EXPECT_NE(r.message.find("trainer"), std::string::npos);
  // Privileged sidecars without GPU resources are fine.
  FakeContainer side{"side", {}, true};
  FakeContainer gpu{"gpu", {{"nvidia.com/gpu", "1"}}};
  EXPECT_TRUE(Review(MakePod("ns", "p", {gpu, side})).allowed);
}

TEST(WebhookTest, ValidatesEveryUserAnnotation) {
  struct Case {
    const char* key;
    const char* value;
  };
  for (const Case& c :
       {Case{"nvidia.com/vgpu-mode", "vgpu"}, Case{"hami.io/device-scoring-weights", "slot=x"}}) {
    auto pod = MakeGpuPod("ns", "p", 1, 1000);
    pod["metadata"]["annotations"][c.key] = c.value;
    auto r = Review(pod);
    EXPECT_FALSE(r.allowed) << c.key;
    EXPECT_NE(r.message.find(c.value), std::string::npos) << c.key << ": " << r.message;
    EXPECT_EQ(r.code, 400);
  }
  for (const Case& c :
       {Case{"hami.io/node-scheduler-policy", "spread"},
        Case{"hami.io/gpu-scheduler-policy", "binpack"}, Case{"nvidia.com/vgpu-mode", "mig"},
        Case{"nvidia.com/numa-bind", "true"}, Case{"nvidia.com/use-gputype", "A100,H100"},
        Case{"nvidia.com/nouse-gpuuuid", "GPU-1"},
        Case{"hami.io/device-scoring-weights", "slot=1,core=1,memory=3"}}) {
    auto pod = MakeGpuPod("ns", "p", 1, 1000);
    pod["metadata"]["annotations"][c.key] = c.value;
    EXPECT_TRUE(Review(pod).allowed) << c.key;
  }
  // Policies HAMi does not know: HAMi ignores them with a warning, so the pod is admitted and
  // the warning reaches the user.
  for (const Case& c : {Case{"hami.io/node-scheduler-policy", "tightest"},
                        Case{"hami.io/gpu-scheduler-policy", "Binpack2"}}) {
    auto pod = MakeGpuPod("ns", "p", 1, 1000);
    pod["metadata"]["annotations"][c.key] = c.value;
    EXPECT_TRUE(Review(pod).allowed) << c.key;
  }
}

TEST(WebhookTest, ValidatesResourceValues) {
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"nvidia.com/gpucores", "150"},
                                                        {"nvidia.com/gpumem-percentage", "101"},
                                                        {"nvidia.com/priority", "-1"},
                                                        {"nvidia.com/gpu", "lots"},
                                                        {"nvidia.com/gpumem", "1.5"}}) {
    FakeContainer c{"c", {{"nvidia.com/gpu", "1"}}};
    c.limits[name] = value;
    auto r = Review(MakePod("ns", "p", {c}));
    EXPECT_FALSE(r.allowed) << name << "=" << value;
    EXPECT_FALSE(r.message.empty());
  }
}

TEST(WebhookTest, IgnoreLabelOnPodOrNamespace) {
  auto pod = MakeGpuPod("ns", "p", 1, 1000);
  pod["metadata"]["labels"]["hami.io/webhook"] = "ignore";
  pod["spec"]["nodeName"] = "n";  // would be denied otherwise
  auto r = Review(pod);
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.patch.is_null());
  auto pod2 = MakeGpuPod("skip-me", "p", 1, 1000);
  int lookups = 0;
  NamespaceLabels ns =
      [&](const std::string& n) -> std::optional<std::map<std::string, std::string>> {
    ++lookups;
    if (n == "skip-me") return std::map<std::string, std::string>{{"hami.io/webhook", "ignore"}};
    return std::nullopt;
  };
  auto r2 = Review(pod2, {}, ns);
  EXPECT_TRUE(r2.patch.is_null());
  EXPECT_EQ(lookups, 1);
  EXPECT_FALSE(Review(MakeGpuPod("other", "p", 1, 1000), {}, ns).patch.is_null());
}

TEST(WebhookTest, OtherKindsAndOperationsPass) {
  auto review = MakeAdmissionReview(MakeGpuPod("ns", "p", 1, 1));
  review["request"]["operation"] = "UPDATE";
  auto r = ReviewAdmission(review, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["response"]["allowed"]);
  EXPECT_FALSE((*r)["response"].contains("patch"));
}

TEST(WebhookTest, MalformedReviewsAreErrors) {
  EXPECT_FALSE(ReviewAdmission(Json::array(), {}).ok());
  EXPECT_FALSE(ReviewAdmission({{"kind", "AdmissionReview"}}, {}).ok());
  EXPECT_FALSE(ReviewAdmission({{"kind", "Pod"}, {"request", Json::object()}}, {}).ok());
  auto review = MakeAdmissionReview(MakeGpuPod("ns", "p", 1, 1));
  review["request"].erase("uid");
  EXPECT_FALSE(ReviewAdmission(review, {}).ok());
  review = MakeAdmissionReview(MakeGpuPod("ns", "p", 1, 1));
  review["request"]["object"] = "pod";
  EXPECT_FALSE(ReviewAdmission(review, {}).ok());
  review = MakeAdmissionReview(MakeGpuPod("ns", "p", 1, 1));
  review["request"]["object"]["spec"]["containers"] = 5;
  // Not a list of containers: refused, never a crash.
  auto r = ReviewAdmission(review, {});
  EXPECT_FALSE(r.ok());
}

TEST(WebhookTest, PointerEscaping) {
  EXPECT_EQ(JsonPointerEscape("nvidia.com/gpu"), "nvidia.com~1gpu");
  EXPECT_EQ(JsonPointerEscape("a~b"), "a~0b");
}

// HAMi's own samples (pkg/device/nvidia/device_test.go, pkg/scheduler/webhook.go): pods HAMi
// accepts are accepted with HAMi's meaning.
Json EnvOf(const Json& container, const std::string& name) {
  if (!container.contains("env")) return nullptr;
  for (const auto& e : container["env"])
    if (e["name"] == name) return e["value"];
  return nullptr;
}

TEST(WebhookHami, PriorityAndCorePolicyBecomeEnvironment) {
  WebhookOptions o;
  o.gpu_core_policy = "force";
  auto r =
      Review(MakePod("ns", "p",
                     {FakeContainer{"c", {{"nvidia.com/gpu", "1"}, {"nvidia.com/priority", "5"}}}}),
             o);
  ASSERT_TRUE(r.allowed) << r.message;
  const Json& c = r.patched["spec"]["containers"][0];
  EXPECT_EQ(EnvOf(c, "CUDA_TASK_PRIORITY"), "5");
  EXPECT_EQ(EnvOf(c, "GPU_CORE_UTILIZATION_POLICY"), "force");
  o.gpu_core_policy = "default";  // HAMi injects nothing for the default policy
  auto d = Review(MakePod("ns", "p", {FakeContainer{"c", {{"nvidia.com/gpu", "1"}}}}), o);
  EXPECT_TRUE(EnvOf(d.patched["spec"]["containers"][0], "GPU_CORE_UTILIZATION_POLICY").is_null());
}

TEST(WebhookHami, WholeCardRequestGetsAllCores) {
  struct Case {
    std::map<std::string, std::string> limits;
    Json want_cores;  // null: no gpucores written by this rule
  } cases[] = {
      {{{"nvidia.com/gpu", "1"}}, "100"},
      {{{"nvidia.com/gpu", "2"}, {"nvidia.com/gpumem-percentage", "100"}}, "100"},
      {{{"nvidia.com/gpu", "1"}, {"nvidia.com/gpumem-percentage", "50"}}, nullptr},
      {{{"nvidia.com/gpu", "1"}, {"nvidia.com/gpumem", "1000"}}, nullptr},
      {{{"nvidia.com/gpu", "1"}, {"nvidia.com/gpucores", "30"}}, "30"},
  };
  for (const Case& c : cases) {
    auto r = Review(MakePod("ns", "p", {FakeContainer{"c", c.limits}}));
    ASSERT_TRUE(r.allowed) << r.message;
    const Json& limits = r.patched["spec"]["containers"][0]["resources"]["limits"];
    Json got = limits.contains("nvidia.com/gpucores") ? limits["nvidia.com/gpucores"] : Json();
    if (c.want_cores.is_null()) {
      EXPECT_TRUE(got.is_null()) << limits.dump();
    } else {
      EXPECT_EQ(got, c.want_cores) << limits.dump();
    }
  }
}

// HAMi's rule: pods of other schedulers (volcano, default-scheduler unless overwriting it) pass
// untouched; ours, an empty name and default-scheduler (with the overwrite) are mutated.
TEST(WebhookHami, OtherSchedulersArePassedThrough) {
  struct Case {
    const char* scheduler;
    bool force;
    bool mutated;
  } cases[] = {{"volcano", true, false},
               {"default-scheduler", false, false},
               {"default-scheduler", true, true},
               {"hami-scheduler", false, true},
               {"", false, true}};
  for (const Case& c : cases) {
    // A whole-card request: the webhook always has something to write for its own pods.
    auto pod = MakePod("ns", "p", {FakeContainer{"c", {{"nvidia.com/gpu", "1"}}}});
    pod["spec"]["schedulerName"] = c.scheduler;
    if (!*c.scheduler) pod["spec"].erase("schedulerName");
    WebhookOptions o;
    o.force_overwrite_default_scheduler = c.force;
    auto r = Review(pod, o);
    EXPECT_TRUE(r.allowed);
    EXPECT_EQ(!r.patch.is_null(), c.mutated) << c.scheduler << " " << c.force;
    if (c.mutated) {
      EXPECT_EQ(r.patched["spec"]["schedulerName"], "hami-scheduler");
    }
  }
}

// A numa-bind value Go's ParseBool refuses is false in HAMi: accepted, with a warning kubectl
// shows.
TEST(WebhookHami, WeakerMeaningsComeWithAWarning) {
  auto pod = MakeGpuPod("ns", "p", 1, 1000);
  pod["metadata"]["annotations"]["nvidia.com/numa-bind"] = "yes";
  auto r = ReviewAdmission(MakeAdmissionReview(pod), WebhookOptions{}, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["response"]["allowed"].get<bool>());
  ASSERT_TRUE((*r)["response"].contains("warnings"));
  EXPECT_NE((*r)["response"]["warnings"][0].get<std::string>().find("numa-bind"),
            std::string::npos);
  // An unknown GPU policy word (HAMi's Chinese docs spell topology-aware "topology"): HAMi
  // ignores the annotation with a warning; the pod is admitted and the user sees why.
  auto pol = MakeGpuPod("ns", "p", 1, 1000);
  pol["metadata"]["annotations"]["hami.io/gpu-scheduler-policy"] = "topology";
  auto rp = ReviewAdmission(MakeAdmissionReview(pol), WebhookOptions{}, nullptr);
  ASSERT_TRUE(rp.ok());
  EXPECT_TRUE((*rp)["response"]["allowed"].get<bool>());
  ASSERT_TRUE((*rp)["response"].contains("warnings"));
  EXPECT_NE((*rp)["response"]["warnings"][0].get<std::string>().find("'topology'"),
            std::string::npos)
      << (*rp)["response"].dump();
}

// gpumem together with gpumem-percentage: accepted, gpumem wins (HAMi).
TEST(WebhookHami, MemoryAndPercentageTogetherAreAccepted) {
  auto r = Review(MakePod("ns", "p",
                          {FakeContainer{"c",
                                         {{"nvidia.com/gpu", "1"},
                                          {"nvidia.com/gpumem", "3000"},
                                          {"nvidia.com/gpumem-percentage", "50"}}}}));
  EXPECT_TRUE(r.allowed) << r.message;
}

}  // namespace
}  // namespace hami::k8s
