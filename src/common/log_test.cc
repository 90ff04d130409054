#include "common/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

namespace hami::log {
namespace {

struct Captured {
  Level level;
  std::string text;
};

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLevel(Level::kInfo);
    SetSinkForTesting([this](Level l, std::string_view m) { lines_.push_back({l, std::string(m)}); });
  }
  void TearDown() override {
    SetSinkForTesting(nullptr);
    SetLevel(Level::kInfo);
    unsetenv("HAMI_LOG_LEVEL");
  }
  std::vector<Captured> lines_;
};

TEST_F(LogTest, ParsesLevels) {
  EXPECT_EQ(*ParseLevel("DEBUG"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("3"), Level::kError);
  auto bad = ParseLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("loud"), std::string::npos);
}

TEST_F(LogTest, FiltersBelowTheLevel) {
  Debug("hidden {}", 1);
  Info("shown {}", 2);
  ASSERT_TRUE(SetLevel(std::string_view("error")).ok());
  Warn("hidden too");
  Error("bad {}", "thing");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].text, "shown 2");
  EXPECT_EQ(lines_[1].level, Level::kError);
  EXPECT_EQ(lines_[1].text, "bad thing");
}

TEST_F(LogTest, BadFlagValueKeepsTheLevel) {
  ASSERT_TRUE(SetLevel(std::string_view("warn")).ok());
  EXPECT_FALSE(SetLevel(std::string_view("nope")).ok());
  EXPECT_EQ(GetLevel(), Level::kWarn);
}

TEST_F(LogTest, EnvironmentSetsTheLevel) {
  setenv("HAMI_LOG_LEVEL", "debug", 1);
  Init("test");
  SetSinkForTesting([this](Level l, std::string_view m) { lines_.push_back({l, std::string(m)}); });
  EXPECT_EQ(GetLevel(), Level::kDebug);
  setenv("HAMI_LOG_LEVEL", "shout", 1);
  SetLevel(Level::kInfo);
  Init("test");
  EXPECT_EQ(GetLevel(), Level::kInfo);
  ASSERT_FALSE(lines_.empty());
  EXPECT_NE(lines_.back().text.find("HAMI_LOG_LEVEL"), std::string::npos);
  EXPECT_EQ(lines_.back().level, Level::kWarn);
}

TEST_F(LogTest, OffSilencesEverything) {
  SetLevel(Level::kOff);
  Error("x");
  EXPECT_TRUE(lines_.empty());
}

}  // namespace
}  // namespace hami::log
