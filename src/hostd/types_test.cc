#include "hostd/types.h"

#include <gtest/gtest.h>

#include <random>

#include "abi/units.h"

namespace hami::hostd {
namespace {

using nlohmann::json;

TEST(TypesTest, ParseMemoryAcceptsUnits) {
  struct Case {
    const char* text;
    int64_t mib;
    int32_t pct;
  } cases[] = {{"2g", 2048, 0},      {"2G", 2048, 0},   {"2Gi", 2048, 0},   {"2GiB", 2048, 0},
               {"1536m", 1536, 0},   {"1536", 1536, 0}, {"1t", 1 << 20, 0}, {"2097152k", 2048, 0},
               {"512MiB", 512, 0},   {"50%", 0, 50},    {"100%", 0, 100},   {"2gib", 2048, 0},
               {"2GB", 2048, 0},     {"3mb", 3, 0}};
  for (const auto& c : cases) {
    int64_t mib = -1;
    int32_t pct = -1;
    Status s = ParseMemory(c.text, &mib, &pct);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.ToString();
    EXPECT_EQ(mib, c.mib) << c.text;
    EXPECT_EQ(pct, c.pct) << c.text;
  }
}

TEST(TypesTest, ParseMemoryRejectsGarbageWithMessage) {
  for (const char* bad :
       {"", "g", "2x", "-1g", "1.5g", "0", "0%", "101%", "1000k", "2gg", "99999999999999999999",
        " 512MiB ", "2 g", "0x10g", "+2g", "%", "5.5%", "2gbi"}) {
    int64_t mib = 0;
    int32_t pct = 0;
    Status s = ParseMemory(bad, &mib, &pct);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("bad memory size"), std::string::npos) << s.message();
  }
}

// `hami run --gpumem X` and libvgpu.so's CUDA_DEVICE_MEMORY_LIMIT=X agree on every size: the
// same grammar (src/abi/units.h), a bare number being MiB here.
TEST(TypesTest, ParseMemoryMeansWhatLibvgpuReads) {
  for (const char* t : {"2gib", "2GiB", "2GB", "2g", "4Gi", "1536m", "1536MB", "1t", "2097152k",
                        "2gi b", "2 g", "1.5g", "2x", "-2g"}) {
    int64_t mib = 0;
    int32_t pct = 0;
    Status s = ParseMemory(t, &mib, &pct);
    uint64_t bytes = 0;
    abi::SizeError e = abi::ParseMemSize(t, abi::kMiB, &bytes);
    EXPECT_EQ(s.ok(), e == abi::SizeError::kOk) << t;
    if (s.ok()) {
      EXPECT_EQ(static_cast<uint64_t>(mib) * abi::kMiB, bytes) << t;
    }
  }
}

TEST(TypesTest, SliceRequestJsonRoundTrip) {
  SliceRequest r;
  r.gpus = 2;
  r.memory_mib = 3000;
  r.cores = 30;
  r.priority = 0;
  r.gpu_types = {"A100"};
  r.command = {"python", "-c", "print(1)"};
  r.owner = {1234, 5678};
  r.wait = false;
  auto back = SliceRequestFromJson(ToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->gpus, 2);
  EXPECT_EQ(back->memory_mib, 3000);
  EXPECT_EQ(back->gpu_types, r.gpu_types);
  EXPECT_EQ(back->command, r.command);
  EXPECT_EQ(back->owner, r.owner);
  EXPECT_FALSE(back->wait);
}

TEST(TypesTest, SliceRequestJsonIsStrict) {
  struct Case {
    const char* json;
    const char* expect;  // substring of the message
  } cases[] = {
      {R"([1,2])", "must be a JSON object"},
      {R"({"gpu":1})", "unknown field \"gpu\""},
      {R"({"gpus":"1"})", "\"gpus\" must be an integer"},
      {R"({"gpus":0})", "\"gpus\" is 0"},
      {R"({"gpus":17})", "must be in 1..16"},
      {R"({"cores":101})", "\"cores\" is 101"},
      {R"({"memory_mib":-5})", "\"memory_mib\" is -5"},
      {R"({"memory":"2x"})", "bad memory size \"2x\""},
      {R"({"memory":"2g","memory_mib":5})", "either"},
      {R"({"memory_mib":5,"memory_percent":5})", "not both"},
      {R"({"priority":7})", "\"priority\" is 7"},
      {R"({"command":"ls"})", "array of strings"},
      {R"({"gpu_uuids":[""]})", "empty entry"},
      {R"({"gpu_types":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})",
       "at most 16"},
      {R"({"uid":-1})", "\"uid\" is -1"},
      {R"({"owner":{"pid":4294967297}})", "\"pid\" is 4294967297"},
      {R"({"owner":{"pid":"x"}})", "\"pid\" must be an integer"},
      {R"({"owner":{"pid":1,"uid":0}})", "unknown field \"uid\""},
      {R"({"wait":"yes"})", "\"wait\" must be true or false"},
  };
  for (const auto& c : cases) {
    auto r = SliceRequestFromJson(json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.json << " -> " << r.status().message();
  }
}

TEST(TypesTest, MemoryStringInRequest) {
  auto r = SliceRequestFromJson(json::parse(R"({"memory":"4g","cores":20})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->memory_mib, 4096);
  EXPECT_EQ(r->gpus, 1);
  EXPECT_TRUE(r->wait);
}

TEST(TypesTest, SliceJsonRoundTrip) {
  Slice s;
  s.id = 7;
  s.request.memory_mib = 100;
  s.devices = {{"GPU-a", 1, "NVIDIA-T4", 100, 10}};
  s.job = {42, 99};
  s.ticket = 3;
  s.created_unix = 1700000000;
  s.dir = "/x/s7";
  s.limits_file = "/x/s7/vgpu.limits";
  s.cache_file = "/x/s7/vgpu.cache";
  auto back = SliceFromJson(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, 7);
  EXPECT_EQ(back->Name(), "s7");
  ASSERT_EQ(back->devices.size(), 1u);
  EXPECT_EQ(back->devices[0].uuid, "GPU-a");
  EXPECT_EQ(back->devices[0].cores, 10);
  EXPECT_EQ(back->job, s.job);
  EXPECT_EQ(back->ticket, 3);
  EXPECT_EQ(back->cache_file, s.cache_file);
}

// The API's request decoder takes untrusted input: random mutations of valid requests must be
// either accepted with in-range values or refused with kInvalidArgument, never crash.
TEST(TypesTest, RandomizedRequestsNeverCrashAndStayInRange) {
  std::mt19937 rng(12345);
  const std::vector<std::string> seeds = {
      R"({"gpus":1,"memory":"2g","cores":30,"priority":1,"gpu_types":["H100"],"command":["a"]})",
      R"({"memory_mib":1500,"wait":false,"owner":{"pid":12,"start_ticks":34},"request_id":"x"})",
      R"({"memory_percent":50,"gpu_uuids":["GPU-1"],"cores":100})"};
  const std::string alphabet = "{}[]\":,0123456789-.eE truefalsnul\\gmk%";
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string text = seeds[i % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t pos = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          text.erase(pos, 1);
      }
    }
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) continue;
    auto r = SliceRequestFromJson(j);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    ++accepted;
    EXPECT_GE(r->gpus, 1) << text;
    EXPECT_LE(r->gpus, 16) << text;
    EXPECT_GE(r->memory_mib, 0) << text;
    EXPECT_GE(r->cores, 0) << text;
    EXPECT_LE(r->cores, 100) << text;
    EXPECT_LE(r->memory_percent, 100) << text;
    EXPECT_FALSE(r->memory_mib > 0 && r->memory_percent > 0) << text;
  }
  EXPECT_GT(accepted, 100);  // the mutations also produce valid requests
}

}  // namespace
}  // namespace hami::hostd
