#include "deviceplugin/kube_adapter.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "deviceplugin/allocator.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/testing/fake_apiserver.h"

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
  EXPECT_EQ(std::filesystem::status(dir + "/vgpu/board").permissions(),
            std::filesystem::perms::all | std::filesystem::perms::sticky_bit);
  EXPECT_FALSE(PrepareHookDir(dir, dir + "/missing.so").ok());
  std::filesystem::remove_all(dir);
}

// Allocate through the real client over HTTP against the API-server double: the list by
// field selector, the resourceVersion-guarded merge patch and its conflict retry.
TEST(DevicePluginKube, AllocateAgainstTheApiServerDoubleRetriesConflicts) {
  k8s::testing::FakeApiServer api;
  ASSERT_TRUE(api.Start().ok());
  const std::string to_allocate = ";GPU-aaa,NVIDIA,3000,30:;";
  nlohmann::json pod = {{"apiVersion", "v1"},
                        {"kind", "Pod"},
                        {"metadata",
                         {{"namespace", "default"},
                          {"name", "llm-0"},
                          {"annotations",
                           {{"hami.io/vgpu-devices-to-allocate", to_allocate},
                            {"hami.io/vgpu-devices-allocated", to_allocate},
                            {"hami.io/bind-phase", "allocating"},
                            {"hami.io/vgpu-node", "node-1"}}}}},
                        {"spec",
                         {{"nodeName", "node-1"},
                          {"initContainers", {{{"name", "init"}}}},
                          {"containers", {{{"name", "main"}}}}}}};
  ASSERT_TRUE(api.Create("pods", pod).ok());
  nlohmann::json other = pod;
  other["metadata"]["name"] = "elsewhere";
  other["spec"]["nodeName"] = "node-2";
  ASSERT_TRUE(api.Create("pods", other).ok());
  ASSERT_TRUE(
      api.Create("nodes",
                 {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "node-1"}}}})
          .ok());
  k8s::ClientConfig cfg;
  cfg.server = api.url();
  auto client = k8s::HttpKubeClient::Create(cfg);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto kube = AdaptKubeClient(std::move(*client));

  auto pods = kube->ListPodsOnNode("node-1");
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].containers.size(), 2u);
  EXPECT_FALSE((*pods)[0].uid.empty());

  char tmpl[] = "/tmp/hami-kube-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  AllocatorOptions opts;
  opts.node_name = "node-1";
  opts.hook_path = tmpl;
  Allocator alloc(opts, kube.get());
  api.FailNext("PATCH", "/pods/llm-0", 409, 2);  // someone else wrote the pod, twice
  auto r = alloc.AllocateContainer({"GPU-aaa-0"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->envs.at("CUDA_DEVICE_MEMORY_LIMIT_0"), "3000m");
  auto stored = api.Get("pods", "default", "llm-0");
  ASSERT_TRUE(stored.ok());
  const auto& annos = (*stored)["metadata"]["annotations"];
  EXPECT_EQ(annos["hami.io/vgpu-devices-to-allocate"], ";;");
  EXPECT_EQ(annos["hami.io/bind-phase"], "success");
  EXPECT_EQ(annos["hami.io/vgpu-devices-allocated"], to_allocate);
  EXPECT_EQ(api.patch_content_types().back(), "application/merge-patch+json");

  // A stale resourceVersion is a conflict, never a blind write.
  Status stale = kube->PatchPodAnnotations("default", "llm-0", "1", {{"x", "y"}});
  EXPECT_EQ(stale.code(), StatusCode::kAborted) << stale.ToString();

  ASSERT_TRUE(kube->PatchNodeAnnotations("node-1", {{kRegisterAnnotation, "[]"}}).ok());
  auto node = api.Get("nodes", "", "node-1");
  ASSERT_TRUE(node.ok());
  EXPECT_EQ((*node)["metadata"]["annotations"][kRegisterAnnotation], "[]");
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace hami::deviceplugin
