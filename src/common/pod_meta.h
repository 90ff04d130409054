// The per-container allocation record the device plugin writes at Allocate time
// (<hookPath>/vgpu/allocations/<podUID>_<container>/pod.json) and the node monitor reads, so
// per-container series exist before CUDA starts. One codec for both sides of the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hami::common {

struct PodMetaDevice {
  std::string uuid;
  std::string type;
  int64_t memory_mib = 0;
  int64_t cores = 0;
};

struct PodMeta {
  std::string ns, pod, pod_uid, container;
  int64_t allocated_unix = 0;
  std::vector<PodMetaDevice> devices;
};

std::string EncodePodMeta(const PodMeta& meta);
// Errors: kInvalidArgument naming the missing or mistyped field (never throws).
StatusOr<PodMeta> ParsePodMeta(std::string_view json_text);

}  // namespace hami::common
