// HAMi's metric names before v2.8 (HAMi's vGPUmonitor --legacy-metrics): the same values under
// the old names and label names, so dashboards written for older HAMi keep their data.
#include <map>
#include <string>

#include "monitor/collector.h"

namespace hami::monitor {
namespace {

struct LegacyName {
  const char* name;
  const char* help;
};

// New family name -> legacy name. Label names map through kLegacyLabels.
const std::map<std::string, LegacyName>& LegacyNames() {
  static const auto* m = new std::map<std::string, LegacyName>{
      {"hami_host_gpu_memory_used_bytes", {"HostGPUMemoryUsage", "GPU device memory usage"}},
      {"hami_host_gpu_utilization_ratio", {"HostCoreUtilization", "GPU core utilization"}},
      {"hami_vgpu_memory_used_bytes", {"vGPU_device_memory_usage_in_bytes", "vGPU device usage"}},
      {"hami_vgpu_memory_limit_bytes", {"vGPU_device_memory_limit_in_bytes", "vGPU device limit"}},
      // HAMi adds labels context, module, data and offset (HAMi-core's per-process breakdown);
      // the accounting file keeps only the total, so they stay absent rather than made up.
      {"hami_container_device_memory_bytes",
       {"Device_memory_desc_of_container", "Container device memory description"}},
      {"hami_container_device_utilization_ratio",
       {"Device_utilization_desc_of_container", "Container device utilization description"}},
      {"hami_container_last_kernel_elapsed_seconds",
       {"Device_last_kernel_of_container", "Container device last kernel description"}},
      {"hami_mig_device_info", {"MigInfo", "Mig device information for container"}},
  };
  return *m;
}

const std::map<std::string, std::string>& LegacyLabels() {
  static const auto* m = new std::map<std::string, std::string>{{"node", "nodeid"},
                                                                {"device_index", "deviceidx"},
                                                                {"device_uuid", "deviceuuid"},
                                                                {"device_type", "devicetype"},
                                                                {"namespace", "podnamespace"},
                                                                {"pod", "podname"},
                                                                {"container", "ctrname"},
                                                                {"vdevice_index", "vdeviceid"},
                                                                {"gpu_instance_id", "instanceid"},
                                                                // MigInfo has none of these:
                                                                {"mig_uuid", ""},
                                                                {"profile", ""},
                                                                {"compute_instance_id", ""}};
  return *m;
}

}  // namespace

void AppendLegacyFamilies(std::vector<Family>& out) {
  std::vector<Family> legacy;
  for (const auto& f : out) {
    auto it = LegacyNames().find(f.name);
    if (it == LegacyNames().end()) continue;
    Family l{it->second.name, it->second.help, f.type, {}};
    for (const auto& s : f.samples) {
      Labels labels;
      for (const auto& [k, v] : s.labels) {
        auto lk = LegacyLabels().find(k);
        if (lk == LegacyLabels().end()) {
          labels.emplace_back(k, v);
        } else if (!lk->second.empty()) {
          labels.emplace_back(lk->second, v);
        }
      }
      l.samples.push_back({std::move(labels), s.value});
    }
    legacy.push_back(std::move(l));
  }
  for (auto& l : legacy) out.push_back(std::move(l));
}

}  // namespace hami::monitor
