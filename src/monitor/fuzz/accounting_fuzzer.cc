// libFuzzer driver: accounting_fuzzer src/monitor/fuzz/corpus/accounting
#include "monitor/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::monitor::fuzz::AccountingFile(data, size);
  return 0;
}
