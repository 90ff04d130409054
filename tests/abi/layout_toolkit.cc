#include <cuda.h>

#include <cstddef>

#include "abi/layout.h"

#define HAMI_LAYOUT_FN ToolkitLayout
#include "abi/layout_body.inc"
