// pod.json codec (pod_meta.h).
#include "common/pod_meta.h"

#include <nlohmann/json.hpp>

namespace hami::common {

std::string EncodePodMeta(const PodMeta& m) {
  nlohmann::json j = {{"namespace", m.ns},         {"pod", m.pod},
                      {"podUID", m.pod_uid},       {"container", m.container},
                      {"allocatedUnix", m.allocated_unix}, {"devices", nlohmann::json::array()}};
  for (const auto& d : m.devices) {
    j["devices"].push_back(
        {{"uuid", d.uuid}, {"type", d.type}, {"memoryMiB", d.memory_mib}, {"cores", d.cores}});
  }
  return j.dump(2) + "\n";
}

StatusOr<PodMeta> ParsePodMeta(std::string_view json_text) {
  PodMeta m;
  try {
    auto j = nlohmann::json::parse(json_text);
    m.ns = j.at("namespace").get<std::string>();
    m.pod = j.at("pod").get<std::string>();
    m.pod_uid = j.at("podUID").get<std::string>();
    m.container = j.at("container").get<std::string>();
    m.allocated_unix = j.value("allocatedUnix", int64_t{0});
    for (const auto& d : j.at("devices")) {
      m.devices.push_back({d.at("uuid").get<std::string>(), d.value("type", std::string()),
                           d.value("memoryMiB", int64_t{0}), d.value("cores", int64_t{0})});
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("pod.json: ") + e.what());
  }
  return m;
}

}  // namespace hami::common
