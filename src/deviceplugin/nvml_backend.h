// GpuBackend over the real (or fake) NVML, loaded with dlopen so the binaries start on
// machines without a driver and tests can point at the fake libnvidia-ml.so.1.
#pragma once

#include <memory>
#include <string>

#include "deviceplugin/gpu_backend.h"

namespace hami::deviceplugin {

// `library` is a dlopen name or path ("libnvidia-ml.so.1" by default).
// Errors: kUnavailable when the library cannot be loaded, lacks a needed symbol, or nvmlInit
// fails.
StatusOr<std::unique_ptr<GpuBackend>> OpenNvmlBackend(const std::string& library);

// XIDs caused by applications rather than the hardware; they do not make a device unhealthy
// (the same list NVIDIA's device plugin skips).
bool IsApplicationXid(uint64_t xid);

}  // namespace hami::deviceplugin
