#include "sched/fuzz/fuzz_targets.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "sched/annotation.h"
#include "sched/node_codec.h"

namespace hami::sched::fuzz {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "sched fuzz: %s\n", what);
  std::abort();
}

}  // namespace

void DevicesAnnotation(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = DecodeContainerDevices(text);
  if (!d.ok()) {
    if (d.status().message().empty()) Fail("error without message");
    return;
  }
  auto enc = EncodeContainerDevices(*d);
  if (!enc.ok()) Fail("decoded value does not encode");
  auto again = DecodeContainerDevices(*enc);
  if (!again.ok() || !(*again == *d)) Fail("round trip changed the value");
}

void NodeRegister(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = DecodeNodeRegister(text);
  if (!d.ok()) {
    if (d.status().message().empty()) Fail("error without message");
    return;
  }
  auto again = DecodeNodeRegister(EncodeNodeRegister(*d));
  if (!again.ok() || !(*again == *d)) Fail("round trip changed the value");
}

}  // namespace hami::sched::fuzz
