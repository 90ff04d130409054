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

// Sensors, ECC counts and MIG identities through NVML, with their units as NVML gives them.
TEST(NvmlTest, FakeDriverTelemetryAndMigDevices) {
  char tmpl[] = "/tmp/hami-gpu-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, cfg = dir + "/fakegpu.conf", state = dir + "/fakegpu.state";
  std::ofstream(cfg) << "name=NVIDIA A100-SXM4-40GB temp=58 power=187250 ecc=12,2 "
                        "migs=1g.5gb:9:0,2g.10gb:3:1\n"
                        "ecc=unsupported\n";
  setenv("FAKEGPU_CONFIG", cfg.c_str(), 1);
  setenv("FAKEGPU_STATE", state.c_str(), 1);
  auto b = OpenNvml(HAMI_FAKE_NVML);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto list = (*b)->ListGpus();
  ASSERT_TRUE(list.ok() && list->size() == 2u);
  EXPECT_TRUE((*list)[0].mig_enabled);
  auto t = (*b)->Telemetry((*list)[0].uuid);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->temperature_c, 58u);
  EXPECT_EQ(t->power_mw, 187250u);
  EXPECT_EQ(t->ecc_corrected, 12u);
  EXPECT_EQ(t->ecc_uncorrected, 2u);
  auto t1 = (*b)->Telemetry((*list)[1].uuid);
  ASSERT_TRUE(t1.ok());
  EXPECT_FALSE(t1->ecc_corrected.has_value());  // no ECC on that card: unknown, not 0
  EXPECT_FALSE(t1->ecc_uncorrected.has_value());
  EXPECT_EQ(t1->temperature_c, 35u);
  EXPECT_EQ((*b)->Telemetry("GPU-nope").status().code(), StatusCode::kNotFound);
  auto migs = (*b)->MigDevices();
  ASSERT_TRUE(migs.ok()) << migs.status().ToString();
  ASSERT_EQ(migs->size(), 2u);
  EXPECT_EQ((*migs)[1].parent_uuid, (*list)[0].uuid);
  EXPECT_EQ((*migs)[1].uuid, "MIG-fa4e0000-0000-4000-8000-a00000000001");
  EXPECT_EQ((*migs)[1].profile, "2g.10gb");
  EXPECT_EQ((*migs)[1].gpu_instance_id, 3u);
  EXPECT_EQ((*migs)[1].compute_instance_id, 1u);
  EXPECT_EQ((*migs)[0].gpu_instance_id, 9u);
  b->reset();
  std::filesystem::remove_all(dir);
}
#endif

TEST(FakeBackendTest, TelemetryAndMigDevicesAreWhatTheTestSet) {
  FakeBackend b({{"GPU-a", 0, "NVIDIA A100", 40ull << 30, 0, true, true}});
  auto none = b.Telemetry("GPU-a");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->temperature_c.has_value());
  b.SetTelemetry("GPU-a", {70, 300000, 1, 0});
  EXPECT_EQ(b.Telemetry("GPU-a")->power_mw, 300000u);
  EXPECT_EQ(b.Telemetry("GPU-z").status().code(), StatusCode::kNotFound);
  b.SetMigDevices({{"MIG-1", "GPU-a", "1g.5gb", 7, 0}});
  ASSERT_EQ(b.MigDevices()->size(), 1u);
  EXPECT_EQ((*b.MigDevices())[0].gpu_instance_id, 7u);
}

}  // namespace
}  // namespace hami::gpu
