#include "fakegpu/config.h"

#include <gtest/gtest.h>

namespace hami::fakegpu {
namespace {

TEST(FakeGpuConfig, ParseSize) {
  EXPECT_EQ(*ParseSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseSize("300m"), 300ull << 20);
  EXPECT_EQ(*ParseSize("80g"), 80ull << 30);
  EXPECT_EQ(*ParseSize("4Gi"), 4ull << 30);
  EXPECT_EQ(*ParseSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseSize("2K"), 2048u);
  for (const char* bad : {"", "g", "12q", "1gg", "-1", "99999999999999999999", "20000000000t"})
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
}

TEST(FakeGpuConfig, ParseUuid) {
  unsigned char b[16];
  ASSERT_TRUE(ParseUuid("GPU-11111111-2222-3333-4444-5555555555AB", b));
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[15], 0xAB);
  EXPECT_FALSE(ParseUuid("GPU-11111111-2222-3333-4444-5555555555", b));
  EXPECT_FALSE(ParseUuid("MIG-11111111-2222-3333-4444-555555555555", b));
  EXPECT_FALSE(ParseUuid("GPU-1111111x-2222-3333-4444-555555555555", b));
  EXPECT_FALSE(ParseUuid("GPU-111111112-222-3333-4444-555555555555", b));
}

TEST(FakeGpuConfig, DefaultIsTwo16GiBCards) {
  Config c = DefaultConfig();
  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_EQ(c.devices[0].mem_bytes, 16ull << 30);
  EXPECT_NE(c.devices[0].uuid, c.devices[1].uuid);
  EXPECT_EQ(c.devices[1].pci_bus, 0x86u);
}

TEST(FakeGpuConfig, ParseLines) {
  auto c = ParseConfig(
      "# comment\n"
      "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 mem=80g "
      "sms=132 bus=0000:3b:00.0 numa=1 ctxmem=300m reserved=0 mig=disabled cc=9.0\r\n"
      "\n"
      "   mem=8g bus=86:00.0\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->devices.size(), 2u);
  const DeviceConfig& d = c->devices[0];
  EXPECT_EQ(d.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(d.mem_bytes, 80ull << 30);
  EXPECT_EQ(d.sms, 132);
  EXPECT_EQ(d.pci_bus, 0x3bu);
  EXPECT_EQ(d.numa, 1);
  EXPECT_EQ(d.reserved, 0u);
  EXPECT_TRUE(d.mig_supported);
  EXPECT_EQ(d.cc_major, 9);
  EXPECT_EQ(c->devices[1].mem_bytes, 8ull << 30);
  EXPECT_EQ(c->devices[1].pci_bus, 0x86u);
  EXPECT_EQ(c->devices[1].uuid, "GPU-fa4e0000-0000-4000-8000-000000000001");
  EXPECT_EQ(c->devices[1].name, "Tesla V100-SXM2-16GB");
  auto upper = ParseConfig("uuid=GPU-ABCDEF00-2222-3333-4444-55555555555F\n");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->devices[0].uuid, "GPU-abcdef00-2222-3333-4444-55555555555f");
}

TEST(FakeGpuConfig, ErrorsNameLineAndProblem) {
  struct Case {
    const char* text;
    const char* message_part;
  };
  const Case cases[] = {
      {"mem=8g\nmem=lots\n", "line 2"},
      {"colour=red\n", "unknown key 'colour'"},
      {"uuid=GPU-nope\n", "bad uuid"},
      {"bus=zz:00.0\n", "bad PCI bus id"},
      {"hello\n", "expected key=value"},
      {"uuid=GPU-11111111-2222-3333-4444-555555555555\n"
       "uuid=GPU-11111111-2222-3333-4444-555555555555\n",
       "duplicate uuid"},
      {"mem=0\n", "mem must be > 0"},
  };
  for (const Case& c : cases) {
    auto r = ParseConfig(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos) << r.status().message();
  }
  std::string many;
  for (int i = 0; i < 17; ++i) many += "mem=1g\n";
  EXPECT_FALSE(ParseConfig(many).ok());
}

TEST(FakeGpuConfig, VisibleDevices) {
  auto c = ParseConfig(
      "uuid=GPU-aaaaaaaa-0000-0000-0000-000000000000\n"
      "uuid=GPU-bbbbbbbb-0000-0000-0000-000000000000\n"
      "uuid=GPU-bbbbcccc-0000-0000-0000-000000000000\n");
  ASSERT_TRUE(c.ok());
  using V = std::vector<int>;
  EXPECT_EQ(ParseVisibleDevices("2,0", *c), (V{2, 0}));
  EXPECT_EQ(ParseVisibleDevices("GPU-bbbbc", *c), (V{2}));
  EXPECT_EQ(ParseVisibleDevices("0,GPU-bbbb", *c), (V{0}));
  EXPECT_EQ(ParseVisibleDevices("0,3,1", *c), (V{0}));
  EXPECT_EQ(ParseVisibleDevices("0,0", *c), (V{0}));
  EXPECT_EQ(ParseVisibleDevices("", *c), (V{}));
  EXPECT_EQ(ParseVisibleDevices("MIG-x,0", *c), (V{}));
  EXPECT_EQ(ParseVisibleDevices("1x", *c), (V{}));
  EXPECT_EQ(ParseVisibleDevices(" 1 , 2 ", *c), (V{1, 2}));
  EXPECT_EQ(ParseVisibleDevices("99999999999", *c), (V{}));
}

}  // namespace
}  // namespace hami::fakegpu

namespace hami::fakegpu {
namespace {

// Parsers of environment and file input never crash and never accept garbage silently.
TEST(FakeGpuConfig, RandomInputNeverCrashes) {
  const char kAlphabet[] = "GPU-abf019 =,.:#\nmemuidsbcxgK";
  uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<unsigned>(seed >> 33);
  };
  Config cfg = DefaultConfig();
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    for (unsigned n = next() % 60; n > 0; --n) s += kAlphabet[next() % (sizeof kAlphabet - 1)];
    auto c = ParseConfig(s);
    if (c.ok()) {
      EXPECT_LE(c->devices.size(), 16u);
    }
    for (int d : ParseVisibleDevices(s, cfg)) EXPECT_TRUE(d == 0 || d == 1) << s;
    (void)ParseSize(s);
  }
}

}  // namespace
}  // namespace hami::fakegpu
