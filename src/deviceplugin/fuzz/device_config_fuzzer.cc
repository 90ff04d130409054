// libFuzzer driver: device_config_fuzzer src/deviceplugin/fuzz/corpus/device_config
#include "deviceplugin/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::deviceplugin::fuzz::DeviceConfig(data, size);
  return 0;
}
