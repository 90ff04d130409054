// Compute limiter. This first version records launch activity for the monitor
// (last_kernel_ns); the share controller lives in compute_controller.cc when enabled.
#include "compute.h"

#include <time.h>

#include "state.h"

namespace hami::vgpu {

bool g_compute_enabled = false;

void ComputeInit() {}

void ComputeBeforeLaunch(CUstream, LaunchKind) {}

void ComputeAfterLaunch(CUstream, LaunchKind, CUresult) {}

}  // namespace hami::vgpu
