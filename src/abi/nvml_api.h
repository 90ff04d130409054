// Prototypes of every NVML entry point the project touches, generated from the two
// lists beside this file.
#pragma once
#include "nvml_abi.h"

#ifdef __cplusplus
extern "C" {
#endif
#define HAMI_NVML(name, params, args) nvmlReturn_t name params;
#include "nvml_hooks.def"
#include "nvml_internal.def"
#undef HAMI_NVML
#ifdef __cplusplus
}
#endif
