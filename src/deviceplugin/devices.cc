#include "deviceplugin/devices.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace hami::deviceplugin {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t p = s.find(sep, start);
    if (p == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

bool ParseInt(const std::string& s, long long& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out >= 0;
}

}  // namespace

std::vector<NodeGpu> FilterGpus(const std::vector<GpuInfo>& gpus, const NodeConfig& config) {
  std::vector<NodeGpu> out;
  for (const auto& g : gpus) {
    if (std::find(config.filter_uuids.begin(), config.filter_uuids.end(), g.uuid) !=
            config.filter_uuids.end() ||
        std::find(config.filter_indexes.begin(), config.filter_indexes.end(), g.index) !=
            config.filter_indexes.end()) {
      continue;
    }
    out.push_back({g, true});
  }
  return out;
}

std::string VirtualId(const std::string& uuid, int n) { return uuid + "-" + std::to_string(n); }

std::string VirtualIdToUuid(const std::string& id) {
  std::size_t p = id.rfind('-');
  if (p == std::string::npos || p == 0 || p + 1 == id.size()) return "";
  for (std::size_t i = p + 1; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return "";
  }
  return id.substr(0, p);
}

std::string DeviceType(const std::string& nvml_name) {
  if (nvml_name.find("NVIDIA") != std::string::npos) return nvml_name;
  return "NVIDIA-" + nvml_name;
}

std::string EncodeRegisterAnnotation(const std::vector<NodeGpu>& gpus, const NodeConfig& config) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& g : gpus) {
    const double mib = static_cast<double>(g.info.memory_bytes / (1024 * 1024));
    list.push_back({
        {"id", g.info.uuid},
        {"index", g.info.index},
        {"count", config.nvidia.device_split_count},
        {"devmem", static_cast<long long>(std::floor(mib * config.nvidia.device_memory_scaling))},
        {"devcore", static_cast<long long>(std::lround(100 * config.nvidia.device_core_scaling))},
        {"type", DeviceType(g.info.name)},
        {"numa", std::max(g.info.numa, 0)},
        {"mode", config.operating_mode},
        {"health", g.healthy},
    });
  }
  return list.dump();
}

StatusOr<std::vector<ContainerDevices>> ParsePodDevices(const std::string& value) {
  std::vector<ContainerDevices> out;
  if (value.empty()) return out;
  std::vector<std::string> segments = Split(value, ';');
  // A well-formed value ends with ';', which leaves one empty trailing piece.
  if (segments.back().empty()) segments.pop_back();
  for (std::size_t s = 0; s < segments.size(); ++s) {
    ContainerDevices devs;
    std::vector<std::string> items = Split(segments[s], ':');
    if (items.back().empty()) items.pop_back();
    for (std::size_t d = 0; d < items.size(); ++d) {
      const std::string where =
          "container segment " + std::to_string(s) + " device " + std::to_string(d);
      std::vector<std::string> f = Split(items[d], ',');
      if (f.size() < 4) {
        return InvalidArgument(where + ": expected UUID,Type,mem,cores but got '" + items[d] + "'");
      }
      ContainerDevice dev;
      dev.uuid = f[0];
      dev.type = f[1];
      if (dev.uuid.empty()) return InvalidArgument(where + ": empty UUID");
      if (!ParseInt(f[2], dev.memory_mib)) {
        return InvalidArgument(where + ": memory '" + f[2] + "' is not a number of MiB");
      }
      if (!ParseInt(f[3], dev.cores) || dev.cores > 100) {
        return InvalidArgument(where + ": cores '" + f[3] + "' is not a percentage");
      }
      devs.push_back(std::move(dev));
    }
    out.push_back(std::move(devs));
  }
  return out;
}

std::string EncodePodDevices(const std::vector<ContainerDevices>& containers) {
  std::string out;
  for (const auto& devs : containers) {
    for (const auto& d : devs) {
      out += d.uuid + "," + d.type + "," + std::to_string(d.memory_mib) + "," +
             std::to_string(d.cores) + ":";
    }
    out += ";";
  }
  return out;
}

}  // namespace hami::deviceplugin
