#include "sched/annotation.h"

#include <gtest/gtest.h>

namespace hami::sched {
namespace {

TEST(Annotation, SpecExampleRoundTrip) {
  const std::string text =
      ";GPU-aaa,NVIDIA,3000,30:GPU-bbb,NVIDIA,3000,30:;GPU-aaa,NVIDIA,5000,0:;";
  auto p = DecodePlacement(text, 1);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->containers.size(), 3u);
  EXPECT_EQ(p->num_init, 1);
  EXPECT_TRUE(p->containers[0].empty());
  ASSERT_EQ(p->containers[1].size(), 2u);
  EXPECT_EQ(p->containers[1][1], (DeviceAlloc{"GPU-bbb", "NVIDIA", 3000, 30}));
  EXPECT_EQ(p->containers[2][0], (DeviceAlloc{"GPU-aaa", "NVIDIA", 5000, 0}));
  EXPECT_EQ(*EncodePlacement(*p), text);
}

TEST(Annotation, RoundTrips) {
  const std::vector<std::vector<ContainerDevices>> cases = {
      {},
      {{}},
      {{}, {}},
      {{{"GPU-1", "NVIDIA-NVIDIA H100 80GB HBM3", 81920, 100}}},
      {{{"GPU-1", "NVIDIA-Tesla T4", 0, 0}, {"GPU-2", "x y", 1, 1}}, {}, {{"a", "b", 7, 9}}},
  };
  for (const auto& c : cases) {
    auto enc = EncodeContainerDevices(c);
    ASSERT_TRUE(enc.ok());
    auto dec = DecodeContainerDevices(*enc);
    ASSERT_TRUE(dec.ok()) << *enc << ": " << dec.status().message();
    EXPECT_EQ(*dec, c) << *enc;
  }
  EXPECT_EQ(*EncodeContainerDevices({{}, {}}), ";;");
  EXPECT_EQ(*EncodeContainerDevices({}), "");
}

TEST(Annotation, EncodeRejectsWhatCannotBeDecoded) {
  const std::vector<DeviceAlloc> bad = {
      {"", "NVIDIA", 1, 1},       {"GPU,1", "NVIDIA", 1, 1}, {"GPU-1", "NV:IDIA", 1, 1},
      {"GPU-1", "NV;", 1, 1},     {"GPU-1", "", 1, 1},       {"GPU-1", "NVIDIA", -1, 1},
      {"GPU-1", "NVIDIA", 1, -1},
  };
  for (const DeviceAlloc& d : bad) {
    auto r = EncodeContainerDevices({{}, {d}});
    ASSERT_FALSE(r.ok()) << d.uuid << " " << d.type;
    EXPECT_NE(r.status().message().find("container 1 device 0"), std::string::npos);
  }
}

TEST(Annotation, StrictDecodeErrorsNameThePart) {
  struct Case {
    const char* text;
    const char* err;
  };
  const Case cases[] = {
      {"GPU-1,NVIDIA,1,1:", "container 0: segment 'GPU-1,NVIDIA,1,1:' does not end with ';'"},
      {";GPU-1,NVIDIA,1,1;", "container 1 device 0: 'GPU-1,NVIDIA,1,1' does not end with ':'"},
      {"GPU-1,NVIDIA,1:;", "container 0 device 0: 'GPU-1,NVIDIA,1' has 3 fields"},
      {"GPU-1,NVIDIA,1,x,extra:;", "cores 'x'"},  // extras never hide a bad field
      {",NVIDIA,1,1:;", "empty UUID"},
      {"GPU-1,,1,1:;", "empty type"},
      {"GPU-1,NVIDIA,abc,1:;", "memory 'abc' is not a MiB count"},
      {"GPU-1,NVIDIA,-1,1:;", "memory '-1'"},
      {"GPU-1,NVIDIA,+1,1:;", "memory '+1'"},
      {"GPU-1,NVIDIA, 1,1:;", "memory ' 1'"},
      {"GPU-1,NVIDIA,99999999999999999999,1:;", "memory '99999999999999999999'"},
      {"GPU-1,NVIDIA,1,x:;", "cores 'x' is not a percentage"},
      {"GPU-1,NVIDIA,1,10001:;", "cores '10001'"},
      {"GPU-1,NVIDIA,1,:;", "cores ''"},
      {"GPU-1,NVIDIA,1,1:GPU-2,NVIDIA,1,1:;GPU-3,T,1,1:x:;", "container 1 device 1: 'x'"},
  };
  for (const Case& c : cases) {
    auto r = DecodeContainerDevices(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.err), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
  auto few = DecodePlacement(";", 2);
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.status().message().find("1 container segments"), std::string::npos);
  EXPECT_FALSE(DecodePlacement(";", -1).ok());
}

}  // namespace
}  // namespace hami::sched
