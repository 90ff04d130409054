// libFuzzer driver: to_allocate_fuzzer src/deviceplugin/fuzz/corpus/to_allocate
#include "deviceplugin/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::deviceplugin::fuzz::ToAllocate(data, size);
  return 0;
}
