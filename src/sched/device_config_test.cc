#include "sched/device_config.h"

#include <gtest/gtest.h>

#include <limits>

namespace hami::sched {
namespace {

TEST(DeviceConfigTest, EmptyTextGivesSpecDefaults) {
  auto c = ParseDeviceConfig("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->nvidia.resource_count_name, "nvidia.com/gpu");
  EXPECT_EQ(c->nvidia.device_split_count, 10);
  EXPECT_EQ(c->nvidia.device_memory_scaling, 1.0);
  EXPECT_EQ(c->nvidia.default_gpu_num, 1);
  EXPECT_EQ(c->nvidia.gpu_core_policy, "default");
  EXPECT_FALSE(c->nvidia.lib_cuda_log_level.has_value());
}

TEST(DeviceConfigTest, ReadsEveryNvidiaKey) {
  auto c = ParseDeviceConfig(R"(
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

TEST(DeviceConfigTest, RejectsBadValuesNamingTheKey) {
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
    auto r = ParseDeviceConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.key), std::string::npos) << r.status().message();
  }
}

TEST(DeviceConfigTest, NodeOverridesApplyOnlyToTheirNode) {
  auto c = ParseDeviceConfig(R"(
nvidia: {deviceSplitCount: 10, deviceMemoryScaling: 1}
)");
  ASSERT_TRUE(c.ok());
  // HAMi's separate JSON form.
  ASSERT_TRUE(ParseNodeConfigs(R"({"nodeconfig": [{"name": "gpu-7", "operatingmode": "hami-core",
      "devicememoryscaling": 1.8, "devicesplitcount": 3, "devicecorescaling": 1.5,
      "filterdevices": {"uuid": ["GPU-x"], "index": [2]}}]})",
                               *c)
                  .ok());
  NodeDeviceConfig other = ResolveForNode(*c, "gpu-1");
  EXPECT_EQ(other.nvidia.device_split_count, 10);
  EXPECT_TRUE(other.filter_uuids.empty());
  NodeDeviceConfig n7 = ResolveForNode(*c, "gpu-7");
  EXPECT_EQ(n7.nvidia.device_split_count, 3);
  EXPECT_DOUBLE_EQ(n7.nvidia.device_memory_scaling, 1.8);
  EXPECT_DOUBLE_EQ(n7.nvidia.device_core_scaling, 1.5);
  EXPECT_EQ(n7.operating_mode, "hami-core");
  EXPECT_EQ(n7.filter_uuids, std::vector<std::string>{"GPU-x"});
  EXPECT_EQ(n7.filter_indexes, std::vector<unsigned>{2});
  EXPECT_FALSE(ParseNodeConfigs("{}", *c).ok());
}

// Issue 12: every wrong YAML shape is a named error, never an uncaught yaml-cpp exception (the
// fuzzer found `filterdevices: 3`, which aborted the device plugin and the scheduler).
TEST(DeviceConfigTest, WrongShapesAreNamedErrorsNeverExceptions) {
  struct Case {
    const char* yaml;
    const char* names;
  } cases[] = {
      {"nodeconfig: [{name: n1, filterdevices: 3}]", "nodeconfig[0].filterdevices"},
      {"nodeconfig: [{name: n1, filterdevices: [1, 2]}]", "nodeconfig[0].filterdevices"},
      {"nodeconfig: [{name: n1, filterdevices: {uuid: GPU-a}}]", "filterdevices.uuid"},
      {"nodeconfig: [{name: n1, filterdevices: {index: [x]}}]", "filterdevices.index[0]"},
      {"nodeconfig: [{name: n1, filterdevices: {index: [[1]]}}]", "filterdevices.index[0]"},
      {"nodeconfig: [{name: n1, filterdevices: {uuid: {a: b}}}]", "filterdevices.uuid"},
      {"nodeconfig: 3", "nodeconfig"},
      {"nodeconfig: {name: n1}", "nodeconfig"},
      {"nodeconfig: [3]", "nodeconfig[0]"},
      {"nodeconfig: [{name: [a]}]", "nodeconfig[0].name"},
      {"nodeconfig: [{name: n1, devicesplitcount: {a: 1}}]", "devicesplitcount"},
      {"nvidia: 3", "nvidia"},
      {"nvidia: {deviceSplitCount: [1]}", "deviceSplitCount"},
      {"nvidia: {resourceCountName: {a: b}}", "resourceCountName"},
      {"nvidia: {gpuCorePolicy: [force]}", "gpuCorePolicy"},
      {"3", "top"},
      {"[nvidia]", "top"},
  };
  for (const auto& c : cases) {
    auto r = ParseDeviceConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(r.status().message().find(c.names), std::string::npos)
        << c.yaml << " -> " << r.status().message();
  }
  DeviceConfig dc;
  EXPECT_FALSE(ParseNodeConfigs(R"({"nodeconfig": [{"name": "n", "filterdevices": 3}]})", dc).ok());
  EXPECT_FALSE(ParseNodeConfigs(R"({"nodeconfig": 7})", dc).ok());
}

// Issue 12: a .nan, .inf or 1e308 scaling was accepted and published devmem
// -9223372036854775808. Non-finite and out-of-range numbers are refused, naming the key.
TEST(DeviceConfigTest, NonFiniteAndOutOfRangeNumbersAreRefused) {
  struct Case {
    const char* yaml;
    const char* key;
  } cases[] = {
      {"nvidia: {deviceMemoryScaling: .nan}", "nvidia.deviceMemoryScaling"},
      {"nvidia: {deviceMemoryScaling: .inf}", "nvidia.deviceMemoryScaling"},
      {"nvidia: {deviceMemoryScaling: -.inf}", "nvidia.deviceMemoryScaling"},
      {"nvidia: {deviceMemoryScaling: 1e308}", "nvidia.deviceMemoryScaling"},
      {"nvidia: {deviceMemoryScaling: 0}", "nvidia.deviceMemoryScaling"},
      {"nvidia: {deviceCoreScaling: .NaN}", "nvidia.deviceCoreScaling"},
      {"nvidia: {deviceCoreScaling: 1e9}", "nvidia.deviceCoreScaling"},
      {"nvidia: {memoryFactor: .inf}", "nvidia.memoryFactor"},
      {"nvidia: {memoryFactor: 1e308}", "nvidia.memoryFactor"},
      {"nvidia: {deviceSplitCount: 1e308}", "nvidia.deviceSplitCount"},
      {"nvidia: {deviceSplitCount: 99999999999}", "nvidia.deviceSplitCount"},
      {"nvidia: {deviceSplitCount: 100000}", "nvidia.deviceSplitCount"},
      {"nvidia: {defaultMemory: 99999999999999999999}", "nvidia.defaultMemory"},
      {"nvidia: {defaultMemory: -1}", "nvidia.defaultMemory"},
      {"nvidia: {defaultGPUNum: 0}", "nvidia.defaultGPUNum"},
      {"nvidia: {defaultCores: 101}", "nvidia.defaultCores"},
      {"nodeconfig: [{name: n1, devicememoryscaling: .nan}]", "nodeconfig[0].devicememoryscaling"},
      {"nodeconfig: [{name: n1, devicememoryscaling: 1e308}]", "nodeconfig[0].devicememoryscaling"},
      {"nodeconfig: [{name: n1, devicecorescaling: -.inf}]", "nodeconfig[0].devicecorescaling"},
      {"nodeconfig: [{name: n1, devicesplitcount: 5000}]", "nodeconfig[0].devicesplitcount"},
  };
  for (const auto& c : cases) {
    auto r = ParseDeviceConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.key), std::string::npos)
        << c.yaml << " -> " << r.status().message();
  }
  // The largest accepted values still give a devmem that fits: 100 x 1 PiB in MiB.
  auto ok = ParseDeviceConfig("nvidia: {deviceMemoryScaling: 100, deviceSplitCount: 1024}");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(DeviceConfigTest, ValidateChecksAModelBuiltInCode) {
  DeviceConfig c;
  EXPECT_TRUE(c.Validate().ok());
  c.nvidia.device_memory_scaling = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(c.Validate().message().find("deviceMemoryScaling"), std::string::npos);
  c.nvidia.device_memory_scaling = 1;
  c.nodes.push_back({});
  EXPECT_NE(c.Validate().message().find("nodeconfig[0].name"), std::string::npos);
}

}  // namespace
}  // namespace hami::sched
