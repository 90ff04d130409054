// Fuzz entry points of the sched parsers: each decodes untrusted bytes and, when they decode,
// checks the encode/decode round trip, aborting on any violation. Used by the libFuzzer
// binaries (Clang builds) and replayed over corpus/ by sched_test.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hami::sched::fuzz {

// `hami.io/vgpu-devices-to-allocate` (annotation.h).
void DevicesAnnotation(const uint8_t* data, size_t size);
// `hami.io/node-nvidia-register` (node_codec.h).
void NodeRegister(const uint8_t* data, size_t size);

}  // namespace hami::sched::fuzz
