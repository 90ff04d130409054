// Prototypes of every CUDA driver entry point the project touches, generated from the
// two lists beside this file. Test programs and the fake driver include this instead
// of the toolkit's cuda.h.
#pragma once
#include "cuda_abi.h"

#ifdef __cplusplus
extern "C" {
#endif
#define HAMI_CU(name, params, args, ...) CUresult name params;
#include "cuda_hooks.def"
#include "cuda_internal.def"
#undef HAMI_CU
#ifdef __cplusplus
}
#endif
