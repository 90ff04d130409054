#include "deviceplugin/fuzz/fuzz_targets.h"

#include <cstdlib>
#include <string>

#include "deviceplugin/config.h"
#include "deviceplugin/devices.h"
#include "deviceplugin/kube_adapter.h"

namespace hami::deviceplugin::fuzz {

namespace {
std::string Text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}
}  // namespace

void ToAllocate(const uint8_t* data, size_t size) {
  auto segs = ParsePodDevices(Text(data, size));
  if (!segs.ok()) return;
  // What parses encodes to something that parses to the same devices.
  auto text = sched::EncodeContainerDevices(*segs);
  if (!text.ok()) std::abort();
  auto again = ParsePodDevices(*text);
  if (!again.ok() || again->size() != segs->size()) std::abort();
  for (std::size_t i = 0; i < segs->size(); ++i) {
    if ((*again)[i].size() != (*segs)[i].size()) std::abort();
    for (std::size_t d = 0; d < (*segs)[i].size(); ++d) {
      if ((*again)[i][d].uuid != (*segs)[i][d].uuid ||
          (*again)[i][d].used_mem_mib != (*segs)[i][d].used_mem_mib) {
        std::abort();
      }
    }
  }
}

void DeviceConfig(const uint8_t* data, size_t size) {
  auto c = ParsePluginConfig(Text(data, size));
  if (c.ok() && c->nvidia.device_split_count < 1) std::abort();
  PluginConfig pc;
  (void)ParseNodeConfigs(Text(data, size), pc);
}

void PodObject(const uint8_t* data, size_t size) {
  (void)ParsePodList(Text(data, size));
  auto j = nlohmann::json::parse(Text(data, size), nullptr, false);
  if (!j.is_discarded()) (void)PodFromJson(j);
}

}  // namespace hami::deviceplugin::fuzz
