// libFuzzer driver: vgpu_limits_fuzzer src/hook/fuzz/corpus/limits
#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::vgpu::fuzz::LimitsFile(data, size);
  return 0;
}
