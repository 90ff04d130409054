#include "deviceplugin/config.h"

#include <gtest/gtest.h>

namespace hami::deviceplugin {
namespace {

TEST(DevicePluginConfig, EmptyTextGivesSpecDefaults) {
  auto c = ParsePluginConfig("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->nvidia.resource_count_name, "nvidia.com/gpu");
  EXPECT_EQ(c->nvidia.device_split_count, 10);
  EXPECT_EQ(c->nvidia.device_memory_scaling, 1.0);
  EXPECT_EQ(c->nvidia.default_gpu_num, 1);
  EXPECT_EQ(c->nvidia.gpu_core_policy, "default");
  EXPECT_FALSE(c->nvidia.lib_cuda_log_level.has_value());
}

TEST(DevicePluginConfig, ReadsEveryNvidiaKey) {
  auto c = ParsePluginConfig(R"(
nvidia:
  resourceCountName: example.com/vgpu
  resourceMemoryName: example.com/vmem
  resourceMemoryPercentageName: example.com/vmem-pct
  resourceCoreName: example.com/vcores
  resourcePriorityName: example.com/prio
  defaultMemory: 1024
  defaultCores: 20
  defaultGPUNum: 2
  memoryFactor: 2
  deviceSplitCount: 4
  deviceMemoryScaling: 1.5
  deviceCoreScaling: 2
  gpuCorePolicy: force
  libCudaLogLevel: 3
  disableCoreLimit: true
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const NvidiaConfig& n = c->nvidia;
  EXPECT_EQ(n.resource_count_name, "example.com/vgpu");
  EXPECT_EQ(n.resource_memory_name, "example.com/vmem");
  EXPECT_EQ(n.resource_memory_percentage_name, "example.com/vmem-pct");
  EXPECT_EQ(n.resource_core_name, "example.com/vcores");
  EXPECT_EQ(n.resource_priority_name, "example.com/prio");
  EXPECT_EQ(n.default_memory, 1024);
  EXPECT_EQ(n.default_cores, 20);
  EXPECT_EQ(n.default_gpu_num, 2);
  EXPECT_EQ(n.memory_factor, 2);
  EXPECT_EQ(n.device_split_count, 4);
  EXPECT_EQ(n.device_memory_scaling, 1.5);
  EXPECT_EQ(n.device_core_scaling, 2);
  EXPECT_EQ(n.gpu_core_policy, "force");
  EXPECT_EQ(n.lib_cuda_log_level, 3);
  EXPECT_TRUE(n.disable_core_limit);
}

TEST(DevicePluginConfig, RejectsBadValuesNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* key;
  } cases[] = {
      {"nvidia: {deviceSplitCount: 0}", "deviceSplitCount"},
      {"nvidia: {deviceSplitCount: ten}", "deviceSplitCount"},
      {"nvidia: {deviceMemoryScaling: -1}", "deviceMemoryScaling"},
      {"nvidia: {gpuCorePolicy: sometimes}", "gpuCorePolicy"},
      {"nvidia: {libCudaLogLevel: 9}", "libCudaLogLevel"},
      {"nodeconfig: [{name: n1, operatingmode: magic}]", "operatingmode"},
      {"nodeconfig: [{operatingmode: mig}]", "name"},
      {"nvidia: [1, 2]", "nvidia"},
      {"nvidia: {a: [}", "YAML"},
  };
  for (const auto& c : cases) {
    auto r = ParsePluginConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.key), std::string::npos) << r.status().message();
  }
}

TEST(DevicePluginConfig, NodeOverridesApplyOnlyToTheirNode) {
  auto c = ParsePluginConfig(R"(
nvidia: {deviceSplitCount: 10, deviceMemoryScaling: 1}
)");
  ASSERT_TRUE(c.ok());
  // HAMi's separate JSON form.
  ASSERT_TRUE(ParseNodeConfigs(R"({"nodeconfig": [{"name": "gpu-7", "operatingmode": "hami-core",
      "devicememoryscaling": 1.8, "devicesplitcount": 3, "devicecorescaling": 1.5,
      "filterdevices": {"uuid": ["GPU-x"], "index": [2]}}]})",
                               *c)
                  .ok());
  NodeConfig other = ResolveForNode(*c, "gpu-1");
  EXPECT_EQ(other.nvidia.device_split_count, 10);
  EXPECT_TRUE(other.filter_uuids.empty());
  NodeConfig n7 = ResolveForNode(*c, "gpu-7");
  EXPECT_EQ(n7.nvidia.device_split_count, 3);
  EXPECT_DOUBLE_EQ(n7.nvidia.device_memory_scaling, 1.8);
  EXPECT_DOUBLE_EQ(n7.nvidia.device_core_scaling, 1.5);
  EXPECT_EQ(n7.operating_mode, "hami-core");
  EXPECT_EQ(n7.filter_uuids, std::vector<std::string>{"GPU-x"});
  EXPECT_EQ(n7.filter_indexes, std::vector<unsigned>{2});
  EXPECT_FALSE(ParseNodeConfigs("{}", *c).ok());
}

}  // namespace
}  // namespace hami::deviceplugin
