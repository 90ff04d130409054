// The seam between the node agents and the GPU driver: discovery, usage and health events.
// NvmlBackend (nvml_backend.h) talks to libnvidia-ml.so.1 through dlopen; FakeGpuBackend
// (fake_gpu_backend.h) is an in-memory stand-in for unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::deviceplugin {

struct GpuInfo {
  std::string uuid;  // "GPU-..."
  unsigned index = 0;
  std::string name;           // NVML product name, e.g. "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;  // physical memory
  int numa = -1;              // NUMA node, -1 when unknown
  bool mig_enabled = false;
};

struct GpuUsage {
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  unsigned utilization_percent = 0;
};

// A change of health seen by the driver. `healthy == false` for a critical XID.
struct HealthEvent {
  std::string uuid;
  bool healthy = false;
  uint64_t xid = 0;
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  // Every GPU of the node. Errors: kUnavailable when the driver cannot be reached.
  virtual StatusOr<std::vector<GpuInfo>> ListGpus() = 0;
  // Errors: kNotFound for an unknown UUID, kUnavailable when the driver fails.
  virtual StatusOr<GpuUsage> Usage(const std::string& uuid) = 0;
  // Waits up to `timeout` for a health event; nullopt when none came.
  // Errors: kUnavailable when events cannot be received at all (callers fall back to polling).
  virtual StatusOr<std::optional<HealthEvent>> WaitHealthEvent(
      std::chrono::milliseconds timeout) = 0;
  // Whether a device currently answers the driver (used to notice recovery after an XID).
  virtual bool Probe(const std::string& uuid) = 0;
};

}  // namespace hami::deviceplugin
