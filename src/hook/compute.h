// Entry points of the compute (SM) limiter used by the launch hooks. The launch path calls
// ComputeBeforeLaunch only when g_compute_enabled is set, so an unlimited process pays one
// predictable branch per launch.
#pragma once

#include <stdint.h>

#include "abi/cuda_abi.h"

namespace hami::vgpu {

extern bool g_compute_enabled;

enum class LaunchKind { kKernel, kCooperative, kGraph };

// Called once after the devices are mapped (cuInit).
void ComputeInit();
// May block the calling thread to keep the container within its share. `sig` identifies the
// launch (function and shape, or graph) so repeated launches can be compared.
void ComputeBeforeLaunch(CUstream stream, LaunchKind kind, uint64_t sig);
// An asynchronous copy or memset on `stream`: in pace mode (docs/compute-limiter.md,
// section 1b) it waits for the open stretch like a launch, and its stream is drained with it.
void ComputeBeforeCopy(CUstream stream);
// A synchronisation returned: in pace mode the wait was the application running its work
// (section 1b: a stretch whose closing launch comes late is otherwise taken for a pause).
void ComputeAfterSync();
// A context (cuCtxDestroy) or a stream (cuStreamDestroy) is about to be destroyed: its
// pending launches are charged and its limiter state freed for others.
void ComputeContextGone(CUcontext ctx);
void ComputeStreamGone(CUstream stream);
// Records a launch that has been submitted (for the limiter's accounting of GPU time).
void ComputeAfterLaunch(CUstream stream, LaunchKind kind, CUresult result);

}  // namespace hami::vgpu
