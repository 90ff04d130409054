// Prometheus text exposition format (version 0.0.4), shared by every exporter (node monitor,
// `hami serve`, scheduler extender): metric families with HELP/TYPE, escaped label values and
// numbers that round-trip. Either build Families and render them, or stream with TextWriter.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hami::prom {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  Labels labels;
  double value = 0;
};

struct Family {
  std::string name;
  std::string help;
  std::string type = "gauge";  // gauge | counter
  std::vector<Sample> samples;
};

// Label values: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view v);
// HELP text: backslash and newline escaped.
std::string EscapeHelp(std::string_view v);
// Integers exactly (up to 2^53), NaN/+Inf/-Inf by name, other values in the shortest form
// that reads back to the same double.
std::string FormatValue(double v);
// `{a="x",b="y"}`, or "" for no labels.
std::string RenderLabels(const Labels& labels);

// Appends families to a string as they are produced.
class TextWriter {
 public:
  // Starts a family: "# HELP" and "# TYPE" lines.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);
  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string RenderText(const std::vector<Family>& families);

}  // namespace hami::prom
