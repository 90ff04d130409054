// libFuzzer driver: pod_fuzzer src/deviceplugin/fuzz/corpus/pod
#include "deviceplugin/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::deviceplugin::fuzz::PodObject(data, size);
  return 0;
}
