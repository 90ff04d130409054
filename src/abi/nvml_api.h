// Prototypes of every NVML entry point the project touches, generated from the three
// lists beside this file (libvgpu.so loads only the first two).
#pragma once
#include "nvml_abi.h"

#ifdef __cplusplus
extern "C" {
#endif
#define HAMI_NVML(name, params, args) nvmlReturn_t name params;
#include "nvml_hooks.def"
#include "nvml_host.def"
#include "nvml_internal.def"
#undef HAMI_NVML
#ifdef __cplusplus
}
#endif
