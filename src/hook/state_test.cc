// The pure half of state.cc (device_map.h): which limit each visible device gets, how
// CUDA_VISIBLE_DEVICES is split, and UUID text; plus that LoadConfig reads
// CUDA_VISIBLE_DEVICES once, so the NVML path never calls getenv per query.
#include <gtest/gtest.h>
#include <string.h>

#include <map>
#include <string>

#include "config.h"
#include "device_map.h"

namespace hami::vgpu {
namespace {

Config Base() {
  Config c;
  memset(&c, 0, sizeof(c));
  return c;
}

TEST(StateTest, WithoutUuidsLimitsFollowTheVisibleOrdinal) {
  Config c = Base();
  c.mem_limit[0] = 1ull << 30;
  c.mem_limit[1] = 2ull << 30;
  c.sm_limit[1] = 40;
  DeviceLimit l = LimitForDevice(c, 1, "GPU-anything");
  EXPECT_TRUE(l.allocated);
  EXPECT_EQ(l.limit, 2ull << 30);
  EXPECT_EQ(l.sm_limit, 40u);
  uint64_t lim = 7;
  EXPECT_FALSE(LimitForConfiguredUuid(c, "GPU-anything", &lim));
  EXPECT_EQ(lim, 7u);
}

TEST(StateTest, WithUuidsLimitsFollowTheUuidAndStrangersGetNothing) {
  Config c = Base();
  c.have_uuids = true;
  strcpy(c.uuid[0], "GPU-aaaa");
  strcpy(c.uuid[1], "GPU-bbbb");
  c.mem_limit[0] = 1ull << 30;
  c.mem_limit[1] = 3ull << 30;
  c.sm_limit[1] = 25;
  // CUDA may enumerate the container's devices in another order than the file lists them.
  DeviceLimit l = LimitForDevice(c, 0, "GPU-bbbb");
  EXPECT_TRUE(l.allocated);
  EXPECT_EQ(l.limit, 3ull << 30);
  EXPECT_EQ(l.sm_limit, 25u);
  DeviceLimit s = LimitForDevice(c, 1, "GPU-cccc");
  EXPECT_FALSE(s.allocated);
  EXPECT_EQ(s.limit, 1u) << "a device outside the allocation must get no memory";
  uint64_t lim = 0;
  ASSERT_TRUE(LimitForConfiguredUuid(c, "GPU-aaaa", &lim));
  EXPECT_EQ(lim, 1ull << 30);
  EXPECT_FALSE(LimitForConfiguredUuid(c, "GPU-aaa", &lim)) << "no prefix match";
}

TEST(StateTest, VisibleDevicesSplitLikeTheDriver) {
  VisibleToken t[kMaxDevices];
  ASSERT_EQ(ParseVisibleDevices("2, 0,GPU-ab12", t), 3);
  EXPECT_FALSE(t[0].is_uuid);
  EXPECT_EQ(t[0].index, 2);
  EXPECT_EQ(t[1].index, 0);
  EXPECT_TRUE(t[2].is_uuid);
  EXPECT_STREQ(t[2].uuid, "GPU-ab12");
  EXPECT_EQ(ParseVisibleDevices("1,x,2", t), 1) << "the list ends at the first bad entry";
  EXPECT_EQ(ParseVisibleDevices("-1", t), 0);
  EXPECT_EQ(ParseVisibleDevices("", t), 0);
  EXPECT_EQ(ParseVisibleDevices(nullptr, t), 0);
  EXPECT_EQ(ParseVisibleDevices("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", t), kMaxDevices);
}

TEST(StateTest, UuidTextIsTheDriversForm) {
  CUuuid u;
  for (int i = 0; i < 16; ++i) u.bytes[i] = static_cast<char>(i * 17);
  char out[96];
  FormatUuid(u, out, sizeof(out));
  EXPECT_STREQ(out, "GPU-00112233-4455-6677-8899-aabbccddeeff");
}

std::map<std::string, std::string>* g_env = nullptr;

TEST(StateTest, ConfigReadsVisibleDevicesOnce) {
  std::map<std::string, std::string> env = {{"CUDA_VISIBLE_DEVICES", "GPU-ab12,3"}};
  g_env = &env;
  ConfigSource src{[](const char* n) -> const char* {
                     auto it = g_env->find(n);
                     return it == g_env->end() ? nullptr : it->second.c_str();
                   },
                   nullptr, nullptr};
  Config c;
  char err[256] = {};
  ASSERT_TRUE(LoadConfig(src, &c, err, sizeof(err))) << err;
  EXPECT_TRUE(c.visible_devices_set);
  EXPECT_STREQ(c.visible_devices, "GPU-ab12,3");
  env.clear();
  ASSERT_TRUE(LoadConfig(src, &c, err, sizeof(err))) << err;
  EXPECT_FALSE(c.visible_devices_set);
  env["CUDA_VISIBLE_DEVICES"] = std::string(3000, '1');
  EXPECT_FALSE(LoadConfig(src, &c, err, sizeof(err)));
  EXPECT_NE(strstr(err, "CUDA_VISIBLE_DEVICES"), nullptr) << err;
  g_env = nullptr;
}

}  // namespace
}  // namespace hami::vgpu
