// Fuzz entry points for the monitor's parsers of files other processes write: the accounting
// file (written inside the container) and pod.json. libFuzzer binaries (Clang) call them;
// corpus_test.cc replays corpus/ through them in every test run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hami::monitor::fuzz {

void AccountingFile(const uint8_t* data, size_t size);
void PodMeta(const uint8_t* data, size_t size);

}  // namespace hami::monitor::fuzz
