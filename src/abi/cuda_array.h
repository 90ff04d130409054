// Bytes per element of a CUDA array format, once: libvgpu.so charges arrays with it and the
// fake driver sizes them with it (issue 11: the two kept copies). Header-only.
#pragma once

#include "abi/cuda_abi.h"

namespace hami::abi {

// 1, 2 or 4 for the formats cuda_abi.h declares; 0 for any other value.
inline constexpr unsigned ArrayFormatBytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 0;
  }
}

}  // namespace hami::abi
