// Declarations of the hand-written hook bodies, one per entry of the .def lists.
// dispatch.cc generates the exported wrappers that call them.
#pragma once

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"

namespace hami::vgpu {

#define HAMI_CU(name, params, args, ...) CUresult Hook_##name params noexcept;
#include "abi/cuda_hooks.def"
#undef HAMI_CU
#define HAMI_NVML(name, params, args) nvmlReturn_t Hook_##name params noexcept;
#include "abi/nvml_hooks.def"
#undef HAMI_NVML

// Pool-backed and graph memory is reconciled with what the driver reports as reserved.
void ReconcileGraphMemory(int ordinal);
extern bool g_graph_memory_seen;

}  // namespace hami::vgpu
