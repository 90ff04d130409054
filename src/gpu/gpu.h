// The one seam between host-side code (device plugin, node monitor, `hami serve`) and the GPU
// driver: discovery, usage and health events. NVML through dlopen (nvml.h) in production and
// against the fake driver in CI; FakeBackend (fake_backend.h) in memory for unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::gpu {

struct GpuInfo {
  std::string uuid;  // "GPU-..."
  unsigned index = 0;
  std::string name;           // NVML product name, e.g. "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;  // physical memory
  int numa = -1;              // NUMA node, -1 when unknown
  bool mig_enabled = false;
  bool healthy = true;  // false when the driver reports the GPU lost
};

struct GpuUsage {
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  unsigned utilization_percent = 0;         // SM busy, 0..100
  unsigned memory_utilization_percent = 0;  // memory controller busy, 0..100
};

// Board sensors and error counters (what HAMi's monitor exports per GPU). A field is nullopt
// when the driver says the GPU does not support it (NVML NOT_SUPPORTED), never a made-up 0.
struct GpuTelemetry {
  std::optional<unsigned> temperature_c;    // GPU core sensor, degrees Celsius
  std::optional<unsigned> power_mw;         // board power draw, milliwatts
  std::optional<uint64_t> ecc_corrected;    // lifetime (aggregate) corrected ECC errors
  std::optional<uint64_t> ecc_uncorrected;  // lifetime (aggregate) uncorrected ECC errors
};

// One MIG device of a GPU in MIG mode.
struct MigDevice {
  std::string uuid;         // "MIG-..."
  std::string parent_uuid;  // the GPU's "GPU-..."
  std::string profile;      // "1g.10gb": the NVML name's part after " MIG ", "" if it has none
  unsigned gpu_instance_id = 0;
  unsigned compute_instance_id = 0;
};

// A change of health seen by the driver. `healthy == false` for a critical XID; an empty
// uuid concerns every GPU.
struct HealthEvent {
  std::string uuid;
  bool healthy = false;
  uint64_t xid = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Every GPU of the host, in index order. Errors: kUnavailable when the driver cannot be asked.
  virtual StatusOr<std::vector<GpuInfo>> ListGpus() = 0;
  // Errors: kNotFound for an unknown UUID, kUnavailable when the driver fails.
  virtual StatusOr<GpuUsage> Usage(const std::string& uuid) = 0;
  // Sensors of one GPU. Errors: kNotFound for an unknown UUID, kUnavailable when the driver
  // fails. Backends without sensors report every field unknown.
  virtual StatusOr<GpuTelemetry> Telemetry(const std::string& uuid) {
    auto list = ListGpus();
    if (!list.ok()) return list.status();
    for (const auto& g : *list) {
      if (g.uuid == uuid) return GpuTelemetry{};
    }
    return NotFound("no GPU " + uuid);
  }
  // The MIG devices of every GPU in MIG mode (empty when none). Errors: kUnavailable when the
  // driver fails.
  virtual StatusOr<std::vector<MigDevice>> MigDevices() { return std::vector<MigDevice>{}; }
  // Waits up to `timeout` for a health event; nullopt when none came.
  // Errors: kUnavailable when events cannot be received at all (callers fall back to polling).
  virtual StatusOr<std::optional<HealthEvent>> WaitHealthEvent(
      std::chrono::milliseconds timeout) = 0;
  // Whether a device currently answers the driver (to notice recovery after an XID).
  virtual bool Probe(const std::string& uuid) = 0;
  // Where the GPUs come from, for logs and `hami gpus` ("NVML /usr/lib/.../libnvidia-ml.so.1").
  virtual std::string Describe() const = 0;
  // True for the fake driver or an in-memory list: views label these "fake GPU".
  virtual bool fake() const = 0;
};

// XIDs caused by applications rather than the hardware; they do not make a device unhealthy
// (the list NVIDIA's device plugin skips).
bool IsApplicationXid(uint64_t xid);

}  // namespace hami::gpu
