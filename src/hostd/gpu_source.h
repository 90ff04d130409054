// The daemon's names for the one GPU seam (src/gpu): GPUs come from gpu::Backend, NVML through
// dlopen (the real driver or the fake one from src/fakegpu) or an in-memory list for tests.
#pragma once

#include <memory>
#include <string>

#include "gpu/fake_backend.h"
#include "gpu/nvml.h"

namespace hami::hostd {

using GpuSource = gpu::Backend;
using HostGpu = gpu::GpuInfo;
using MemoryGpuSource = gpu::FakeBackend;

// See gpu::OpenNvml.
inline StatusOr<std::unique_ptr<GpuSource>> OpenNvmlGpuSource(const std::string& library,
                                                              bool fake) {
  return gpu::OpenNvml(library, fake);
}

}  // namespace hami::hostd
