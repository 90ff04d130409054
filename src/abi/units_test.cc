// The one memory-size grammar (units.h): what it accepts, what it refuses, and that it can be
// evaluated at compile time (libvgpu.so has no static initialisers).
#include "abi/units.h"

#include <gtest/gtest.h>

#include <string>

namespace hami::abi {
namespace {

constexpr uint64_t Parsed(const char* s, uint64_t bare) {
  uint64_t v = 0;
  return ParseMemSize(s, bare, &v) == SizeError::kOk ? v : ~0ull;
}
static_assert(Parsed("2gib", 1) == 2 * kGiB);
static_assert(Parsed("1536", kMiB) == 1536 * kMiB);

TEST(UnitsTest, AcceptsEveryFormOfTheOneGrammar) {
  struct Case {
    const char* in;
    uint64_t want;
  } cases[] = {{"0", 0},
               {"1073741824", 1ull << 30},
               {"512k", 512ull << 10},
               {"512K", 512ull << 10},
               {"512KiB", 512ull << 10},
               {"2048m", 2048ull << 20},
               {"2048M", 2048ull << 20},
               {"3Mi", 3ull << 20},
               {"3mb", 3ull << 20},
               {"2g", 2ull << 30},
               {"2G", 2ull << 30},
               {"2Gi", 2ull << 30},
               {"2gi", 2ull << 30},
               {"2GiB", 2ull << 30},
               {"2gib", 2ull << 30},
               {"2GIB", 2ull << 30},
               {"2GB", 2ull << 30},
               {"2gb", 2ull << 30},
               {"1t", 1ull << 40},
               {"1TiB", 1ull << 40},
               {"16777215t", 16777215ull << 40}};
  for (const auto& c : cases) {
    uint64_t v = 123;
    EXPECT_EQ(ParseMemSize(c.in, 1, &v), SizeError::kOk) << c.in;
    EXPECT_EQ(v, c.want) << c.in;
  }
}

TEST(UnitsTest, BareNumberCountsTheCallersUnit) {
  uint64_t v = 0;
  ASSERT_EQ(ParseMemSize("1536", kMiB, &v), SizeError::kOk);
  EXPECT_EQ(v, 1536 * kMiB);
  ASSERT_EQ(ParseMemSize("1536", 1, &v), SizeError::kOk);
  EXPECT_EQ(v, 1536u);
  // A unit overrides the bare unit.
  ASSERT_EQ(ParseMemSize("2g", kMiB, &v), SizeError::kOk);
  EXPECT_EQ(v, 2 * kGiB);
}

TEST(UnitsTest, RefusesWithANamedError) {
  struct Case {
    const char* in;
    SizeError want;
  } cases[] = {{"", SizeError::kEmpty},
               {"g", SizeError::kNoDigits},
               {"-1", SizeError::kNoDigits},
               {"+2g", SizeError::kNoDigits},
               {" 2g", SizeError::kNoDigits},
               {"2 g", SizeError::kBadUnit},
               {"2g ", SizeError::kBadUnit},
               {"2x", SizeError::kBadUnit},
               {"2gg", SizeError::kBadUnit},
               {"2gbi", SizeError::kBadUnit},
               {"2iB", SizeError::kBadUnit},
               {"2b", SizeError::kBadUnit},
               {"1.5g", SizeError::kBadUnit},
               {"0x10", SizeError::kBadUnit},
               {"2g\n", SizeError::kBadUnit},
               {"99999999999999999999", SizeError::kOverflow},
               {"20000000000g", SizeError::kOverflow},
               {"16777216t", SizeError::kOverflow}};
  for (const auto& c : cases) {
    uint64_t v = 77;
    EXPECT_EQ(ParseMemSize(c.in, 1, &v), c.want) << "'" << c.in << "'";
    EXPECT_EQ(v, 77u) << "output written on error for '" << c.in << "'";
    EXPECT_STRNE(SizeErrorText(c.want), "ok");
  }
  uint64_t v = 0;
  EXPECT_EQ(ParseMemSize(nullptr, 1, &v), SizeError::kEmpty);
}

TEST(UnitsTest, LengthBoundedFormStopsAtLengthAndSeesEmbeddedNul) {
  std::string s(
      "2g\0"
      "1g",
      5);
  uint64_t v = 0;
  EXPECT_EQ(ParseMemSize(s.data(), s.size(), 1, &v), SizeError::kBadUnit);
  EXPECT_EQ(ParseMemSize(s.data(), 2, 1, &v), SizeError::kOk);
  EXPECT_EQ(v, 2 * kGiB);
}

}  // namespace
}  // namespace hami::abi
