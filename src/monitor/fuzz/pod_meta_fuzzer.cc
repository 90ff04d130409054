// libFuzzer driver: pod_meta_fuzzer src/monitor/fuzz/corpus/pod_meta
#include "monitor/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::monitor::fuzz::PodMeta(data, size);
  return 0;
}
