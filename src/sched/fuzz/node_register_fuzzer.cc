// libFuzzer binary (Clang: cmake -DCMAKE_CXX_COMPILER=clang++; run with corpus/node_register).
#include "sched/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::sched::fuzz::NodeRegister(data, size);
  return 0;
}
