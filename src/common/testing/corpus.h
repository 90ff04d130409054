// Replays every file of a fuzzer's corpus folder through its entry point, so the corpora
// run in every ctest (a crash or sanitizer report fails the test). Test-only, header-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hami::testing {

// Returns how many inputs were replayed.
inline int ReplayCorpus(const std::filesystem::path& dir, void (*target)(const uint8_t*, size_t)) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

}  // namespace hami::testing
