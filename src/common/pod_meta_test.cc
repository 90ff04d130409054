#include "common/pod_meta.h"

#include <gtest/gtest.h>

namespace hami::common {
namespace {

TEST(PodMetaTest, RoundTrips) {
  PodMeta m{"team-a", "llm-0", "uid-1", "main", 1700000000, {{"GPU-a", "NVIDIA A100", 3000, 30}}};
  auto back = ParsePodMeta(EncodePodMeta(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ns, "team-a");
  EXPECT_EQ(back->pod_uid, "uid-1");
  EXPECT_EQ(back->allocated_unix, 1700000000);
  ASSERT_EQ(back->devices.size(), 1u);
  EXPECT_EQ(back->devices[0].memory_mib, 3000);
  EXPECT_EQ(back->devices[0].type, "NVIDIA A100");
}

TEST(PodMetaTest, WrongShapesAreNamedErrors) {
  for (const char* bad : {"", "[]", "{}", "{\"namespace\": 3}",
                          R"({"namespace":"a","pod":"b","podUID":"c","container":"d","devices":3})",
                          R"({"namespace":"a","pod":"b","podUID":"c","container":"d",
                              "devices":[{"uuid":1}]})",
                          R"({"namespace":"a","pod":"b","podUID":"c","container":"d",
                              "devices":[{"uuid":"x","memoryMiB":"big"}]})"}) {
    auto r = ParsePodMeta(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("pod.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace hami::common
