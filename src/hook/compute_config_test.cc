#include "compute_config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace hami::vgpu {
namespace {

std::map<std::string, std::string> g_env;
const char* Get(const char* n) {
  auto it = g_env.find(n);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

class ComputeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { g_env.clear(); }
  bool Load() { return LoadComputeConfig(Get, &c_, err_, sizeof(err_)); }
  ComputeConfig c_;
  char err_[512] = {};
};

TEST_F(ComputeConfigTest, DefaultsWhenUnsetOrEmpty) {
  g_env["HAMI_COMPUTE_PROBE_MS"] = "";
  ASSERT_TRUE(Load()) << err_;
  EXPECT_TRUE(c_.turns && c_.power && c_.pace);
  EXPECT_FALSE(c_.stats);
  EXPECT_EQ(c_.pace_on_ns, 40000000u);
  EXPECT_EQ(c_.pace_off_ns, 10000000u);
  EXPECT_TRUE(c_.pace_restart);
  EXPECT_EQ(c_.pace_tail, 2u);
  EXPECT_EQ(c_.max_turn_ns, 20000000u);
  EXPECT_EQ(c_.turn_overlap_ns, 200000u);
  EXPECT_EQ(c_.probe_ns, 200000000u);
  EXPECT_EQ(c_.probe_every_ns, 60000000000u);
  EXPECT_STREQ(c_.board_dir, "");
  EXPECT_STREQ(c_.contention_dir, "");
}

TEST_F(ComputeConfigTest, ParsesEveryVariable) {
  g_env = {{"HAMI_COMPUTE_TURNS", "0"},          {"HAMI_COMPUTE_POWER", "false"},
           {"HAMI_COMPUTE_STATS", "1"},          {"HAMI_COMPUTE_PACE", "off"},
           {"HAMI_COMPUTE_PACE_MS", "100"},      {"HAMI_COMPUTE_PACE_OFF_MS", "0"},
           {"HAMI_COMPUTE_MAX_TURN_US", "5000"}, {"HAMI_COMPUTE_TURN_OVERLAP_US", "0"},
           {"HAMI_COMPUTE_PROBE_MS", "30"},      {"HAMI_COMPUTE_PROBE_EVERY_S", "3600"},
           {"HAMI_COMPUTE_BOARD_DIR", "/b"},     {"HAMI_CONTENTION_DIR", "/c/d"},
           {"HAMI_COMPUTE_PACE_RESTART", "off"}, {"HAMI_COMPUTE_PACE_TAIL", "0"}};
  ASSERT_TRUE(Load()) << err_;
  EXPECT_FALSE(c_.turns || c_.power || c_.pace);
  EXPECT_TRUE(c_.stats);
  EXPECT_EQ(c_.pace_on_ns, 100000000u);
  EXPECT_EQ(c_.pace_off_ns, 0u);
  EXPECT_EQ(c_.max_turn_ns, 5000000u);
  EXPECT_EQ(c_.turn_overlap_ns, 0u);
  EXPECT_EQ(c_.probe_ns, 30000000u);
  EXPECT_EQ(c_.probe_every_ns, 3600000000000u);
  EXPECT_STREQ(c_.board_dir, "/b");
  EXPECT_STREQ(c_.contention_dir, "/c/d");
  EXPECT_FALSE(c_.pace_restart);
  EXPECT_EQ(c_.pace_tail, 0u);
}

TEST_F(ComputeConfigTest, BadValuesAreNamedErrors) {
  const std::pair<const char*, const char*> bad[] = {
      {"HAMI_COMPUTE_TURNS", "yes please"},  {"HAMI_COMPUTE_TURNS", "2"},
      {"HAMI_COMPUTE_POWER", "-1"},          {"HAMI_COMPUTE_STATS", "verbose"},
      {"HAMI_COMPUTE_PACE", "sometimes"},    {"HAMI_COMPUTE_PACE_MS", "0"},
      {"HAMI_COMPUTE_PACE_MS", "101"},       {"HAMI_COMPUTE_PACE_OFF_MS", "51"},
      {"HAMI_COMPUTE_PACE_OFF_MS", "-1"},    {"HAMI_COMPUTE_MAX_TURN_US", "999"},
      {"HAMI_COMPUTE_MAX_TURN_US", "30001"}, {"HAMI_COMPUTE_TURN_OVERLAP_US", "1001"},
      {"HAMI_COMPUTE_PROBE_MS", "29"},       {"HAMI_COMPUTE_PROBE_MS", "2e2"},
      {"HAMI_COMPUTE_PROBE_EVERY_S", "0"},   {"HAMI_COMPUTE_BOARD_DIR", "relative"},
      {"HAMI_CONTENTION_DIR", "./c"},        {"HAMI_COMPUTE_PACE_RESTART", "2"},
      {"HAMI_COMPUTE_PACE_TAIL", "learned"}, {"HAMI_COMPUTE_PACE_TAIL", "3"},
  };
  for (const auto& [k, v] : bad) {
    g_env = {{k, v}};
    EXPECT_FALSE(Load()) << k << "=" << v;
    EXPECT_NE(std::string(err_).find(k), std::string::npos) << err_;
  }
  g_env = {{"HAMI_COMPUTE_BOARD_DIR", "/" + std::string(2000, 'a')}};
  EXPECT_FALSE(Load());
}

}  // namespace
}  // namespace hami::vgpu
