// hami-device-plugin's command line: this project's flags and HAMi's (so HAMi's chart arguments
// start it unchanged), turned into PluginServerOptions, then the plugin or an offline mode run.
// main.cc only calls ParseFlags and Run.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "deviceplugin/plugin_server.h"

namespace hami::deviceplugin {

struct PluginFlags {
  PluginServerOptions opts;
  std::string config_path;       // --config / --config-file (HAMi): device-config.yaml
  std::string node_config_path;  // --node-config: {"nodeconfig": [...]}
  std::string nvml_lib = "libnvidia-ml.so.1";
  std::string lib_source;  // --vgpu-lib-source
  std::string kubeconfig;
  std::string log_level;
  std::string mig_strategy = "none";  // HAMi's --mig-strategy: none | single | mixed
  std::optional<int> split;
  std::optional<double> mem_scaling, core_scaling;
  std::optional<std::string> core_policy;
  std::optional<bool> disable_core_limit;
  std::optional<std::string> resource_name;
  int annotate_s = 30;
  bool print_devices = false;
  std::string simulate_pod;
  // HAMi / NVIDIA plugin flags that have no effect here, as "--name=value" (logged at start).
  std::vector<std::string> ignored_hami_flags;
};

// Parses argv (and HAMi's environment variables NODE_NAME, HOOK_PATH, CONFIG_FILE,
// MIG_STRATEGY). Returns nullopt when the program should exit with `exit_code` (0 after
// --help, 2 for a bad flag).
std::optional<PluginFlags> ParseFlags(int argc, char** argv, int& exit_code);

// Reads and validates the configuration files, applies flag overrides and resolves the
// configuration for this node. Errors: kInvalidArgument / kNotFound naming the file or flag.
StatusOr<PluginServerOptions> BuildOptions(const PluginFlags& flags);

// The whole program after flag parsing: exit status 0, 1 (runtime error) or 2 (configuration).
int Run(const PluginFlags& flags, std::ostream& out);

}  // namespace hami::deviceplugin
