// Mutation tests of the two annotation parsers (untrusted input): random byte edits of valid
// annotations never crash, and whatever decodes encodes back to something that decodes to the
// same value. Runs under the sanitizer presets like every test.
#include <gtest/gtest.h>

#include <random>

#include "sched/annotation.h"
#include "sched/node_codec.h"

namespace hami::sched {
namespace {

std::string Mutate(std::string s, std::mt19937& rng) {
  static const char kAlphabet[] = ",:;[]{}\"0123456789-+ eGPUtruefalsnmigx\\\0";
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    char c = kAlphabet[rng() % (sizeof kAlphabet - 1)];
    switch (rng() % 3) {
      case 0:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), c);
        break;
      case 1:
        if (pos < s.size()) s.erase(pos, 1 + rng() % 3);
        break;
      default:
        if (pos < s.size()) s[pos] = c;
        break;
    }
  }
  return s;
}

TEST(CodecFuzz, DevicesAnnotation) {
  const std::string seeds[] = {
      ";GPU-aaa,NVIDIA,3000,30:GPU-bbb,NVIDIA,3000,30:;GPU-aaa,NVIDIA,5000,0:;",
      "GPU-1,NVIDIA-NVIDIA H100 80GB HBM3,81920,100:;;",
      "",
  };
  std::mt19937 rng(42);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = Mutate(seeds[i % 3], rng);
    auto d = DecodeContainerDevices(text);
    if (!d.ok()) {
      EXPECT_FALSE(d.status().message().empty());
      continue;
    }
    ++decoded;
    auto enc = EncodeContainerDevices(*d);
    ASSERT_TRUE(enc.ok()) << text << ": " << enc.status().message();
    auto again = DecodeContainerDevices(*enc);
    ASSERT_TRUE(again.ok()) << *enc;
    EXPECT_EQ(*again, *d) << text;
  }
  EXPECT_GT(decoded, 100);
}

TEST(CodecFuzz, NodeRegister) {
  const std::string seeds[] = {
      R"([{"id":"GPU-a","index":0,"count":10,"devmem":81559,"devcore":100,"type":"NVIDIA-H100",)"
      R"("numa":0,"mode":"hami-core","health":true}])",
      "GPU-a,10,32768,100,NVIDIA-Tesla V100,0,true:GPU-b,5,16384,200,T4,1,false,3,mig:",
  };
  std::mt19937 rng(7);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = Mutate(seeds[i % 2], rng);
    auto d = DecodeNodeRegister(text);
    if (!d.ok()) {
      EXPECT_FALSE(d.status().message().empty());
      continue;
    }
    ++decoded;
    auto again = DecodeNodeRegister(EncodeNodeRegister(*d));
    ASSERT_TRUE(again.ok()) << text << ": " << again.status().message();
    EXPECT_EQ(*again, *d) << text;
  }
  EXPECT_GT(decoded, 100);
}

}  // namespace
}  // namespace hami::sched
