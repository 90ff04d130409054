// gpu::Backend over NVML, loaded with dlopen (prototypes from src/abi/nvml_api.h) so the
// binaries start on machines without a driver and tests can load the fake libnvidia-ml.so.1.
#pragma once

#include <memory>
#include <string>

#include "gpu/gpu.h"

namespace hami::gpu {

// `library` is a dlopen name or path ("libnvidia-ml.so.1" by default). `fake` forces the fake
// label; it is also set when the loaded library's path contains "fakegpu".
// Errors: kUnavailable when the library cannot be loaded, lacks a needed symbol, or nvmlInit
// fails.
StatusOr<std::unique_ptr<Backend>> OpenNvml(const std::string& library, bool fake = false);

}  // namespace hami::gpu
