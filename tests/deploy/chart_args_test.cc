// The rendered chart's command lines start this project's binaries: hami-scheduler's and
// hami-device-plugin's own flag parsing and configuration loading take the arguments and
// ConfigMaps that deploy/helm/hami renders from HAMi's values file, with HAMi's settings arriving
// in the components' configuration (webhook core policy, node overrides, scheduler name).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "deploy/helm_render.h"
#include "deviceplugin/cli.h"
#include "k8s/extender/config.h"

namespace hami::deploytest {
namespace {

namespace fs = std::filesystem;
const std::string kChart = std::string(HAMI_DEPLOY_DIR) + "/helm/hami";

std::string HamiValues() {
  std::ifstream in(std::string(HAMI_TESTDATA_DIR) + "/hami-v2.10-values.yaml");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Rendered {
  YAML::Node scheduler, plugin, device_config, node_config;
};

Rendered RenderFor(const std::vector<std::string>& values) {
  auto r = RenderChart(kChart, values);
  EXPECT_TRUE(r.ok()) << r.status().message();
  Rendered out;
  if (!r.ok()) return out;
  for (const auto& [file, text] : *r) {
    if (file.size() < 5 || file.substr(file.size() - 5) != ".yaml") continue;
    for (const auto& d : YAML::LoadAll(text)) {
      if (!d.IsMap()) continue;
      const std::string kind = d["kind"].as<std::string>();
      const std::string name = d["metadata"]["name"].as<std::string>();
      if (kind == "Deployment" && name == "hami-scheduler") out.scheduler = d;
      if (kind == "DaemonSet" && name == "hami-device-plugin") out.plugin = d;
      if (kind == "ConfigMap" && name == "hami-device-config")
        out.device_config = d["data"]["device-config.yaml"];
      if (kind == "ConfigMap" && name == "hami-device-plugin-config")
        out.node_config = d["data"]["config.json"];
    }
  }
  return out;
}

std::vector<std::string> Command(const YAML::Node& workload, const std::string& container) {
  for (const auto& c : workload["spec"]["template"]["spec"]["containers"])
    if (c["name"].as<std::string>() == container)
      return c["command"].as<std::vector<std::string>>();
  ADD_FAILURE() << "no container " << container;
  return {};
}

struct Argv {
  std::vector<std::string> args;
  std::vector<char*> ptrs;
  explicit Argv(std::vector<std::string> a) : args(std::move(a)) {
    for (auto& s : args) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args.size()); }
  char** argv() { return ptrs.data(); }
};

TEST(NodeChartRender, HamiValuesStartTheScheduler) {
  for (const std::string& extra :
       {std::string(), std::string("devices: {nvidia: {gpuCorePolicy: force}}\n"
                                   "schedulerName: my-scheduler\n"
                                   "scheduler: {kubeQPS: \"50\", kubeBurst: \"80\","
                                   " forceOverwriteDefaultScheduler: false}\n")}) {
    Rendered r = RenderFor({HamiValues(), extra});
    ASSERT_TRUE(r.scheduler.IsMap() && r.device_config.IsScalar());
    Argv a(Command(r.scheduler, "hami-scheduler"));
    int exit_code = -1;
    auto flags = k8s::ParseFlags(a.argc(), a.argv(), exit_code);
    ASSERT_TRUE(flags.has_value()) << "hami-scheduler exits " << exit_code;
    auto cfg = k8s::BuildConfig(*flags, r.device_config.as<std::string>());
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    EXPECT_EQ(cfg->metrics_port, 9395);
    if (extra.empty()) {
      EXPECT_EQ(cfg->webhook.gpu_core_policy, "default");
      EXPECT_EQ(cfg->webhook.scheduler_name, "hami-scheduler");
      EXPECT_TRUE(cfg->webhook.force_overwrite_default_scheduler);
    } else {
      EXPECT_EQ(cfg->webhook.gpu_core_policy, "force");
      EXPECT_EQ(cfg->webhook.scheduler_name, "my-scheduler");
      EXPECT_FALSE(cfg->webhook.force_overwrite_default_scheduler);
      EXPECT_DOUBLE_EQ(cfg->client.qps, 50);
    }
  }
}

TEST(NodeChartRender, HamiValuesStartTheDevicePlugin) {
  Rendered r = RenderFor({HamiValues(),
                          "devicePlugin: {disablecorelimit: \"true\", registerFormat: text}\n"
                          "devices: {nvidia: {gpuCorePolicy: disable}}\n"});
  ASSERT_TRUE(r.plugin.IsMap() && r.device_config.IsScalar() && r.node_config.IsScalar());
  // The ConfigMaps as the kubelet would mount them.
  const fs::path dir = fs::temp_directory_path() / ("chart_args_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "device-config.yaml") << r.device_config.as<std::string>();
  std::ofstream(dir / "config.json") << r.node_config.as<std::string>();
  std::vector<std::string> args;
  for (const auto& a : Command(r.plugin, "device-plugin")) {
    if (a.rfind("--config=", 0) == 0) {
      args.push_back("--config=" + (dir / "device-config.yaml").string());
    } else if (a.rfind("--node-config=", 0) == 0) {
      args.push_back("--node-config=" + (dir / "config.json").string());
    } else {
      args.push_back(a);
    }
  }
  args.push_back("--node-name=your-node-name");  // NODE_NAME from the downward API
  Argv a(args);
  int exit_code = -1;
  auto flags = deviceplugin::ParseFlags(a.argc(), a.argv(), exit_code);
  ASSERT_TRUE(flags.has_value()) << "hami-device-plugin exits " << exit_code;
  EXPECT_EQ(flags->log_level, "debug");  // HAMi's -v=4
  EXPECT_EQ(flags->mig_strategy, "none");
  auto opts = deviceplugin::BuildOptions(*flags);
  fs::remove_all(dir);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_EQ(opts->config.nvidia.gpu_core_policy, "disable");
  EXPECT_TRUE(opts->config.nvidia.disable_core_limit);
  EXPECT_EQ(opts->config.nvidia.device_split_count, 10);
  EXPECT_EQ(opts->hook_path, "/usr/local");
  EXPECT_EQ(opts->register_format, "text");  // for HAMi <= v2.7 schedulers
}

// The monitor container's command (HAMi's --legacy-metrics and -v=4 translated) starts
// hami-vgpu-monitor: it reaches "serving /metrics" rather than exiting on a flag. Its host paths
// point into a scratch directory and it runs without NVML and the API server.
TEST(NodeChartRender, HamiValuesStartTheMonitor) {
  Rendered r = RenderFor({HamiValues(), "legacyMetrics: true\n"});
  ASSERT_TRUE(r.plugin.IsMap());
  const fs::path dir = fs::temp_directory_path() / ("chart_mon_" + std::to_string(::getpid()));
  fs::create_directories(dir / "vgpu");
  std::vector<std::string> args = {HAMI_MONITOR_BIN};
  bool legacy = false;
  for (const auto& a : Command(r.plugin, "vgpu-monitor")) {
    if (a == "hami-vgpu-monitor") continue;
    legacy = legacy || a == "--legacy-metrics=true";
    if (a.rfind("--hook-path=", 0) == 0) {
      args.push_back("--hook-path=" + dir.string());
    } else if (a.rfind("--port=", 0) == 0) {
      args.push_back("--port=0");
    } else {
      args.push_back(a);
    }
  }
  EXPECT_TRUE(legacy);
  for (const char* a : {"--no-nvml", "--no-kube", "--host=127.0.0.1"}) args.push_back(a);
  const fs::path log = dir / "log";
  Argv a(args);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    execv(a.argv()[0], a.argv());
    _exit(127);
  }
  bool serving = false, exited = false;
  int status = 0;
  for (int i = 0; i < 200 && !serving && !exited; ++i) {  // up to 10 s on a loaded machine
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    serving = ss.str().find("serving /metrics on 127.0.0.1:") != std::string::npos;
    exited = waitpid(pid, &status, WNOHANG) == pid;
  }
  if (!exited) {
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  fs::remove_all(dir);
  EXPECT_TRUE(serving) << "monitor log:\n" << ss.str();
}

}  // namespace
}  // namespace hami::deploytest
