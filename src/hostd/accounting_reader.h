// Reads the per-slice accounting file that libvgpu.so keeps (layout:
// src/hook/include/hami/vgpu_shm.h) to show live memory use in `hami top` and /metrics.
// Read-only and lock-free: a torn read only shows a number a moment old.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace hami::hostd {

struct DeviceUse {
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;
  uint32_t sm_limit_percent = 0;
  uint64_t last_kernel_ns = 0;  // CLOCK_REALTIME
  uint32_t processes = 0;       // live slots using this device
};

// UUID -> use. Errors: kNotFound when the file does not exist (no CUDA process started yet),
// kInvalidArgument when it is not an accounting file of a known version.
StatusOr<std::map<std::string, DeviceUse>> ReadAccounting(const std::string& path);

}  // namespace hami::hostd
