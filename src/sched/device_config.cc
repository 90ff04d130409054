// device-config.yaml parsing and validation (device_config.h).
#include "sched/device_config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>

namespace hami::sched {
namespace {

// yaml-cpp throws on a subscript of a scalar and on a failed conversion; every access goes
// through these, which check the node's kind first, so errors become values here.
std::string Shown(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar().substr(0, 64) + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "null";
}

template <typename T>
Status Convert(const YAML::Node& n, const std::string& where, T& out) {
  if (!n.IsScalar()) return InvalidArgument(where + ": expected a value, got " + Shown(n));
  try {
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(where + ": cannot read " + Shown(n));
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(out)) return InvalidArgument(where + ": " + Shown(n) + " is not finite");
  }
  return Status::Ok();
}

template <typename T>
Status ConvertList(const YAML::Node& n, const std::string& where, std::vector<T>& out) {
  if (!n.IsSequence()) return InvalidArgument(where + ": expected a list, got " + Shown(n));
  for (std::size_t i = 0; i < n.size(); ++i) {
    T v{};
    HAMI_RETURN_IF_ERROR(Convert(n[i], where + "[" + std::to_string(i) + "]", v));
    out.push_back(std::move(v));
  }
  return Status::Ok();
}

// `map` must be a mapping (callers check). Absent or null keys leave `out` unchanged.
template <typename T>
Status Get(const YAML::Node& map, const char* key, const std::string& where, T& out) {
  const YAML::Node n = map[key];
  if (!n || n.IsNull()) return Status::Ok();
  return Convert(n, where + "." + key, out);
}

template <typename T>
Status GetOpt(const YAML::Node& map, const char* key, const std::string& where,
              std::optional<T>& out) {
  const YAML::Node n = map[key];
  if (!n || n.IsNull()) return Status::Ok();
  T v{};
  HAMI_RETURN_IF_ERROR(Convert(n, where + "." + key, v));
  out = v;
  return Status::Ok();
}

Status ParseNvidia(const YAML::Node& n, NvidiaConfig& c) {
  const std::string w = "nvidia";
  if (!n.IsMap()) return InvalidArgument("nvidia: expected a mapping, got " + Shown(n));
  HAMI_RETURN_IF_ERROR(Get(n, "resourceCountName", w, c.resource_count_name));
  HAMI_RETURN_IF_ERROR(Get(n, "resourceMemoryName", w, c.resource_memory_name));
  HAMI_RETURN_IF_ERROR(
      Get(n, "resourceMemoryPercentageName", w, c.resource_memory_percentage_name));
  HAMI_RETURN_IF_ERROR(Get(n, "resourceCoreName", w, c.resource_core_name));
  HAMI_RETURN_IF_ERROR(Get(n, "resourcePriorityName", w, c.resource_priority_name));
  HAMI_RETURN_IF_ERROR(Get(n, "defaultMemory", w, c.default_memory));
  HAMI_RETURN_IF_ERROR(Get(n, "defaultCores", w, c.default_cores));
  HAMI_RETURN_IF_ERROR(Get(n, "defaultGPUNum", w, c.default_gpu_num));
  HAMI_RETURN_IF_ERROR(Get(n, "memoryFactor", w, c.memory_factor));
  HAMI_RETURN_IF_ERROR(Get(n, "deviceSplitCount", w, c.device_split_count));
  HAMI_RETURN_IF_ERROR(Get(n, "deviceMemoryScaling", w, c.device_memory_scaling));
  HAMI_RETURN_IF_ERROR(Get(n, "deviceCoreScaling", w, c.device_core_scaling));
  HAMI_RETURN_IF_ERROR(Get(n, "gpuCorePolicy", w, c.gpu_core_policy));
  HAMI_RETURN_IF_ERROR(GetOpt(n, "libCudaLogLevel", w, c.lib_cuda_log_level));
  HAMI_RETURN_IF_ERROR(Get(n, "disableCoreLimit", w, c.disable_core_limit));
  return Status::Ok();
}

Status ParseNode(const YAML::Node& n, const std::string& w, NodeOverride& o) {
  if (!n.IsMap()) return InvalidArgument(w + ": expected a mapping, got " + Shown(n));
  HAMI_RETURN_IF_ERROR(Get(n, "name", w, o.name));
  HAMI_RETURN_IF_ERROR(Get(n, "operatingmode", w, o.operating_mode));
  HAMI_RETURN_IF_ERROR(GetOpt(n, "devicememoryscaling", w, o.device_memory_scaling));
  HAMI_RETURN_IF_ERROR(GetOpt(n, "devicecorescaling", w, o.device_core_scaling));
  HAMI_RETURN_IF_ERROR(GetOpt(n, "devicesplitcount", w, o.device_split_count));
  const YAML::Node f = n["filterdevices"];
  if (!f || f.IsNull()) return Status::Ok();
  const std::string fw = w + ".filterdevices";
  if (!f.IsMap()) return InvalidArgument(fw + ": expected a mapping {uuid, index}, got " + Shown(f));
  if (const YAML::Node u = f["uuid"]; u && !u.IsNull()) {
    HAMI_RETURN_IF_ERROR(ConvertList(u, fw + ".uuid", o.filter_uuids));
  }
  if (const YAML::Node i = f["index"]; i && !i.IsNull()) {
    HAMI_RETURN_IF_ERROR(ConvertList(i, fw + ".index", o.filter_indexes));
  }
  return Status::Ok();
}

Status ParseNodeList(const YAML::Node& list, std::vector<NodeOverride>& out) {
  if (!list.IsSequence()) return InvalidArgument("nodeconfig: expected a list, got " + Shown(list));
  for (std::size_t i = 0; i < list.size(); ++i) {
    NodeOverride o;
    HAMI_RETURN_IF_ERROR(ParseNode(list[i], "nodeconfig[" + std::to_string(i) + "]", o));
    HAMI_RETURN_IF_ERROR(o.Validate(i));
    out.push_back(std::move(o));
  }
  return Status::Ok();
}

StatusOr<YAML::Node> Load(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("not valid YAML: ") + e.what());
  }
}

Status Range(double v, double lo_excl, double hi, const std::string& key) {
  if (!std::isfinite(v) || v <= lo_excl || v > hi) {
    return InvalidArgument(key + ": " + std::to_string(v) + " is out of range (" +
                           std::to_string(lo_excl) + ", " + std::to_string(hi) + "]");
  }
  return Status::Ok();
}

}  // namespace

Status NvidiaConfig::Validate() const {
  if (device_split_count < 1 || device_split_count > kMaxSplitCount) {
    return InvalidArgument("nvidia.deviceSplitCount: must be 1.." +
                           std::to_string(kMaxSplitCount) + ", got " +
                           std::to_string(device_split_count));
  }
  HAMI_RETURN_IF_ERROR(Range(device_memory_scaling, 0, kMaxScaling, "nvidia.deviceMemoryScaling"));
  HAMI_RETURN_IF_ERROR(Range(device_core_scaling, 0, kMaxScaling, "nvidia.deviceCoreScaling"));
  if (!std::isfinite(memory_factor) || memory_factor < 1 || memory_factor > kMaxMemoryFactor) {
    return InvalidArgument("nvidia.memoryFactor: must be 1.." +
                           std::to_string(static_cast<int>(kMaxMemoryFactor)));
  }
  if (default_memory < 0 || default_memory > kMaxDefaultMemoryMiB) {
    return InvalidArgument("nvidia.defaultMemory: must be 0.." +
                           std::to_string(kMaxDefaultMemoryMiB) + " MiB");
  }
  if (default_cores < 0 || default_cores > 100) {
    return InvalidArgument("nvidia.defaultCores: must be 0..100");
  }
  if (default_gpu_num < 1 || default_gpu_num > kMaxDefaultGpuNum) {
    return InvalidArgument("nvidia.defaultGPUNum: must be 1.." +
                           std::to_string(kMaxDefaultGpuNum));
  }
  if (lib_cuda_log_level && (*lib_cuda_log_level < 0 || *lib_cuda_log_level > 4)) {
    return InvalidArgument("nvidia.libCudaLogLevel: must be 0..4");
  }
  if (gpu_core_policy != "default" && gpu_core_policy != "force" && gpu_core_policy != "disable") {
    return InvalidArgument("nvidia.gpuCorePolicy: '" + gpu_core_policy +
                           "' is not one of default, force, disable");
  }
  return Status::Ok();
}

Status NodeOverride::Validate(std::size_t i) const {
  const std::string w = "nodeconfig[" + std::to_string(i) + "]";
  if (name.empty()) return InvalidArgument(w + ".name: missing");
  if (!operating_mode.empty() && operating_mode != "hami-core" && operating_mode != "mig" &&
      operating_mode != "mps") {
    return InvalidArgument(w + ".operatingmode: '" + operating_mode +
                           "' is not one of hami-core, mig, mps");
  }
  if (device_memory_scaling) {
    HAMI_RETURN_IF_ERROR(Range(*device_memory_scaling, 0, kMaxScaling, w + ".devicememoryscaling"));
  }
  if (device_core_scaling) {
    HAMI_RETURN_IF_ERROR(Range(*device_core_scaling, 0, kMaxScaling, w + ".devicecorescaling"));
  }
  if (device_split_count && (*device_split_count < 1 || *device_split_count > kMaxSplitCount)) {
    return InvalidArgument(w + ".devicesplitcount: must be 1.." + std::to_string(kMaxSplitCount));
  }
  return Status::Ok();
}

Status DeviceConfig::Validate() const {
  HAMI_RETURN_IF_ERROR(nvidia.Validate());
  for (std::size_t i = 0; i < nodes.size(); ++i) HAMI_RETURN_IF_ERROR(nodes[i].Validate(i));
  return Status::Ok();
}

StatusOr<DeviceConfig> ParseDeviceConfig(const std::string& yaml_text) {
  auto root = Load(yaml_text);
  if (!root.ok()) return root.status();
  DeviceConfig c;
  if (root->IsNull()) return c;
  if (!root->IsMap()) {
    return InvalidArgument("device config: expected a mapping at the top, got " + Shown(*root));
  }
  // Last line of defence: the helpers above check kinds, but yaml-cpp must never throw past here.
  try {
    if (const YAML::Node n = (*root)["nvidia"]; n && !n.IsNull()) {
      HAMI_RETURN_IF_ERROR(ParseNvidia(n, c.nvidia));
    }
    if (const YAML::Node n = (*root)["nodeconfig"]; n && !n.IsNull()) {
      HAMI_RETURN_IF_ERROR(ParseNodeList(n, c.nodes));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("device config: ") + e.what());
  }
  HAMI_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status ParseNodeConfigs(const std::string& text, DeviceConfig& config) {
  auto root = Load(text);
  if (!root.ok()) return root.status();
  if (root->IsNull()) return Status::Ok();
  if (!root->IsMap() || !(*root)["nodeconfig"]) {
    return InvalidArgument("node config: expected {\"nodeconfig\": [...]}");
  }
  try {
    return ParseNodeList((*root)["nodeconfig"], config.nodes);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("node config: ") + e.what());
  }
}

NodeDeviceConfig ResolveForNode(const DeviceConfig& config, const std::string& node_name) {
  NodeDeviceConfig out;
  out.nvidia = config.nvidia;
  for (const auto& o : config.nodes) {
    if (o.name != node_name) continue;
    if (!o.operating_mode.empty()) out.operating_mode = o.operating_mode;
    if (o.device_memory_scaling) out.nvidia.device_memory_scaling = *o.device_memory_scaling;
    if (o.device_core_scaling) out.nvidia.device_core_scaling = *o.device_core_scaling;
    if (o.device_split_count) out.nvidia.device_split_count = *o.device_split_count;
    out.filter_uuids.insert(out.filter_uuids.end(), o.filter_uuids.begin(), o.filter_uuids.end());
    out.filter_indexes.insert(out.filter_indexes.end(), o.filter_indexes.begin(),
                              o.filter_indexes.end());
  }
  return out;
}

}  // namespace hami::sched
