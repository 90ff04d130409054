// The one memory-size grammar of the project (docs/limits-file.md): CUDA_DEVICE_MEMORY_LIMIT,
// the limits file and `hami run --gpumem` all read sizes with ParseMemSize, so "2gib" means the
// same everywhere. Header-only, no standard library, no exceptions: libvgpu.so includes it.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hami::abi {

inline constexpr uint64_t kKiB = 1ull << 10;
inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

enum class SizeError : int {
  kOk = 0,
  kEmpty,     // no text at all
  kNoDigits,  // does not start with a decimal digit (signs, blanks, "0x", a bare unit)
  kBadUnit,   // anything after the digits that is not a unit: "2x", "1.5g", "2gg", "2 g"
  kOverflow,  // does not fit 64 bits of bytes
};

inline constexpr const char* SizeErrorText(SizeError e) {
  switch (e) {
    case SizeError::kOk:
      return "ok";
    case SizeError::kEmpty:
      return "empty";
    case SizeError::kNoDigits:
      return "must start with a whole number";
    case SizeError::kBadUnit:
      return "unknown unit (use k, m, g or t, optionally followed by i and/or b: 2g, 2Gi, 2GiB)";
    case SizeError::kOverflow:
      return "too large";
  }
  return "invalid";
}

namespace units_internal {
inline constexpr char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
}  // namespace units_internal

// Parses text[0..len): DIGITS [UNIT] with UNIT = (k | m | g | t) [i] [b], case-insensitive, all
// powers of 1024 ("2g" = "2G" = "2Gi" = "2GiB" = "2gib" = "2GB" = 2 GiB: HAMi-core reads k/m/g
// as binary units and HAMi's device plugin writes "<MiB>m"). A bare number counts `bare_unit`
// bytes: 1 for CUDA_DEVICE_MEMORY_LIMIT (as in HAMi-core), kMiB for `hami run --gpumem` (as
// nvidia.com/gpumem). No sign, blank, fraction, hex or decimal units: those are errors, never a
// different number (HAMi-core reads "2Gi" as 2 bytes). On success writes *out.
inline constexpr SizeError ParseMemSize(const char* text, size_t len, uint64_t bare_unit,
                                        uint64_t* out) {
  if (text == nullptr || len == 0) return SizeError::kEmpty;
  size_t i = 0;
  uint64_t v = 0;
  while (i < len && text[i] >= '0' && text[i] <= '9') {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return SizeError::kOverflow;
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return SizeError::kNoDigits;
  uint64_t mult = bare_unit;
  if (i < len) {
    switch (units_internal::Lower(text[i])) {
      case 'k':
        mult = kKiB;
        break;
      case 'm':
        mult = kMiB;
        break;
      case 'g':
        mult = kGiB;
        break;
      case 't':
        mult = 1ull << 40;
        break;
      default:
        return SizeError::kBadUnit;
    }
    ++i;
    if (i < len && units_internal::Lower(text[i]) == 'i') ++i;
    if (i < len && units_internal::Lower(text[i]) == 'b') ++i;
    if (i != len) return SizeError::kBadUnit;
  }
  if (v != 0 && mult > UINT64_MAX / v) return SizeError::kOverflow;
  *out = v * mult;
  return SizeError::kOk;
}

// The same for a NUL-terminated string.
inline constexpr SizeError ParseMemSize(const char* text, uint64_t bare_unit, uint64_t* out) {
  size_t n = 0;
  if (text != nullptr)
    while (text[n] != '\0') ++n;
  return ParseMemSize(text, n, bare_unit, out);
}

}  // namespace hami::abi
