#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gpu/fake_backend.h"
#include "gpu/nvml.h"

namespace hami::gpu {
namespace {

using namespace std::chrono_literals;

TEST(FakeBackendTest, ListsUsageAndEvents) {
  FakeBackend b({{"GPU-a", 0, "NVIDIA A100", 40ull << 30, 0, false, true},
                 {"GPU-b", 1, "NVIDIA A100", 40ull << 30, 1, false, true}});
  auto list = b.ListGpus();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].uuid, "GPU-b");
  b.SetUsage("GPU-a", {1ull << 30, 0, 42, 7});
  auto u = b.Usage("GPU-a");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->memory_used_bytes, 1ull << 30);
  EXPECT_EQ(u->memory_total_bytes, 40ull << 30);
  EXPECT_EQ(u->memory_utilization_percent, 7u);
  EXPECT_EQ(b.Usage("GPU-z").status().code(), StatusCode::kNotFound);
  auto none = b.WaitHealthEvent(1ms);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  std::thread t([&] { b.PushHealth("GPU-b", false, 79); });
  auto ev = b.WaitHealthEvent(5s);
  t.join();
  ASSERT_TRUE(ev.ok() && ev->has_value());
  EXPECT_EQ((*ev)->uuid, "GPU-b");
  EXPECT_EQ((*ev)->xid, 79u);
  EXPECT_TRUE(b.fake());
}

TEST(NvmlTest, MissingLibraryIsUnavailable) {
  auto b = OpenNvml("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(b.status().message().find("/nonexistent"), std::string::npos);
}

TEST(NvmlTest, ApplicationXidsAreNotHardwareFaults) {
  EXPECT_TRUE(IsApplicationXid(13));
  EXPECT_TRUE(IsApplicationXid(43));
  EXPECT_FALSE(IsApplicationXid(79));  // fallen off the bus
  EXPECT_FALSE(IsApplicationXid(48));  // double-bit ECC
}

#ifdef HAMI_FAKE_NVML
TEST(NvmlTest, FakeDriverThroughTheRealDlopenPath) {
  char tmpl[] = "/tmp/hami-gpu-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, cfg = dir + "/fakegpu.conf", state = dir + "/fakegpu.state";
  std::ofstream(cfg) << "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB "
                        "HBM3 mem=80g numa=1\n";
  setenv("FAKEGPU_CONFIG", cfg.c_str(), 1);
  setenv("FAKEGPU_STATE", state.c_str(), 1);
  auto b = OpenNvml(HAMI_FAKE_NVML);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE((*b)->fake()) << (*b)->Describe();
  EXPECT_NE((*b)->Describe().find("libnvidia-ml.so.1"), std::string::npos);
  auto list = (*b)->ListGpus();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ((*list)[0].memory_bytes, 80ull << 30);
  EXPECT_EQ((*list)[0].numa, 1);
  EXPECT_TRUE((*list)[0].healthy);
  auto u = (*b)->Usage((*list)[0].uuid);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->memory_total_bytes, 80ull << 30);
  EXPECT_EQ((*b)->Usage("GPU-nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE((*b)->Probe((*list)[0].uuid));
  b->reset();
  std::filesystem::remove_all(dir);
}
#endif

}  // namespace
}  // namespace hami::gpu
