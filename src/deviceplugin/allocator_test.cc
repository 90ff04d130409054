#include "deviceplugin/allocator.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "deviceplugin/fake_kube_api.h"

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

PodInfo MakePod(const std::string& name, const std::string& to_allocate,
                const std::string& phase = "allocating") {
  PodInfo p;
  p.ns = "team-a";
  p.name = name;
  p.uid = "uid-" + name;
  p.node_name = "node-1";
  p.annotations[kToAllocateAnnotation] = to_allocate;
  p.annotations[kAllocatedAnnotation] = to_allocate;
  p.annotations[kBindPhaseAnnotation] = phase;
  p.annotations[kVgpuNodeAnnotation] = "node-1";
  p.containers = {{"init", {}, {}}, {"main", {}, {{"nvidia.com/priority", "1"}}}, {"side", {}, {}}};
  return p;
}

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami-alloc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.node_name = "node-1";
    opts_.hook_path = dir_ + "/";
    opts_.config.nvidia.lib_cuda_log_level = 2;
    opts_.node_uuids = {"GPU-aaa", "GPU-bbb"};
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  AllocatorOptions opts_;
  FakeKubeApi kube_;
};

const char kTwoContainers[] =
    ";GPU-aaa,NVIDIA,3000,30:GPU-bbb,NVIDIA,3000,30:;GPU-aaa,NVIDIA,5000,0:;";

TEST_F(AllocatorTest, ServesContainersInOrderFieldByField) {
  kube_.AddPod(MakePod("llm-0", kTwoContainers));
  kube_.AddPod(MakePod("done", ";;;", "success"));
  Allocator alloc(opts_, &kube_);

  auto r = alloc.AllocateContainer({"GPU-aaa-3", "GPU-bbb-0"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string root = dir_ + "/vgpu";
  const std::string ctr_dir = root + "/containers/uid-llm-0_main";
  const std::string alloc_dir = root + "/allocations/uid-llm-0_main";
  std::map<std::string, std::string> want_env = {
      {"NVIDIA_VISIBLE_DEVICES", "GPU-aaa,GPU-bbb"},
      {"CUDA_DEVICE_MEMORY_LIMIT_0", "3000m"},
      {"CUDA_DEVICE_MEMORY_LIMIT_1", "3000m"},
      {"CUDA_DEVICE_SM_LIMIT", "30"},
      {"CUDA_DEVICE_MEMORY_SHARED_CACHE", ctr_dir + "/vgpu.cache"},
      {"LIBCUDA_LOG_LEVEL", "2"},
      {"GPU_CORE_UTILIZATION_POLICY", "default"},
      {"CUDA_TASK_PRIORITY", "1"},
      {"HAMI_COMPUTE_BOARD_DIR", root + "/board"},
  };
  EXPECT_EQ(r->envs, want_env);
  std::vector<MountSpec> want_mounts = {
      {root + "/libvgpu.so", root + "/libvgpu.so", true},
      {ctr_dir, ctr_dir, false},
      {"/etc/hami/vgpu.limits", alloc_dir + "/vgpu.limits", true},
      {root + "/contention", root + "/contention", true},
      {root + "/board", root + "/board", false},
      {"/etc/ld.so.preload", root + "/ld.so.preload", true},
  };
  EXPECT_EQ(r->mounts, want_mounts);

  EXPECT_TRUE(fs::is_directory(ctr_dir));
  EXPECT_EQ(fs::status(ctr_dir).permissions() & fs::perms::others_write, fs::perms::others_write);
  EXPECT_EQ(fs::status(root + "/board").permissions(), fs::perms::all | fs::perms::sticky_bit);
  const std::string limits = Slurp(alloc_dir + "/vgpu.limits");
  EXPECT_EQ(limits,
            "# written by hami-device-plugin for pod team-a/llm-0 container main\n"
            "CUDA_DEVICE_MEMORY_LIMIT_0=3000m\n"
            "CUDA_DEVICE_UUID_0=GPU-aaa\n"
            "CUDA_DEVICE_MEMORY_LIMIT_1=3000m\n"
            "CUDA_DEVICE_UUID_1=GPU-bbb\n"
            "CUDA_DEVICE_SM_LIMIT=30\n"
            "GPU_CORE_UTILIZATION_POLICY=default\n"
            "CUDA_TASK_PRIORITY=1\n"
            "CUDA_DEVICE_MEMORY_SHARED_CACHE=" +
                ctr_dir + "/vgpu.cache\n");
  struct stat st {};
  ASSERT_EQ(stat((alloc_dir + "/vgpu.limits").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  auto meta = nlohmann::json::parse(Slurp(alloc_dir + "/pod.json"));
  EXPECT_EQ(meta["namespace"], "team-a");
  EXPECT_EQ(meta["pod"], "llm-0");
  EXPECT_EQ(meta["container"], "main");
  EXPECT_EQ(meta["devices"][1]["uuid"], "GPU-bbb");
  EXPECT_EQ(meta["devices"][1]["memoryMiB"], 3000);

  auto pod = kube_.GetPod("team-a", "llm-0");
  EXPECT_EQ(pod->annotations[kToAllocateAnnotation], ";;GPU-aaa,NVIDIA,5000,0:;");
  EXPECT_EQ(pod->annotations[kBindPhaseAnnotation], "allocating");

  // The second container asks for one device; a 2-device request now finds nobody.
  auto wrong = alloc.AllocateContainer({"GPU-aaa-1", "GPU-bbb-1"});
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  auto r2 = alloc.AllocateContainer({"GPU-aaa-1"});
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->envs.at("CUDA_DEVICE_MEMORY_LIMIT_0"), "5000m");
  EXPECT_EQ(r2->envs.at("CUDA_DEVICE_SM_LIMIT"), "0");
  EXPECT_EQ(r2->envs.count("CUDA_TASK_PRIORITY"), 0u);
  pod = kube_.GetPod("team-a", "llm-0");
  EXPECT_EQ(pod->annotations[kToAllocateAnnotation], ";;;");
  EXPECT_EQ(pod->annotations[kBindPhaseAnnotation], "success");
  // The allocated record is never touched.
  EXPECT_EQ(pod->annotations[kAllocatedAnnotation], kTwoContainers);
}

TEST_F(AllocatorTest, RefusesWhenNoPodIsWaiting) {
  kube_.AddPod(MakePod("done", ";;;", "success"));
  kube_.AddPod(MakePod("failed", kTwoContainers, "failed"));
  Allocator alloc(opts_, &kube_);
  auto r = alloc.AllocateContainer({"GPU-aaa-0", "GPU-bbb-0"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("found 0"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(dir_ + "/vgpu/allocations"));
}

TEST_F(AllocatorTest, RefusesWhenTwoPodsCouldBeMeantAndTouchesNeither) {
  kube_.AddPod(MakePod("a", kTwoContainers));
  kube_.AddPod(MakePod("b", kTwoContainers));
  Allocator alloc(opts_, &kube_);
  auto r = alloc.AllocateContainer({"GPU-aaa-0", "GPU-bbb-0"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("found 2"), std::string::npos);
  EXPECT_NE(r.status().message().find("team-a/a"), std::string::npos);
  EXPECT_NE(r.status().message().find("team-a/b"), std::string::npos);
  EXPECT_EQ(kube_.GetPod("team-a", "a")->annotations[kToAllocateAnnotation], kTwoContainers);
  EXPECT_EQ(kube_.GetPod("team-a", "b")->annotations[kToAllocateAnnotation], kTwoContainers);
  EXPECT_TRUE(alloc.PendingUuids(2).empty());
}

TEST_F(AllocatorTest, PicksThePodWhoseNextContainerHasTheRequestedSize) {
  // Two pods allocating (the extender should prevent that, but sizes still disambiguate).
  kube_.AddPod(MakePod("two", kTwoContainers));
  PodInfo one = MakePod("one", ";GPU-bbb,NVIDIA,1000,10:;;");
  kube_.AddPod(one);
  Allocator alloc(opts_, &kube_);
  EXPECT_EQ(alloc.PendingUuids(1), std::vector<std::string>{"GPU-bbb"});
  auto r = alloc.AllocateContainer({"GPU-bbb-4"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->envs.at("CUDA_DEVICE_MEMORY_LIMIT_0"), "1000m");
  EXPECT_EQ(kube_.GetPod("team-a", "one")->annotations[kBindPhaseAnnotation], "success");
  EXPECT_EQ(kube_.GetPod("team-a", "two")->annotations[kToAllocateAnnotation], kTwoContainers);
}

TEST_F(AllocatorTest, IgnoresPodsOfOtherNodesAndDeletedPods) {
  PodInfo other = MakePod("other", kTwoContainers);
  other.annotations[kVgpuNodeAnnotation] = "node-2";
  kube_.AddPod(other);
  PodInfo unnamed = MakePod("unnamed", kTwoContainers);  // no hami.io/vgpu-node
  unnamed.annotations.erase(kVgpuNodeAnnotation);
  kube_.AddPod(unnamed);
  PodInfo gone = MakePod("gone", kTwoContainers);
  gone.deleting = true;
  kube_.AddPod(gone);
  Allocator alloc(opts_, &kube_);
  EXPECT_EQ(alloc.AllocateContainer({"a-0", "b-0"}).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(AllocatorTest, RetriesOnConflict) {
  kube_.AddPod(MakePod("llm-0", kTwoContainers));
  kube_.InjectConflicts(2);
  Allocator alloc(opts_, &kube_);
  auto r = alloc.AllocateContainer({"GPU-aaa-0", "GPU-bbb-0"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(kube_.GetPod("team-a", "llm-0")->annotations[kToAllocateAnnotation],
            ";;GPU-aaa,NVIDIA,5000,0:;");
  kube_.InjectConflicts(100);
  auto r2 = alloc.AllocateContainer({"GPU-aaa-0"});
  EXPECT_EQ(r2.status().code(), StatusCode::kAborted);
}

TEST_F(AllocatorTest, WaitsOutABriefApiOutageButNotALongOne) {
  kube_.AddPod(MakePod("llm-0", kTwoContainers));
  Allocator alloc(opts_, &kube_);
  kube_.InjectListFailures(2);
  ASSERT_TRUE(alloc.AllocateContainer({"GPU-aaa-0", "GPU-bbb-0"}).ok());
  kube_.InjectListFailures(10);
  EXPECT_EQ(alloc.AllocateContainer({"GPU-aaa-0"}).status().code(), StatusCode::kUnavailable);
}

TEST_F(AllocatorTest, DisableControlDropsPreloadAndDisableCoreLimitDropsSmLimit) {
  PodInfo p = MakePod("ctl", ";GPU-aaa,NVIDIA,1000,40:;;");
  p.containers[1].env["CUDA_DISABLE_CONTROL"] = "True";
  kube_.AddPod(p);
  opts_.config.nvidia.disable_core_limit = true;
  Allocator alloc(opts_, &kube_);
  auto r = alloc.AllocateContainer({"GPU-aaa-0"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& m : r->mounts) EXPECT_NE(m.container_path, "/etc/ld.so.preload");
  EXPECT_EQ(r->envs.count("CUDA_DEVICE_SM_LIMIT"), 0u);
  EXPECT_EQ(r->envs.at("GPU_CORE_UTILIZATION_POLICY"), "disable");
}

TEST_F(AllocatorTest, RefusesMalformedAnnotationsAndForeignGpus) {
  kube_.AddPod(MakePod("bad", ";GPU-aaa,NVIDIA,lots,40:;;"));
  Allocator alloc(opts_, &kube_);
  EXPECT_EQ(alloc.AllocateContainer({"GPU-aaa-0"}).status().code(), StatusCode::kInvalidArgument);

  FakeKubeApi kube2;
  kube2.AddPod(MakePod("foreign", ";GPU-zzz,NVIDIA,100,40:;;"));
  Allocator alloc2(opts_, &kube2);
  auto r = alloc2.AllocateContainer({"GPU-aaa-0"});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("GPU-zzz"), std::string::npos);

  FakeKubeApi kube3;
  PodInfo p = MakePod("short", ";GPU-aaa,NVIDIA,100,40:;;");
  p.containers.pop_back();
  kube3.AddPod(p);
  Allocator alloc3(opts_, &kube3);
  EXPECT_EQ(alloc3.AllocateContainer({"GPU-aaa-0"}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(AllocatorTest, GarbageCollectionRemovesOnlyGonePodsDirectories) {
  const std::string root = dir_ + "/vgpu";
  fs::create_directories(root + "/containers/uid-gone_main");
  fs::create_directories(root + "/allocations/uid-gone_main");
  fs::create_directories(root + "/containers/uid-live_side");
  // Young directories of unknown pods stay (the pod list may lag behind Allocate).
  auto young = CollectGarbage(dir_, {"uid-live"}, std::chrono::seconds(300));
  ASSERT_TRUE(young.ok());
  EXPECT_EQ(*young, 0);
  auto r = CollectGarbage(dir_, {"uid-live"}, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 2);
  EXPECT_FALSE(fs::exists(root + "/containers/uid-gone_main"));
  EXPECT_FALSE(fs::exists(root + "/allocations/uid-gone_main"));
  EXPECT_TRUE(fs::exists(root + "/containers/uid-live_side"));
  auto none = CollectGarbage(dir_ + "/nothing-here", {}, std::chrono::seconds(0));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

}  // namespace
}  // namespace hami::deviceplugin
