// The cuGetProcAddress columns of cuda_hooks.def and cuda_internal.def (base name, the CUDA
// version that introduced a variant, its role) as data, so the fake driver's proc table and
// libvgpu.so's MustBeHooked come from the one list. Header-only; C runtime only.
#pragma once

#include <string.h>

namespace hami::abi {

enum class CuRole : int {
  kPlain = 0,  // intercepted or called, but the limits do not depend on it
  kLimit = 1,  // the limits hold only if every variant of its base name is intercepted
  kPtsz = 2,   // the per-thread-default-stream variant of its base name
};

struct CuProc {
  const char* name;  // exported symbol
  const char* base;  // what cuGetProcAddress is asked for
  int since;         // CUDA version (1000 * major + 10 * minor) that introduced `name`
  CuRole role;
};

// Entry points libvgpu.so intercepts.
inline constexpr CuProc kCuHooked[] = {
#define HAMI_CU(name, params, args, base, since, role) {#name, #base, since, CuRole::role},
#include "abi/cuda_hooks.def"
#undef HAMI_CU
};

// Entry points libvgpu.so calls (or the fake serves) without intercepting them.
inline constexpr CuProc kCuInternal[] = {
#define HAMI_CU(name, params, args, base, since, role) {#name, #base, since, CuRole::role},
#include "abi/cuda_internal.def"
#undef HAMI_CU
};

// Whether `base` (a name the CUDA runtime asks cuGetProcAddress for) must be intercepted for
// the limits to hold: some hooked variant of it has role kLimit.
inline bool MustBeHooked(const char* base) {
  if (base == nullptr) return false;
  for (const CuProc& p : kCuHooked)
    if (p.role == CuRole::kLimit && strcmp(p.base, base) == 0) return true;
  return false;
}

}  // namespace hami::abi
