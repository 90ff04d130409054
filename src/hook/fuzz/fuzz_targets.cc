#include "fuzz/fuzz_targets.h"

#include <string.h>

#include "abi/units.h"
#include "config.h"

namespace hami::vgpu::fuzz {

void LimitsFile(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  Config c;
  char err[512];
  err[0] = '\0';
  bool ok = ParseLimitsText(text, size, &c, err, sizeof(err));
  if (!ok && err[0] == '\0') __builtin_trap();  // every refusal names its reason
  if (ok) {
    // What a parsed file promises the rest of the library.
    if (c.shm_path[0] != '/' || c.file_max_index >= kMaxDevices) __builtin_trap();
    if (memchr(text, '\0', size) != nullptr) __builtin_trap();  // a NUL must be refused
    for (int i = 0; i < kMaxDevices; ++i)
      if (c.sm_limit[i] > 100) __builtin_trap();
  }
  uint64_t a = 0, b = 0;
  abi::SizeError ea = abi::ParseMemSize(text, size, 1, &a);
  abi::SizeError eb = abi::ParseMemSize(text, size, abi::kMiB, &b);
  // The unit of a bare number is the only difference between the two readings.
  if ((ea == abi::SizeError::kOk) != (eb == abi::SizeError::kOk) && eb != abi::SizeError::kOverflow)
    __builtin_trap();
}

}  // namespace hami::vgpu::fuzz
