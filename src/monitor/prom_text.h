// Prometheus text exposition format (version 0.0.4): metric families rendered to text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hami::monitor {

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

std::string RenderText(const std::vector<Family>& families);
std::string EscapeLabelValue(const std::string& v);

}  // namespace hami::monitor
