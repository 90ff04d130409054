#include "common/prom_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace hami::prom {
namespace {

TEST(PromTextTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(PromTextTest, EscapesHelp) { EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d"); }

TEST(PromTextTest, FormatsValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1073741824.0), "1073741824");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(std::stod(FormatValue(1e300)), 1e300);
  EXPECT_EQ(std::stod(FormatValue(2.0 / 3.0)), 2.0 / 3.0);
}

TEST(PromTextTest, RendersFamilies) {
  std::vector<Family> fs = {
      {"m_one", "First\nmetric.", "gauge", {{{{"a", "x\"y"}, {"b", "2"}}, 1.5}, {{}, 2}}},
      {"m_two", "Second.", "counter", {}}};
  EXPECT_EQ(RenderText(fs),
            "# HELP m_one First\\nmetric.\n# TYPE m_one gauge\n"
            "m_one{a=\"x\\\"y\",b=\"2\"} 1.5\nm_one 2\n"
            "# HELP m_two Second.\n# TYPE m_two counter\n");
}

TEST(PromTextTest, WriterStreams) {
  TextWriter w;
  w.Family("x_total", "counter", "Things.");
  w.Sample("x_total", {{"node", "n\\1"}}, 3);
  EXPECT_EQ(w.text(), "# HELP x_total Things.\n# TYPE x_total counter\nx_total{node=\"n\\\\1\"} 3\n");
  EXPECT_EQ(RenderLabels({}), "");
}

}  // namespace
}  // namespace hami::prom
