#include "deviceplugin/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;

std::optional<PluginFlags> Parse(std::vector<std::string> args, int& rc) {
  args.insert(args.begin(), "hami-device-plugin");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data(), rc);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("NODE_NAME");
    unsetenv("CONFIG_FILE");
    unsetenv("MIG_STRATEGY");
    char tmpl[] = "/tmp/hami-dp-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& body) {
    std::ofstream(dir_ + "/" + name) << body;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

// HAMi's chart runs: nvidia-device-plugin --config-file=/device-config.yaml
// --mig-strategy=<v> --disable-core-limit=<v> [extraArgs]; plus the NVIDIA plugin's flags.
TEST_F(CliTest, AcceptsHamiChartArguments) {
  const std::string cfg = Write("device-config.yaml", "nvidia:\n  deviceSplitCount: 7\n");
  int rc = -1;
  auto f = Parse({"--config-file=" + cfg, "--mig-strategy=none", "--disable-core-limit=false",
                  "--fail-on-init-error=false", "--device-list-strategy", "envvar",
                  "--pass-device-specs", "--nvidia-driver-root=/run/nvidia/driver",
                  "--device-cores-scaling=1.5", "--node-name=gpu-1",
                  "--kubelet-socket=/var/lib/kubelet/device-plugins/kubelet.sock"},
                 rc);
  ASSERT_TRUE(f.has_value()) << "exit " << rc;
  EXPECT_EQ(f->config_path, cfg);
  EXPECT_EQ(f->disable_core_limit, false);
  EXPECT_EQ(f->core_scaling, 1.5);
  EXPECT_EQ(f->opts.socket_dir, "/var/lib/kubelet/device-plugins");
  EXPECT_EQ(f->opts.kubelet_socket_name, "kubelet.sock");
  // The flags that change nothing are kept for the start-up log.
  std::string ignored;
  for (const auto& s : f->ignored_hami_flags) ignored += s + " ";
  EXPECT_NE(ignored.find("--fail-on-init-error=false"), std::string::npos) << ignored;
  EXPECT_NE(ignored.find("--device-list-strategy=envvar"), std::string::npos) << ignored;
  EXPECT_NE(ignored.find("--pass-device-specs=true"), std::string::npos) << ignored;
  auto opts = BuildOptions(*f);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_EQ(opts->config.nvidia.device_split_count, 7);
  EXPECT_DOUBLE_EQ(opts->config.nvidia.device_core_scaling, 1.5);
  EXPECT_FALSE(opts->config.nvidia.disable_core_limit);
  EXPECT_EQ(opts->register_format, "json");
}

TEST_F(CliTest, DisableCoreLimitWithoutValueMeansTrue) {
  int rc = -1;
  auto f = Parse({"--disable-core-limit", "--node-name=n"}, rc);
  ASSERT_TRUE(f.has_value());
  auto opts = BuildOptions(*f);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_TRUE(opts->config.nvidia.disable_core_limit);
}

TEST_F(CliTest, RegisterFormatAndMigStrategyAreChecked) {
  int rc = -1;
  auto f = Parse({"--register-format=text", "--node-name=n"}, rc);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->opts.register_format, "text");
  EXPECT_FALSE(Parse({"--register-format=yaml"}, rc).has_value());
  EXPECT_EQ(rc, 2);
  EXPECT_FALSE(Parse({"--mig-strategy=some"}, rc).has_value());
  EXPECT_EQ(rc, 2);
  EXPECT_FALSE(Parse({"--no-such-flag"}, rc).has_value());
  EXPECT_EQ(rc, 2);
}

TEST_F(CliTest, BadConfigurationIsANamedError) {
  int rc = -1;
  const std::string cfg = Write("bad.yaml", "nodeconfig: [{name: n, filterdevices: 3}]\n");
  auto f = Parse({"--config", cfg, "--node-name=n"}, rc);
  ASSERT_TRUE(f.has_value());
  auto opts = BuildOptions(*f);
  ASSERT_FALSE(opts.ok());
  EXPECT_NE(opts.status().message().find("filterdevices"), std::string::npos);
  EXPECT_NE(opts.status().message().find(cfg), std::string::npos);
  // A non-finite override from the command line is caught by the same validation.
  f = Parse({"--device-memory-scaling=inf", "--node-name=n"}, rc);
  ASSERT_TRUE(f.has_value());
  opts = BuildOptions(*f);
  ASSERT_FALSE(opts.ok());
  EXPECT_NE(opts.status().message().find("deviceMemoryScaling"), std::string::npos);
  // No node name: refused (offline modes default to "local").
  f = Parse({}, rc);
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(BuildOptions(*f).ok());
  f = Parse({"--print-devices"}, rc);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(BuildOptions(*f)->node_name, "local");
}

TEST_F(CliTest, ConfigFileThroughHamisEnvironment) {
  const std::string cfg = Write("c.yaml", "nvidia: {deviceSplitCount: 3}\n");
  setenv("CONFIG_FILE", cfg.c_str(), 1);
  setenv("NODE_NAME", "gpu-9", 1);
  int rc = -1;
  auto f = Parse({}, rc);
  ASSERT_TRUE(f.has_value());
  auto opts = BuildOptions(*f);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_EQ(opts->node_name, "gpu-9");
  EXPECT_EQ(opts->config.nvidia.device_split_count, 3);
}

}  // namespace
}  // namespace hami::deviceplugin
