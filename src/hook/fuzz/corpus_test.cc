// Replays every file of corpus/limits through the fuzz entry point (a crash fails the test),
// and checks the corpus still holds the cases it was seeded with.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz/fuzz_targets.h"

namespace hami::vgpu::fuzz {
namespace {

TEST(VgpuFuzzCorpus, LimitsFile) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(HAMI_VGPU_CORPUS_DIR "/limits")) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    LimitsFile(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  EXPECT_GE(n, 8);
}

}  // namespace
}  // namespace hami::vgpu::fuzz
