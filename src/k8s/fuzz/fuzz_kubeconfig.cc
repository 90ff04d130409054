// libFuzzer entry point (clang -fsanitize=fuzzer builds only); corpus: corpus/ beside it.
#include <cstddef>
#include <cstdint>

#include "k8s/fuzz/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hami::k8s::fuzz::FuzzKubeconfig(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
