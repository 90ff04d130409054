#include "deviceplugin/devices.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hami::deviceplugin {
namespace {

TEST(DevicePluginDevices, ParsesSpecExampleAndEncodesItBack) {
  const std::string v = ";GPU-aaa,NVIDIA,3000,30:GPU-bbb,NVIDIA,3000,30:;GPU-aaa,NVIDIA,5000,0:;";
  auto segs = ParsePodDevices(v);
  ASSERT_TRUE(segs.ok()) << segs.status().ToString();
  ASSERT_EQ(segs->size(), 3u);
  EXPECT_TRUE((*segs)[0].empty());
  ASSERT_EQ((*segs)[1].size(), 2u);
  EXPECT_EQ((*segs)[1][1].uuid, "GPU-bbb");
  EXPECT_EQ((*segs)[1][1].used_mem_mib, 3000);
  EXPECT_EQ((*segs)[1][1].used_cores, 30);
  EXPECT_EQ((*segs)[2][0].used_mem_mib, 5000);
  auto encoded = sched::EncodeContainerDevices(*segs);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(*encoded, v);
  auto empty = ParsePodDevices(";;;");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 3u);
}

TEST(DevicePluginDevices, RejectsMalformedDevices) {
  for (const char* bad : {"GPU-a,NVIDIA,3000:;", "GPU-a,NVIDIA,lots,30:;", "GPU-a,NVIDIA,1,130:;",
                          ",NVIDIA,1,1:;", "GPU-a,NVIDIA,-5,1:;"}) {
    auto r = ParsePodDevices(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("container 0 device 0"), std::string::npos)
        << r.status().message();
  }
}

TEST(DevicePluginDevices, VirtualIdsAreHamisAndTheOldFormIsStillRead) {
  // HAMi: fmt.Sprintf("%v::%v", uuid, i).
  EXPECT_EQ(VirtualId("GPU-1234-abcd", 7), "GPU-1234-abcd::7");
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd::7"), "GPU-1234-abcd");
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd::12"), "GPU-1234-abcd");
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd-7"), "GPU-1234-abcd");  // this project's old form
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd::"), "");
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd::x"), "");
  EXPECT_EQ(VirtualIdToUuid("GPU-1234-abcd"), "");
  EXPECT_EQ(VirtualIdToUuid("::3"), "");
  EXPECT_EQ(VirtualIdToUuid("nodash"), "");
}

TEST(DevicePluginDevices, GpuTypeAsHamiWritesIt) {
  // HAMi v2.8+ (register.go): the NVML name unless it lacks the "NVIDIA" prefix.
  EXPECT_EQ(DeviceType("NVIDIA H100 80GB HBM3"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(DeviceType("Tesla V100-SXM2-16GB"), "NVIDIA-Tesla V100-SXM2-16GB");
  EXPECT_EQ(LegacyDeviceType("NVIDIA H100 80GB HBM3"), "NVIDIA-NVIDIA H100 80GB HBM3");
}

TEST(DevicePluginDevices, TextRegisterFormatForOldHamiSchedulers) {
  NodeConfig cfg;
  cfg.nvidia.device_split_count = 10;
  std::vector<NodeGpu> gpus = {
      {{"GPU-a", 0, "NVIDIA H100 80GB HBM3", 80ull << 30, 1, false}, true},
      {{"GPU-b", 1, "NVIDIA H100 80GB HBM3", 80ull << 30, -1, false}, false},
  };
  // HAMi <= v2.7 EncodeNodeDevices: id,count,devmem,devcore,type,numa,health,index,mode:
  EXPECT_EQ(EncodeRegisterAnnotation(gpus, cfg, "text"),
            "GPU-a,10,81920,100,NVIDIA-NVIDIA H100 80GB HBM3,1,true,0,hami-core:"
            "GPU-b,10,81920,100,NVIDIA-NVIDIA H100 80GB HBM3,0,false,1,hami-core:");
  // Our scheduler reads the text form too (sched's decoder accepts HAMi's older encoding).
  auto back = sched::DecodeNodeRegister(EncodeRegisterAnnotation(gpus, cfg, "text"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].uuid, "GPU-b");
  EXPECT_EQ((*back)[1].index, 1);
  EXPECT_FALSE((*back)[1].healthy);
}

TEST(DevicePluginDevices, RegisterAnnotationFollowsSpec) {
  NodeConfig cfg;
  cfg.nvidia.device_split_count = 4;
  cfg.nvidia.device_memory_scaling = 1.5;
  cfg.nvidia.device_core_scaling = 2;
  std::vector<NodeGpu> gpus = {
      {{"GPU-a", 0, "Tesla V100-SXM2-16GB", 16ull << 30, 1, false}, true},
      {{"GPU-b", 1, "NVIDIA H100 80GB HBM3", 80ull << 30, -1, false}, false},
  };
  auto j = nlohmann::json::parse(EncodeRegisterAnnotation(gpus, cfg));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["id"], "GPU-a");
  EXPECT_EQ(j[0]["index"], 0);
  EXPECT_EQ(j[0]["count"], 4);
  EXPECT_EQ(j[0]["devmem"], 16384 * 3 / 2);
  EXPECT_EQ(j[0]["devcore"], 200);
  EXPECT_EQ(j[0]["type"], "NVIDIA-Tesla V100-SXM2-16GB");
  EXPECT_EQ(j[0]["numa"], 1);
  EXPECT_EQ(j[0]["mode"], "hami-core");
  EXPECT_EQ(j[0]["health"], true);
  EXPECT_EQ(j[1]["type"], "NVIDIA H100 80GB HBM3");  // HAMi v2.8+ form
  EXPECT_EQ(j[1]["numa"], 0);
  EXPECT_EQ(j[1]["health"], false);
  // The scheduler reads back what the plugin registers.
  cfg.operating_mode = "mig";
  auto back = sched::DecodeNodeRegister(EncodeRegisterAnnotation(gpus, cfg));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].uuid, "GPU-a");
  EXPECT_EQ((*back)[0].memory_mib, 16384 * 3 / 2);
  EXPECT_EQ((*back)[0].cores, 200);
  EXPECT_EQ((*back)[0].split_count, 4);
  EXPECT_EQ((*back)[0].numa, 1);
  EXPECT_EQ((*back)[0].mode, sched::VgpuMode::kMig);
  EXPECT_TRUE((*back)[0].healthy);
  EXPECT_EQ((*back)[1].index, 1);
  EXPECT_FALSE((*back)[1].healthy);
}

TEST(DevicePluginDevices, FilterDevicesDropsByUuidAndIndex) {
  NodeConfig cfg;
  cfg.filter_uuids = {"GPU-b"};
  cfg.filter_indexes = {2};
  std::vector<gpu::GpuInfo> gpus = {{"GPU-a", 0, "x", 1, 0, false},
                               {"GPU-b", 1, "x", 1, 0, false},
                               {"GPU-c", 2, "x", 1, 0, false}};
  auto out = FilterGpus(gpus, cfg);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].info.uuid, "GPU-a");
}

}  // namespace
}  // namespace hami::deviceplugin
