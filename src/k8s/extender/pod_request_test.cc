#include "k8s/extender/pod_request.h"

#include <gtest/gtest.h>

#include "k8s/extender/config.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

using testing::FakeContainer;
using testing::MakePod;

TEST(QuantityTest, ParsesKubernetesQuantities) {
  EXPECT_EQ(*ParseQuantity("3000"), 3000);
  EXPECT_EQ(*ParseQuantity("+5"), 5);
  EXPECT_EQ(*ParseQuantity("2k"), 2000);
  EXPECT_EQ(*ParseQuantity("1Ki"), 1024);
  EXPECT_EQ(*ParseQuantity("1Gi"), 1LL << 30);
  EXPECT_EQ(*ParseQuantity("1e3"), 1000);
  EXPECT_EQ(*ParseQuantity(Json(7)), 7);
  for (const char* bad :
       {"", "-1", "1.5", "500m", "1Q", "abc", "99999999999999999999", "9e99", "1e", "2Ei"}) {
    EXPECT_FALSE(ParseQuantity(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseQuantity(Json(-3)).ok());
  EXPECT_FALSE(ParseQuantity(Json::array()).ok());
}

TEST(PodRequestTest, ReadsLimitsThenRequestsInitFirst) {
  FakeContainer a{"a", {{"nvidia.com/gpu", "2"}, {"nvidia.com/gpumem", "3000"}}};
  FakeContainer init{"i", {{"nvidia.com/gpucores", "30"}}};
  Json pod = MakePod("ns", "p", {a}, {init});
  pod["spec"]["containers"][0]["resources"]["requests"] = {{"nvidia.com/gpucores", "40"},
                                                           {"nvidia.com/gpumem", "1"}};
  auto r = PodRequestFromJson(pod, {}, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->init_containers.size(), 1u);
  ASSERT_EQ(r->containers.size(), 1u);
  EXPECT_EQ(r->init_containers[0].cores, 30);
  EXPECT_EQ(r->containers[0].gpu_count, 2);
  EXPECT_EQ(r->containers[0].memory_mib, 6000);  // limits win; memoryFactor 2
  EXPECT_EQ(r->containers[0].cores, 40);         // falls back to requests
  EXPECT_EQ(r->name, "ns/p");
  EXPECT_TRUE(UsesManagedResources(pod, {}));
  EXPECT_FALSE(UsesManagedResources(MakePod("ns", "cpu", {{}}), {}));
}

TEST(PodRequestTest, ErrorsNameContainerAndValue) {
  FakeContainer a{"worker", {{"nvidia.com/gpu", "two"}}};
  auto r = PodRequestFromJson(MakePod("ns", "p", {a}), {}, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("worker"), std::string::npos);
  EXPECT_NE(r.status().message().find("two"), std::string::npos);
  Json pod = MakePod("ns", "p", {{}});
  pod["metadata"]["annotations"] = {{"nvidia.com/vgpu-mode", "random"}};
  EXPECT_NE(PodRequestFromJson(pod, {}, 1).status().message().find("random"), std::string::npos);
}

TEST(PodRequestTest, PlacementFromAnnotations) {
  Json pod = MakePod("ns", "p", {{}}, {{}});
  EXPECT_FALSE(PlacementFromPod(pod)->has_value());
  pod["metadata"]["annotations"] = {{"hami.io/vgpu-devices-allocated", ";GPU-a,NVIDIA,3000,30:;"},
                                    {"hami.io/vgpu-devices-to-allocate", ";;"}};
  auto p = PlacementFromPod(pod);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->num_init, 1);
  ASSERT_EQ((*p)->containers.size(), 2u);
  EXPECT_EQ((*p)->containers[1][0].uuid, "GPU-a");
  pod["metadata"]["annotations"]["hami.io/vgpu-devices-allocated"] = "GPU-a,NVIDIA";
  EXPECT_FALSE(PlacementFromPod(pod).ok());
}

TEST(ConfigTest, DefaultsFlagsAndFileTakeEffect) {
  SchedulerFlags f;
  auto c = BuildConfig(f, "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->extender.names.count, "nvidia.com/gpu");
  EXPECT_EQ(c->extender.sched.node_policy, sched::NodePolicy::kBinpack);
  EXPECT_EQ(c->extender.sched.gpu_policy, sched::GpuPolicy::kSpread);
  f.http_bind = "127.0.0.1:9443";
  f.node_scheduler_policy = "spread";
  f.gpu_scheduler_policy = "binpack";
  f.default_cores = 15;
  f.scheduler_name = "gpu-sched";
  f.single_node_filter = true;
  f.allocate_timeout_ms = 1234;
  std::string yaml = R"(nvidia:
  resourceCountName: example.com/gpu
  resourceMemoryName: example.com/gpumem
  defaultMemory: 2048
  defaultCores: 5
  defaultGPUNum: 2
  memoryFactor: 4
nodeconfig:
  - name: node-a
    filterdevices:
      uuid: [GPU-x]
      index: [3]
)";
  auto d = BuildConfig(f, yaml);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 9443);
  EXPECT_EQ(d->extender.names.count, "example.com/gpu");
  EXPECT_EQ(d->webhook.names.memory, "example.com/gpumem");
  EXPECT_EQ(d->extender.sched.default_memory_mib, 2048);
  EXPECT_EQ(d->extender.sched.default_cores, 15);  // the flag wins over the file
  EXPECT_EQ(d->extender.sched.default_gpu_num, 2);
  EXPECT_EQ(d->extender.memory_factor, 4);
  EXPECT_EQ(d->webhook.memory_factor, 4);
  EXPECT_EQ(d->extender.sched.node_policy, sched::NodePolicy::kSpread);
  EXPECT_EQ(d->extender.sched.gpu_policy, sched::GpuPolicy::kBinpack);
  EXPECT_EQ(d->webhook.scheduler_name, "gpu-sched");
  EXPECT_TRUE(d->extender.single_node_filter);
  EXPECT_EQ(d->extender.allocate_timeout.count(), 1234);
  ASSERT_TRUE(d->extender.device_filters.count("node-a"));
  EXPECT_EQ(d->extender.device_filters["node-a"].uuids, std::vector<std::string>{"GPU-x"});
  EXPECT_EQ(d->extender.device_filters["node-a"].indexes, std::vector<int>{3});
}

TEST(ConfigTest, BadValuesAreClearErrors) {
  auto expect_bad = [](SchedulerFlags f, const std::string& yaml, const std::string& word) {
    auto c = BuildConfig(f, yaml);
    ASSERT_FALSE(c.ok()) << word;
    EXPECT_NE(c.status().message().find(word), std::string::npos) << c.status().message();
  };
  SchedulerFlags f;
  f.node_scheduler_policy = "tightest";
  expect_bad(f, "", "tightest");
  f = {};
  f.http_bind = "nope";
  expect_bad(f, "", "--http_bind");
  f = {};
  f.http_bind = ":99999";
  expect_bad(f, "", "--http_bind");
  f = {};
  f.cert_file = "a.pem";
  expect_bad(f, "", "--key_file");
  f = {};
  f.default_cores = 300;
  expect_bad(f, "", "--default-cores");
  expect_bad({}, "nvidia:\n  deviceSplitCount: 0\n", "deviceSplitCount");
  expect_bad({}, "nvidia:\n  gpuCorePolicy: sometimes\n", "sometimes");
  expect_bad({}, "nvidia:\n  resourceCountName: gpu\n", "gpu");
  expect_bad({}, "nvidia: [\n", "device config");
  SchedulerFlags missing;
  missing.device_config_file = "/does/not/exist.yaml";
  EXPECT_EQ(LoadConfig(missing).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace hami::k8s
