#include "k8s/extender/pod_request.h"

#include <cmath>
#include <limits>

#include "k8s/client/kube_client.h"
#include "sched/annotation.h"

namespace hami::k8s {

StatusOr<int64_t> ParseQuantity(const Json& value) {
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v < 0) return InvalidArgument("negative quantity " + std::to_string(v));
    return v;
  }
  if (value.is_number_unsigned()) {
    auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument("quantity too large");
    }
    return static_cast<int64_t>(u);
  }
  if (!value.is_string()) return InvalidArgument("quantity is not a string: " + value.dump());
  const std::string s = value.get<std::string>();
  std::size_t i = 0;
  if (i < s.size() && s[i] == '+') ++i;
  std::size_t digits_start = i;
  int64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) {
      return InvalidArgument("quantity \"" + s + "\" is too large");
    }
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  if (i == digits_start) return InvalidArgument("quantity \"" + s + "\" is not a number");
  if (i < s.size() && s[i] == '.') {
    return InvalidArgument("quantity \"" + s + "\" is not a whole number");
  }
  std::string suffix = s.substr(i);
  int64_t mult = 1;
  if (suffix.empty()) {
  } else if (suffix == "k") {
    mult = 1000;
  } else if (suffix == "M") {
    mult = 1000 * 1000;
  } else if (suffix == "G") {
    mult = 1000LL * 1000 * 1000;
  } else if (suffix == "T") {
    mult = 1000LL * 1000 * 1000 * 1000;
  } else if (suffix == "Ki") {
    mult = 1024;
  } else if (suffix == "Mi") {
    mult = 1024 * 1024;
  } else if (suffix == "Gi") {
    mult = 1024LL * 1024 * 1024;
  } else if (suffix == "Ti") {
    mult = 1024LL * 1024 * 1024 * 1024;
  } else if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    int exp = 0;
    for (std::size_t k = 1; k < suffix.size(); ++k) {
      if (suffix[k] < '0' || suffix[k] > '9' || exp > 18) {
        return InvalidArgument("quantity \"" + s + "\" has a bad exponent");
      }
      exp = exp * 10 + (suffix[k] - '0');
    }
    for (int k = 0; k < exp; ++k) {
      if (mult > std::numeric_limits<int64_t>::max() / 10) {
        return InvalidArgument("quantity \"" + s + "\" is too large");
      }
      mult *= 10;
    }
  } else if (suffix == "m" || suffix == "u" || suffix == "n") {
    return InvalidArgument("quantity \"" + s + "\" is a fraction");
  } else {
    return InvalidArgument("quantity \"" + s + "\" has an unknown suffix \"" + suffix + "\"");
  }
  if (v != 0 && mult > std::numeric_limits<int64_t>::max() / v) {
    return InvalidArgument("quantity \"" + s + "\" is too large");
  }
  return v * mult;
}

namespace {

const Json* Find(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// limits[name], falling back to requests[name].
const Json* ResourceValue(const Json& container, const std::string& name) {
  const Json* res = Find(container, "resources");
  if (!res) return nullptr;
  for (const char* section : {"limits", "requests"}) {
    const Json* m = Find(*res, section);
    if (m && m->is_object()) {
      auto it = m->find(name);
      if (it != m->end()) return &*it;
    }
  }
  return nullptr;
}

const Json& Containers(const Json& pod, const char* which) {
  static const Json kEmpty = Json::array();
  const Json* spec = Find(pod, "spec");
  if (!spec) return kEmpty;
  const Json* c = Find(*spec, which);
  return (c && c->is_array()) ? *c : kEmpty;
}

template <typename T>
Status ReadInt(const Json& container, const std::string& name, const std::string& where,
               std::optional<T>& out) {
  const Json* v = ResourceValue(container, name);
  if (!v) return Status::Ok();
  auto q = ParseQuantity(*v);
  if (!q.ok()) return InvalidArgument(where + " " + name + ": " + q.status().message());
  if (*q > std::numeric_limits<T>::max()) {
    return InvalidArgument(where + " " + name + ": " + std::to_string(*q) + " is too large");
  }
  out = static_cast<T>(*q);
  return Status::Ok();
}

StatusOr<sched::ContainerRequest> ContainerFromJson(const Json& c, const ResourceNames& names,
                                                    double memory_factor,
                                                    const std::string& where) {
  sched::ContainerRequest r;
  HAMI_RETURN_IF_ERROR(ReadInt(c, names.count, where, r.gpu_count));
  HAMI_RETURN_IF_ERROR(ReadInt(c, names.memory, where, r.memory_mib));
  HAMI_RETURN_IF_ERROR(ReadInt(c, names.memory_percentage, where, r.memory_percent));
  HAMI_RETURN_IF_ERROR(ReadInt(c, names.cores, where, r.cores));
  HAMI_RETURN_IF_ERROR(ReadInt(c, names.priority, where, r.priority));
  if (r.memory_mib && memory_factor != 1) {
    double scaled = static_cast<double>(*r.memory_mib) * memory_factor;
    if (scaled > 9e15) return InvalidArgument(where + " " + names.memory + ": too large");
    r.memory_mib = static_cast<int64_t>(std::llround(scaled));
  }
  return r;
}

std::string ContainerName(const Json& c, std::size_t i) {
  if (c.is_object() && c.contains("name") && c["name"].is_string()) {
    return c["name"].get<std::string>();
  }
  return "#" + std::to_string(i);
}

}  // namespace

bool UsesManagedResources(const Json& pod, const ResourceNames& names) {
  for (const char* which : {"initContainers", "containers"}) {
    for (const auto& c : Containers(pod, which)) {
      for (const auto* n :
           {&names.count, &names.memory, &names.memory_percentage, &names.cores, &names.priority}) {
        if (ResourceValue(c, *n)) return true;
      }
    }
  }
  return false;
}

StatusOr<sched::PodRequest> PodRequestFromJson(const Json& pod, const ResourceNames& names,
                                               double memory_factor) {
  if (!pod.is_object()) return InvalidArgument("pod is not a JSON object");
  sched::PodRequest req;
  req.uid = MetaString(pod, "uid");
  req.name = ObjectKey(pod);
  const Json& init = Containers(pod, "initContainers");
  for (std::size_t i = 0; i < init.size(); ++i) {
    auto c = ContainerFromJson(init[i], names, memory_factor,
                               "init container \"" + ContainerName(init[i], i) + "\"");
    if (!c.ok()) return c.status();
    req.init_containers.push_back(*c);
  }
  const Json& app = Containers(pod, "containers");
  for (std::size_t i = 0; i < app.size(); ++i) {
    auto c = ContainerFromJson(app[i], names, memory_factor,
                               "container \"" + ContainerName(app[i], i) + "\"");
    if (!c.ok()) return c.status();
    req.containers.push_back(*c);
  }
  std::map<std::string, std::string> annotations;
  if (const Json* md = Find(pod, "metadata")) {
    if (const Json* a = Find(*md, "annotations"); a && a->is_object()) {
      for (auto it = a->begin(); it != a->end(); ++it) {
        if (it.value().is_string()) annotations[it.key()] = it.value().get<std::string>();
      }
    }
  }
  auto opts = sched::ParsePodOptions(annotations);
  if (!opts.ok()) return opts.status();
  req.options = std::move(*opts);
  return req;
}

StatusOr<std::optional<sched::PodPlacement>> PlacementFromPod(const Json& pod) {
  std::string text = Annotation(pod, sched::kDevicesAllocatedAnnotation);
  if (text.empty()) text = Annotation(pod, sched::kDevicesToAllocateAnnotation);
  if (text.empty()) return std::optional<sched::PodPlacement>();
  int32_t num_init = static_cast<int32_t>(Containers(pod, "initContainers").size());
  auto p = sched::DecodePlacement(text, num_init);
  if (!p.ok()) return p.status();
  return std::optional<sched::PodPlacement>(std::move(*p));
}

std::string PodPhase(const Json& pod) {
  const Json* st = Find(pod, "status");
  if (!st) return {};
  const Json* ph = Find(*st, "phase");
  return (ph && ph->is_string()) ? ph->get<std::string>() : std::string();
}

bool PodTerminated(const Json& pod) {
  std::string p = PodPhase(pod);
  return p == "Succeeded" || p == "Failed";
}

std::string PodNodeName(const Json& pod) {
  const Json* spec = Find(pod, "spec");
  if (!spec) return {};
  const Json* n = Find(*spec, "nodeName");
  return (n && n->is_string()) ? n->get<std::string>() : std::string();
}

}  // namespace hami::k8s
