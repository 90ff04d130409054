// Fuzz entry points of libvgpu.so's parsers of untrusted text: the limits file (written by
// the node agent, but read in the tenant's process) and the memory-size grammar. The corpus
// in corpus/ is replayed by vgpu_fuzz_corpus_test on every test run; the libFuzzer binaries
// (Clang builds) explore from it.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hami::vgpu::fuzz {

// Parses the bytes as a limits file and as memory sizes; traps when an invariant breaks.
void LimitsFile(const uint8_t* data, size_t size);

}  // namespace hami::vgpu::fuzz
