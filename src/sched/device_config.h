// The device-config model shared by the scheduler extender and the device plugin: the `nvidia:`
// section of device-config.yaml (SPEC 2.7) and per-node overrides (`nodeconfig`), resolved for
// one node. Parsing never throws: every wrong YAML shape and every non-finite or out-of-range
// number is a named error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::sched {

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

  // Errors: kInvalidArgument naming the key (as written in YAML) and the allowed range.
  Status Validate() const;
};

struct NodeOverride {
  std::string name;
  std::string operating_mode;  // hami-core | mig | mps; empty: unchanged
  std::optional<double> device_memory_scaling;
  std::optional<double> device_core_scaling;
  std::optional<int> device_split_count;
  std::vector<std::string> filter_uuids;  // devices this node must not advertise
  std::vector<unsigned> filter_indexes;

  // Errors: kInvalidArgument naming nodeconfig[<i>].<key>.
  Status Validate(std::size_t i) const;
};

struct DeviceConfig {
  NvidiaConfig nvidia;
  std::vector<NodeOverride> nodes;

  Status Validate() const;
};

// The configuration in force on one node.
struct NodeDeviceConfig {
  NvidiaConfig nvidia;
  std::string operating_mode = "hami-core";
  std::vector<std::string> filter_uuids;
  std::vector<unsigned> filter_indexes;
};

// Limits on numbers (finite, and small enough that devmem = MiB x scaling fits any counter).
inline constexpr double kMaxScaling = 100;
inline constexpr int kMaxSplitCount = 1024;
inline constexpr double kMaxMemoryFactor = 1024;
inline constexpr long long kMaxDefaultMemoryMiB = 1LL << 30;  // 1 PiB
inline constexpr long long kMaxDefaultGpuNum = 64;

// Parses device-config.yaml text and validates it. A `nodeconfig:` list may sit at the top
// level beside `nvidia:` (HAMi keeps it in a separate JSON file; ParseNodeConfigs reads that).
// Errors: kInvalidArgument naming the key and the problem.
StatusOr<DeviceConfig> ParseDeviceConfig(const std::string& yaml_text);
// Parses `{"nodeconfig": [...]}` (JSON or YAML) and appends to `config`. Errors: as above.
Status ParseNodeConfigs(const std::string& text, DeviceConfig& config);

NodeDeviceConfig ResolveForNode(const DeviceConfig& config, const std::string& node_name);

}  // namespace hami::sched
