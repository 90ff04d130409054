// Builders shared by the sched tests (not part of the library).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sched/engine.h"
#include "sched/model.h"

namespace hami::sched::testing {

inline GpuInfo G(std::string uuid, int64_t mem = 10000, std::string type = "NVIDIA-A100",
                 int32_t numa = 0, int32_t split = 10, int32_t cores = 100) {
  GpuInfo g;
  g.uuid = uuid;
  g.index = uuid.empty() ? 0 : uuid.back() - '0';
  g.type = std::move(type);
  g.memory_mib = mem;
  g.cores = cores;
  g.split_count = split;
  g.numa = numa;
  return g;
}

inline NodeInfo N(std::string name, std::vector<GpuInfo> gpus) {
  NodeInfo n;
  n.name = std::move(name);
  n.gpus = std::move(gpus);
  return n;
}

inline ContainerRequest C(std::optional<int32_t> count, std::optional<int64_t> mem = std::nullopt,
                          std::optional<int32_t> cores = std::nullopt,
                          std::optional<int32_t> pct = std::nullopt) {
  ContainerRequest r;
  r.gpu_count = count;
  r.memory_mib = mem;
  r.cores = cores;
  r.memory_percent = pct;
  return r;
}

inline PodRequest P(std::vector<ContainerRequest> containers,
                    std::vector<ContainerRequest> init = {}) {
  PodRequest p;
  p.uid = "pod";
  p.containers = std::move(containers);
  p.init_containers = std::move(init);
  return p;
}

// A placement of one app container on the given devices.
inline PodPlacement One(std::vector<DeviceAlloc> devs) {
  PodPlacement p;
  p.containers = {std::move(devs)};
  return p;
}

inline DeviceAlloc D(std::string uuid, int64_t mem, int32_t cores = 0) {
  return DeviceAlloc{std::move(uuid), "NVIDIA-A100", mem, cores};
}

}  // namespace hami::sched::testing
