#include "deviceplugin/kube_adapter.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "deviceplugin/allocator.h"

namespace hami::deviceplugin {
namespace {

TEST(DevicePluginKube, ParsesPodListWithContainersInAnnotationOrder) {
  auto pods = ParsePodList(R"({"items": [{
    "metadata": {"namespace": "ns", "name": "p", "uid": "u1", "resourceVersion": "42",
                 "annotations": {"hami.io/bind-phase": "allocating"},
                 "deletionTimestamp": "2024-01-01T00:00:00Z"},
    "spec": {"nodeName": "n1",
             "initContainers": [{"name": "init"}],
             "containers": [{"name": "main",
                             "env": [{"name": "CUDA_DISABLE_CONTROL", "value": "true"},
                                     {"name": "X", "valueFrom": {}}],
                             "resources": {"requests": {"nvidia.com/gpu": "1"},
                                           "limits": {"nvidia.com/priority": "0"}}}]}}]})");
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  ASSERT_EQ(pods->size(), 1u);
  const PodInfo& p = (*pods)[0];
  EXPECT_EQ(p.ns, "ns");
  EXPECT_EQ(p.uid, "u1");
  EXPECT_EQ(p.resource_version, "42");
  EXPECT_TRUE(p.deleting);
  EXPECT_EQ(p.node_name, "n1");
  EXPECT_EQ(p.annotations.at("hami.io/bind-phase"), "allocating");
  ASSERT_EQ(p.containers.size(), 2u);
  EXPECT_EQ(p.containers[0].name, "init");
  EXPECT_EQ(p.containers[1].env.at("CUDA_DISABLE_CONTROL"), "true");
  EXPECT_EQ(p.containers[1].env.count("X"), 0u);
  EXPECT_EQ(p.containers[1].limits.at("nvidia.com/gpu"), "1");
  EXPECT_EQ(p.containers[1].limits.at("nvidia.com/priority"), "0");
  EXPECT_FALSE(ParsePodList(R"({"items": [{"spec": {}}]})").ok());
  EXPECT_FALSE(ParsePodList("not json").ok());
}

TEST(DevicePluginKube, PrepareHookDirInstallsPreloadAndLibrary) {
  char tmpl[] = "/tmp/hami-hook-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  { std::ofstream(dir + "/src.so") << "ELF"; }
  ASSERT_TRUE(PrepareHookDir(dir, dir + "/src.so").ok());
  std::ifstream pre(dir + "/vgpu/ld.so.preload");
  std::string line;
  std::getline(pre, line);
  EXPECT_EQ(line, dir + "/vgpu/libvgpu.so");
  EXPECT_TRUE(std::filesystem::exists(dir + "/vgpu/libvgpu.so"));
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/vgpu/contention"));
  EXPECT_FALSE(PrepareHookDir(dir, dir + "/missing.so").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hami::deviceplugin
