#include "common/time_format.h"

#include <gtest/gtest.h>

namespace hami::common {
namespace {

using std::chrono::seconds;

int64_t Unix(const StatusOr<SystemTime>& t) {
  return std::chrono::duration_cast<seconds>(t->time_since_epoch()).count();
}

TEST(TimeFormatTest, FormatsUtcWithZ) {
  EXPECT_EQ(FormatRfc3339(SystemTime(seconds(0))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(SystemTime(seconds(1767225600))), "2026-01-01T00:00:00Z");
}

TEST(TimeFormatTest, ParsesWhatItFormats) {
  const SystemTime t(seconds(1780000000));
  auto back = ParseRfc3339(FormatRfc3339(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, t);
}

TEST(TimeFormatTest, ParsesGoOffsetsAndFractions) {
  // Go's time.Now().Format(time.RFC3339) in a +08:00 zone, as HAMi writes its node lock.
  auto a = ParseRfc3339("2026-01-01T08:00:00+08:00");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Unix(a), 1767225600);
  auto b = ParseRfc3339("2025-12-31T19:30:00-04:30");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Unix(b), 1767225600);
  auto c = ParseRfc3339("2026-01-01T00:00:00.123456789Z");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::nanoseconds>(c->time_since_epoch()).count() %
                1000000000,
            123456789);
}

TEST(TimeFormatTest, LeapDay) {
  EXPECT_TRUE(ParseRfc3339("2024-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2025-02-29T00:00:00Z").ok());
}

TEST(TimeFormatTest, RejectsMalformedWithANamedError) {
  for (const char* bad : {"", "2026", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                          "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00Zx",
                          "2026-01-01T00:00:00+0800", "2026-01-01T00:00:00.Z",
                          "2026-01-01X00:00:00Z", "abcd-ef-ghTij:kl:mnZ"}) {
    auto r = ParseRfc3339(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("RFC 3339"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace hami::common
