// The seam between the daemon and the GPU driver: which GPUs this host has. NvmlGpuSource
// talks to libnvidia-ml.so.1 through dlopen (the real driver or the fake one from
// src/fakegpu); MemoryGpuSource is an in-memory list for unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::hostd {

struct HostGpu {
  std::string uuid;  // "GPU-..."
  int32_t index = 0;
  std::string name;           // NVML product name
  uint64_t memory_bytes = 0;  // physical memory
  int32_t numa = 0;
  bool healthy = true;
};

class GpuSource {
 public:
  virtual ~GpuSource() = default;
  // Errors: kUnavailable when the driver cannot be asked.
  virtual StatusOr<std::vector<HostGpu>> List() = 0;
  // Where the GPUs come from, for logs and `hami gpus` ("NVML /usr/lib/.../libnvidia-ml.so.1").
  virtual std::string Describe() const = 0;
  // True for the fake driver or the in-memory list: every view labels these "fake GPU".
  virtual bool fake() const = 0;
};

class MemoryGpuSource final : public GpuSource {
 public:
  explicit MemoryGpuSource(std::vector<HostGpu> gpus) : gpus_(std::move(gpus)) {}
  StatusOr<std::vector<HostGpu>> List() override { return gpus_; }
  std::string Describe() const override { return "in-memory fake GPUs"; }
  bool fake() const override { return true; }

 private:
  std::vector<HostGpu> gpus_;
};

// Loads `library` (a dlopen name or path) and initialises NVML. `fake` forces the fake label;
// it is also set when the loaded library's path contains "fakegpu".
// Errors: kUnavailable when the library cannot be loaded, lacks a needed symbol, or nvmlInit
// fails.
StatusOr<std::unique_ptr<GpuSource>> OpenNvmlGpuSource(const std::string& library, bool fake);

}  // namespace hami::hostd
