// HAMi's node lock next to a HAMi scheduler (issue 13): the device plugin releases the lock the
// scheduler took for the pod it serves, and nothing else.
#include "deviceplugin/node_lock.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "deviceplugin/allocator.h"
#include "deviceplugin/fake_kube_api.h"

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;

TEST(NodeLockTest, ParsesHamisForms) {
  // HAMi's GenerateNodeLockKeyByPod: time.Now().Format(time.RFC3339) + ",<ns>,<pod>", in the
  // scheduler's local zone.
  auto l = ParseNodeLock("2026-06-14T15:05:03Z,default,gang-pod-1");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->ns, "default");
  EXPECT_EQ(l->pod, "gang-pod-1");
  EXPECT_EQ(FormatNodeLock(*l), "2026-06-14T15:05:03Z,default,gang-pod-1");
  auto zoned = ParseNodeLock("2026-06-14T23:05:03+08:00,team-a,llm-0");
  ASSERT_TRUE(zoned.ok());
  EXPECT_EQ(zoned->time, l->time);
  auto bare = ParseNodeLock("2026-06-14T15:05:03Z");  // HAMi's older form, no owner
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->pod.empty());
  for (const char* bad : {"", "yesterday,default,p", "2026-06-14T15:05:03Z,default",
                          "2026-06-14T15:05:03Z,a,b,c", "2026-06-14T15:05:03Z,,p"}) {
    auto r = ParseNodeLock(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("hami.io/mutex.lock"), std::string::npos) << bad;
  }
}

class HamiLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami-lock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.node_name = "node-1";
    opts_.hook_path = dir_;
    opts_.node_uuids = {"GPU-aaa", "GPU-bbb"};
  }
  void TearDown() override { fs::remove_all(dir_); }
  PodInfo Pod(const std::string& name, const std::string& to_allocate) {
    PodInfo p;
    p.ns = "team-a";
    p.name = name;
    p.uid = "uid-" + name;
    p.node_name = "node-1";
    p.annotations[kToAllocateAnnotation] = to_allocate;
    p.annotations[kBindPhaseAnnotation] = "allocating";
    p.annotations[kVgpuNodeAnnotation] = "node-1";
    p.containers = {{"a", {}, {}}, {"b", {}, {}}};
    return p;
  }
  // What HAMi's scheduler writes at Bind.
  void HamiSchedulerLocks(const std::string& pod) {
    ASSERT_TRUE(kube_
                    .PatchNodeAnnotations(
                        "node-1", {{kNodeLockAnnotation, common::NowRfc3339() + ",team-a," + pod}})
                    .ok());
  }
  bool Locked() { return kube_.NodeAnnotations("node-1").count(kNodeLockAnnotation) > 0; }

  std::string dir_;
  AllocatorOptions opts_;
  FakeKubeApi kube_;
};

TEST_F(HamiLockTest, ReleasedAfterThePodsLastContainer) {
  kube_.AddPod(Pod("llm-0", "GPU-aaa,NVIDIA,1000,10:;GPU-bbb,NVIDIA,1000,10:;"));
  HamiSchedulerLocks("llm-0");
  Allocator alloc(opts_, &kube_);
  ASSERT_TRUE(alloc.AllocateContainer({"GPU-aaa::0"}).ok());
  EXPECT_TRUE(Locked()) << "the pod's second container is still to come";
  ASSERT_TRUE(alloc.AllocateContainer({"GPU-bbb::0"}).ok());
  EXPECT_FALSE(Locked()) << "a HAMi scheduler would wait out the 5-minute expiry";
}

TEST_F(HamiLockTest, ReleasedWhenTheAllocationFails) {
  kube_.AddPod(Pod("foreign", "GPU-zzz,NVIDIA,1000,10:;;"));
  HamiSchedulerLocks("foreign");
  Allocator alloc(opts_, &kube_);
  EXPECT_EQ(alloc.AllocateContainer({"GPU-zzz::0"}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Locked());
}

TEST_F(HamiLockTest, AnotherPodsLockIsLeftAlone) {
  kube_.AddPod(Pod("llm-0", "GPU-aaa,NVIDIA,1000,10:;;"));
  HamiSchedulerLocks("someone-else");
  const int patches = kube_.node_patches();
  Allocator alloc(opts_, &kube_);
  ASSERT_TRUE(alloc.AllocateContainer({"GPU-aaa::0"}).ok());
  EXPECT_TRUE(Locked());
  EXPECT_EQ(kube_.NodeAnnotations("node-1").at(kNodeLockAnnotation).substr(20),
            ",team-a,someone-else");
  EXPECT_EQ(kube_.node_patches(), patches);
}

TEST_F(HamiLockTest, NoLockNoNodePatch) {
  // This project's own scheduler never takes the lock: the plugin never writes the node here.
  kube_.AddPod(Pod("llm-0", "GPU-aaa,NVIDIA,1000,10:;;"));
  Allocator alloc(opts_, &kube_);
  ASSERT_TRUE(alloc.AllocateContainer({"GPU-aaa::0"}).ok());
  EXPECT_EQ(kube_.node_patches(), 0);
}

TEST_F(HamiLockTest, ReleaseIsConditionalOnTheNodeVersion) {
  HamiSchedulerLocks("llm-0");
  auto r = ReleaseHamiNodeLock(kube_, "node-1", "team-a", "llm-0");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r);
  r = ReleaseHamiNodeLock(kube_, "node-1", "team-a", "llm-0");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r) << "nothing left to release";
}

}  // namespace
}  // namespace hami::deviceplugin
