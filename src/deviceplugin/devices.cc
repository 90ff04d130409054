#include "deviceplugin/devices.h"

#include <algorithm>
#include <cmath>

namespace hami::deviceplugin {

std::vector<NodeGpu> FilterGpus(const std::vector<gpu::GpuInfo>& gpus, const NodeConfig& config) {
  std::vector<NodeGpu> out;
  for (const auto& g : gpus) {
    if (std::find(config.filter_uuids.begin(), config.filter_uuids.end(), g.uuid) !=
            config.filter_uuids.end() ||
        std::find(config.filter_indexes.begin(), config.filter_indexes.end(), g.index) !=
            config.filter_indexes.end()) {
      continue;
    }
    out.push_back({g, g.healthy});
  }
  return out;
}

std::string VirtualId(const std::string& uuid, int n) { return uuid + "::" + std::to_string(n); }

std::string VirtualIdToUuid(const std::string& id) {
  std::size_t p = id.rfind("::");
  std::size_t sep = 2;
  if (p == std::string::npos) {
    p = id.rfind('-');  // this project's older form
    sep = 1;
  }
  if (p == std::string::npos || p == 0 || p + sep == id.size()) return "";
  for (std::size_t i = p + sep; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return "";
  }
  return id.substr(0, p);
}

std::string DeviceType(const std::string& nvml_name) { return sched::RegisterGpuType(nvml_name); }

std::string LegacyDeviceType(const std::string& nvml_name) {
  return sched::NormalizeGpuType(nvml_name);
}

namespace {

std::vector<sched::GpuInfo> RegisterGpus(const std::vector<NodeGpu>& gpus,
                                         const NodeConfig& config) {
  // ParsePluginConfig admits only the three mode names, so this never falls back in practice.
  auto mode = sched::ParseVgpuMode(config.operating_mode);
  std::vector<sched::GpuInfo> out;
  for (const auto& g : gpus) {
    const double mib = static_cast<double>(g.info.memory_bytes / (1024 * 1024));
    sched::GpuInfo r;
    r.uuid = g.info.uuid;
    r.index = static_cast<int32_t>(g.info.index);
    r.type = DeviceType(g.info.name);
    r.memory_mib = static_cast<int64_t>(std::floor(mib * config.nvidia.device_memory_scaling));
    r.cores = static_cast<int32_t>(std::lround(100 * config.nvidia.device_core_scaling));
    r.split_count = config.nvidia.device_split_count;
    r.numa = std::max(g.info.numa, 0);
    r.healthy = g.healthy;
    r.mode = mode.ok() ? *mode : sched::VgpuMode::kHamiCore;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::string EncodeRegisterAnnotation(const std::vector<NodeGpu>& gpus, const NodeConfig& config,
                                     const std::string& format) {
  std::vector<sched::GpuInfo> reg = RegisterGpus(gpus, config);
  if (format != "text") return sched::EncodeNodeRegister(reg);
  std::string out;
  for (std::size_t i = 0; i < reg.size(); ++i) {
    const sched::GpuInfo& g = reg[i];
    out += g.uuid + "," + std::to_string(g.split_count) + "," + std::to_string(g.memory_mib) + "," +
           std::to_string(g.cores) + "," + LegacyDeviceType(gpus[i].info.name) + "," +
           std::to_string(g.numa) + "," + (g.healthy ? "true" : "false") + "," +
           std::to_string(g.index) + "," + config.operating_mode + ":";
  }
  return out;
}

StatusOr<std::vector<ContainerDevices>> ParsePodDevices(std::string_view value) {
  auto segs = sched::DecodeContainerDevices(value);
  if (!segs.ok()) return segs.status();
  for (std::size_t c = 0; c < segs->size(); ++c) {
    for (std::size_t d = 0; d < (*segs)[c].size(); ++d) {
      const int32_t cores = (*segs)[c][d].used_cores;
      if (cores > 100) {
        return InvalidArgument("container " + std::to_string(c) + " device " + std::to_string(d) +
                               ": cores '" + std::to_string(cores) + "' is not a percentage");
      }
    }
  }
  return segs;
}

}  // namespace hami::deviceplugin
