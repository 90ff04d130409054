#include <cstddef>

#include "abi/layout.h"
#include "abi/cuda_abi.h"

#define HAMI_LAYOUT_FN OurLayout
#include "abi/layout_body.inc"
