#include "sched/node_codec.h"

#include <gtest/gtest.h>

namespace hami::sched {
namespace {

GpuInfo Gpu(std::string uuid, int index, int numa = 0) {
  GpuInfo g;
  g.uuid = std::move(uuid);
  g.index = index;
  g.type = "NVIDIA-NVIDIA H100 80GB HBM3";
  g.memory_mib = 81559;
  g.cores = 100;
  g.split_count = 10;
  g.numa = numa;
  return g;
}

TEST(NodeCodec, JsonRoundTripAndKeyOrder) {
  std::vector<GpuInfo> gpus = {Gpu("GPU-a", 0), Gpu("GPU-b", 1, 1)};
  gpus[1].healthy = false;
  gpus[1].mode = VgpuMode::kMps;
  gpus[1].cores = 200;
  std::string enc = EncodeNodeRegister(gpus);
  EXPECT_EQ(enc.substr(0, 120),
            std::string(R"([{"id":"GPU-a","index":0,"count":10,"devmem":81559,"devcore":100,)"
                        R"("type":"NVIDIA-NVIDIA H100 80GB HBM3","numa":0,"mode":"hami-core",)")
                .substr(0, 120));
  auto dec = DecodeNodeRegister(enc);
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  EXPECT_EQ(*dec, gpus);
  EXPECT_EQ(*DecodeNodeRegister("[]"), std::vector<GpuInfo>{});
}

TEST(NodeCodec, JsonDefaultsAndUnknownKeys) {
  // As HAMi writes it (omitempty): GPU-y is unhealthy and has index 0, so both are omitted.
  auto dec = DecodeNodeRegister(
      R"( [{"id":"GPU-x","index":1,"count":4,"devmem":16384,"devcore":100,)"
      R"("type":"NVIDIA-Tesla T4","numa":1,"mode":"hami-core","health":true,)"
      R"("devicevendor":"NVIDIA","custominfo":{"a":1}},)"
      R"( {"id":"GPU-y","count":4,"devmem":1,"devcore":1,"type":"T","mode":""}])");
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  ASSERT_EQ(dec->size(), 2u);
  EXPECT_EQ((*dec)[0].index, 1);
  EXPECT_EQ((*dec)[0].numa, 1);
  EXPECT_TRUE((*dec)[0].healthy);
  EXPECT_EQ((*dec)[1].index, 0);
  EXPECT_EQ((*dec)[1].numa, 0);
  EXPECT_EQ((*dec)[1].mode, VgpuMode::kHamiCore);
  EXPECT_FALSE((*dec)[1].healthy);
}

TEST(NodeCodec, Utf8IsKept) {
  auto dec =
      DecodeNodeRegister("GPU-\xc3\xa9,10,1,100,NVIDIA-\xe2\x82\xac\xf0\x9f\x98\x80,0,true:");
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  EXPECT_EQ(*DecodeNodeRegister(EncodeNodeRegister(*dec)), *dec);
  GpuInfo bad = Gpu("GPU-\xff", 0);
  EXPECT_NE(EncodeNodeRegister({bad}).find("GPU-\xef\xbf\xbd"), std::string::npos);
}

TEST(NodeCodec, LegacyText) {
  auto dec = DecodeNodeRegister(
      "GPU-a,10,32768,100,NVIDIA-Tesla V100,0,true:GPU-b,5,16384,200,NVIDIA-Tesla T4,1,false,3,"
      "mig:");
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  ASSERT_EQ(dec->size(), 2u);
  const GpuInfo& a = (*dec)[0];
  EXPECT_EQ(a.uuid, "GPU-a");
  EXPECT_EQ(a.split_count, 10);
  EXPECT_EQ(a.memory_mib, 32768);
  EXPECT_EQ(a.cores, 100);
  EXPECT_EQ(a.type, "NVIDIA-Tesla V100");
  EXPECT_EQ(a.numa, 0);
  EXPECT_TRUE(a.healthy);
  EXPECT_EQ(a.index, 0);
  const GpuInfo& b = (*dec)[1];
  EXPECT_EQ(b.index, 3);
  EXPECT_EQ(b.mode, VgpuMode::kMig);
  EXPECT_FALSE(b.healthy);
  EXPECT_EQ(b.numa, 1);
  EXPECT_TRUE(DecodeNodeRegister("")->empty());
  EXPECT_EQ((*DecodeNodeRegister("GPU-a,1,1,100,T,0,true,2,:"))[0].mode, VgpuMode::kHamiCore);
  // The oldest form, without numa.
  auto oldest = DecodeNodeRegister("GPU-c,4,8192,100,NVIDIA-Tesla P4,false:");
  ASSERT_TRUE(oldest.ok()) << oldest.status().message();
  ASSERT_EQ(oldest->size(), 1u);
  EXPECT_EQ((*oldest)[0].numa, 0);
  EXPECT_FALSE((*oldest)[0].healthy);
  EXPECT_EQ((*oldest)[0].type, "NVIDIA-Tesla P4");
}

TEST(NodeCodec, StrictErrors) {
  struct Case {
    const char* text;
    const char* err;
  };
  const Case cases[] = {
      {"[", "malformed JSON"},
      {"[{}", "malformed JSON"},
      {"{}", "does not end with ':'"},  // not a list: read as legacy text
      {"[1]", "device 0: not a JSON object"},
      {R"([{"count":1,"devmem":1,"devcore":1,"type":"T","health":true}])", "missing \"id\""},
      {R"([{"id":"G","count":1,"devmem":1,"devcore":1,"health":true}])", "(G): missing \"type\""},
      {R"([{"id":"G","devmem":1,"devcore":1,"type":"T","health":true}])", "(G): missing \"count\""},
      {R"([{"id":"G","count":"1","devmem":1,"devcore":1,"type":"T","health":true}])",
       "\"count\" is not an integer"},
      {R"([{"id":"G","count":1,"devmem":1,"devcore":1,"type":"T","health":"true"}])",
       "\"health\" is not a boolean"},
      {R"([{"id":"G","count":1,"devmem":1,"devcore":1,"type":"T","health":true,"mode":"x"}])",
       "unknown vgpu-mode 'x'"},
      {R"([{"id":"G","count":0,"devmem":1,"devcore":1,"type":"T","health":true}])",
       "count must be > 0"},
      {R"([{"id":"G","count":1,"devmem":0,"devcore":1,"type":"T","health":true}])",
       "devmem must be > 0"},
      {R"([{"id":"G","count":1,"devmem":1,"devcore":1,"type":"T","health":true},)"
       R"({"id":"G","count":1,"devmem":1,"devcore":1,"type":"T","health":true}])",
       "duplicate device id 'G'"},
      {"GPU-a,10,32768,100,T,0,true", "does not end with ':'"},
      {"GPU-a,10,32768,100,T:", "has 5 fields"},
      {"GPU-a,10,32768,100,T,0:", "health '0'"},
      {"GPU-a,10,32768,100,T,0,true,1:", "has 8 fields"},
      {"GPU-a,x,32768,100,T,0,true:", "count 'x'"},
      {"GPU-a,10,32768,100,T,0,yes:", "health 'yes'"},
      {"GPU-a,10,32768,100,T,0,true,1,vgpu:", "unknown vgpu-mode"},
      {"GPU-a,10,0,100,T,0,true:", "devmem must be > 0"},
      {",10,1,100,T,0,true:", "empty id"},
      {"GPU-\xff,10,1,100,T,0,true:", "id is not UTF-8"},
      {"GPU-a,10,1,100,NVIDIA-Te\xf3la,0,true:", "type is not UTF-8"},
      {"GPU-a,10,1,100,T\xc0\xaf,0,true:", "type is not UTF-8"},      // overlong
      {"GPU-a,10,1,100,T\xed\xa0\x80,0,true:", "type is not UTF-8"},  // surrogate
  };
  for (const Case& c : cases) {
    auto r = DecodeNodeRegister(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.err), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace hami::sched
