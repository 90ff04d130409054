// deploy/helm/hami rendered as `helm template` would (tests/deploy/helm_render.h): with the
// chart's defaults (the same objects as deploy/manifests), and with HAMi's own values file,
// whose keys must carry over with HAMi's meaning (docs/hami-compatibility.md, Helm values).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "deploy/helm_render.h"
#include "deviceplugin/config.h"

namespace hami::deploytest {
namespace {

const std::string kChart = std::string(HAMI_DEPLOY_DIR) + "/helm/hami";

[[maybe_unused]] std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(NodeChartRender, Debug) {
  auto r = RenderChart(kChart, "");
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const auto& [f, t] : *r) std::cout << "# " << f << "\n" << t << "\n";
}

}  // namespace
}  // namespace hami::deploytest
