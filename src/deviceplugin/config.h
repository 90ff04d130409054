// The device plugin's configuration: the `nvidia:` section of device-config.yaml (SPEC 2.7),
// per-node overrides (`nodeconfig`), resolved for one node.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::deviceplugin {

struct NvidiaConfig {
  std::string resource_count_name = "nvidia.com/gpu";
  std::string resource_memory_name = "nvidia.com/gpumem";
  std::string resource_memory_percentage_name = "nvidia.com/gpumem-percentage";
  std::string resource_core_name = "nvidia.com/gpucores";
  std::string resource_priority_name = "nvidia.com/priority";
  long long default_memory = 0;
  long long default_cores = 0;
  long long default_gpu_num = 1;
  double memory_factor = 1;
  int device_split_count = 10;
  double device_memory_scaling = 1;
  double device_core_scaling = 1;
  std::string gpu_core_policy = "default";  // default | force | disable
  std::optional<int> lib_cuda_log_level;    // 0..4
  bool disable_core_limit = false;
};

struct NodeOverride {
  std::string name;
  std::string operating_mode;  // hami-core | mig | mps; empty: unchanged
  std::optional<double> device_memory_scaling;
  std::optional<double> device_core_scaling;
  std::optional<int> device_split_count;
  std::vector<std::string> filter_uuids;  // devices this node must not advertise
  std::vector<unsigned> filter_indexes;
};

struct PluginConfig {
  NvidiaConfig nvidia;
  std::vector<NodeOverride> nodes;
};

// The configuration in force on one node.
struct NodeConfig {
  NvidiaConfig nvidia;
  std::string operating_mode = "hami-core";
  std::vector<std::string> filter_uuids;
  std::vector<unsigned> filter_indexes;
};

// Parses device-config.yaml text. A `nodeconfig:` list may sit at the top level beside
// `nvidia:` (HAMi keeps it in a separate JSON file; ParseNodeConfigs reads that form).
// Errors: kInvalidArgument naming the key and the problem.
StatusOr<PluginConfig> ParsePluginConfig(const std::string& yaml_text);
// Parses `{"nodeconfig": [...]}` (JSON or YAML) and appends to `config`.
Status ParseNodeConfigs(const std::string& text, PluginConfig& config);
// A device-config or pod file is a few KiB; a ConfigMap is at most 1 MiB.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// Reads a file with common::ReadFileBounded (links followed, as kubelet mounts ConfigMaps
// through them; no FIFOs; at most kMaxConfigBytes);
// errors: as ReadFileBounded.
StatusOr<std::string> ReadFile(const std::string& path);

NodeConfig ResolveForNode(const PluginConfig& config, const std::string& node_name);

}  // namespace hami::deviceplugin
