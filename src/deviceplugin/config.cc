#include "deviceplugin/config.h"

#include <yaml-cpp/yaml.h>

#include "common/file_reader.h"

namespace hami::deviceplugin {
namespace {

// yaml-cpp throws; every access goes through these so errors become values here.
template <typename T>
Status Get(const YAML::Node& map, const char* key, const std::string& where, T& out) {
  YAML::Node n = map[key];
  if (!n) return Status::Ok();
  try {
    out = n.as<T>();
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + "." + key + ": cannot read '" + n.Scalar() + "'");
  }
  return Status::Ok();
}

template <typename T>
Status GetOpt(const YAML::Node& map, const char* key, const std::string& where,
              std::optional<T>& out) {
  if (!map[key]) return Status::Ok();
  T v{};
  HAMI_RETURN_IF_ERROR(Get(map, key, where, v));
  out = v;
  return Status::Ok();
}

Status ValidatePolicy(const std::string& p, const std::string& where) {
  if (p == "default" || p == "force" || p == "disable") return Status::Ok();
  return InvalidArgument(where + ": '" + p + "' is not one of default, force, disable");
}

Status ParseNvidia(const YAML::Node& n, NvidiaConfig& c) {
  const std::string w = "nvidia";
  if (!n.IsMap()) return InvalidArgument("nvidia: expected a mapping");
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
  if (c.device_split_count < 1) return InvalidArgument("nvidia.deviceSplitCount: must be >= 1");
  if (c.device_memory_scaling <= 0) {
    return InvalidArgument("nvidia.deviceMemoryScaling: must be > 0");
  }
  if (c.device_core_scaling <= 0) return InvalidArgument("nvidia.deviceCoreScaling: must be > 0");
  if (c.memory_factor < 1) return InvalidArgument("nvidia.memoryFactor: must be >= 1");
  if (c.default_memory < 0 || c.default_cores < 0 || c.default_cores > 100) {
    return InvalidArgument("nvidia.defaultMemory/defaultCores: out of range");
  }
  if (c.lib_cuda_log_level && (*c.lib_cuda_log_level < 0 || *c.lib_cuda_log_level > 4)) {
    return InvalidArgument("nvidia.libCudaLogLevel: must be 0..4");
  }
  return ValidatePolicy(c.gpu_core_policy, "nvidia.gpuCorePolicy");
}

Status ParseNodeList(const YAML::Node& list, std::vector<NodeOverride>& out) {
  if (!list.IsSequence()) return InvalidArgument("nodeconfig: expected a list");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const YAML::Node n = list[i];
    const std::string w = "nodeconfig[" + std::to_string(i) + "]";
    if (!n.IsMap()) return InvalidArgument(w + ": expected a mapping");
    NodeOverride o;
    HAMI_RETURN_IF_ERROR(Get(n, "name", w, o.name));
    if (o.name.empty()) return InvalidArgument(w + ".name: missing");
    HAMI_RETURN_IF_ERROR(Get(n, "operatingmode", w, o.operating_mode));
    if (!o.operating_mode.empty() && o.operating_mode != "hami-core" && o.operating_mode != "mig" &&
        o.operating_mode != "mps") {
      return InvalidArgument(w + ".operatingmode: '" + o.operating_mode +
                             "' is not one of hami-core, mig, mps");
    }
    HAMI_RETURN_IF_ERROR(GetOpt(n, "devicememoryscaling", w, o.device_memory_scaling));
    HAMI_RETURN_IF_ERROR(GetOpt(n, "devicecorescaling", w, o.device_core_scaling));
    HAMI_RETURN_IF_ERROR(GetOpt(n, "devicesplitcount", w, o.device_split_count));
    if (o.device_memory_scaling && *o.device_memory_scaling <= 0) {
      return InvalidArgument(w + ".devicememoryscaling: must be > 0");
    }
    if (o.device_core_scaling && *o.device_core_scaling <= 0) {
      return InvalidArgument(w + ".devicecorescaling: must be > 0");
    }
    if (o.device_split_count && *o.device_split_count < 1) {
      return InvalidArgument(w + ".devicesplitcount: must be >= 1");
    }
    if (const YAML::Node f = n["filterdevices"]) {
      HAMI_RETURN_IF_ERROR(Get(f, "uuid", w + ".filterdevices", o.filter_uuids));
      HAMI_RETURN_IF_ERROR(Get(f, "index", w + ".filterdevices", o.filter_indexes));
    }
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

}  // namespace

StatusOr<PluginConfig> ParsePluginConfig(const std::string& yaml_text) {
  auto root = Load(yaml_text);
  if (!root.ok()) return root.status();
  PluginConfig c;
  if (root->IsNull()) return c;
  if (!root->IsMap()) return InvalidArgument("device config: expected a mapping at the top");
  if (const YAML::Node n = (*root)["nvidia"]) HAMI_RETURN_IF_ERROR(ParseNvidia(n, c.nvidia));
  if (const YAML::Node n = (*root)["nodeconfig"]) HAMI_RETURN_IF_ERROR(ParseNodeList(n, c.nodes));
  return c;
}

Status ParseNodeConfigs(const std::string& text, PluginConfig& config) {
  auto root = Load(text);
  if (!root.ok()) return root.status();
  if (root->IsNull()) return Status::Ok();
  if (!root->IsMap() || !(*root)["nodeconfig"]) {
    return InvalidArgument("node config: expected {\"nodeconfig\": [...]}");
  }
  return ParseNodeList((*root)["nodeconfig"], config.nodes);
}

StatusOr<std::string> ReadFile(const std::string& path) {
  // ConfigMaps are mounted as links (config.yaml -> ..data/config.yaml): follow them, but never
  // block on a FIFO or read without bound.
  common::ReadFileOptions o;
  o.follow_links = true;
  return common::ReadFileBounded(path, kMaxConfigBytes, o);
}

NodeConfig ResolveForNode(const PluginConfig& config, const std::string& node_name) {
  NodeConfig out;
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

}  // namespace hami::deviceplugin
