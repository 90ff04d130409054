// The device plugin's configuration: the device-config model (sched/device_config.h, shared
// with the scheduler extender) under the plugin's names, and reading the files it comes from.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "sched/device_config.h"

namespace hami::deviceplugin {

using sched::NodeOverride;
using sched::NvidiaConfig;
using PluginConfig = sched::DeviceConfig;
using NodeConfig = sched::NodeDeviceConfig;
using sched::ParseNodeConfigs;
using sched::ResolveForNode;

inline StatusOr<PluginConfig> ParsePluginConfig(const std::string& yaml_text) {
  return sched::ParseDeviceConfig(yaml_text);
}

// A device-config or pod file is a few KiB; a ConfigMap is at most 1 MiB.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// Reads a file with common::ReadFileBounded (links followed, as kubelet mounts ConfigMaps
// through them; no FIFOs; at most kMaxConfigBytes); errors: as ReadFileBounded.
StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace hami::deviceplugin
