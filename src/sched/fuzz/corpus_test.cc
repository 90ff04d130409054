// Replays every file of corpus/ through the fuzz entry points (a crash fails the test).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sched/fuzz/fuzz_targets.h"

namespace hami::sched::fuzz {
namespace {

namespace fs = std::filesystem;

int Replay(const char* dir, void (*target)(const uint8_t*, size_t)) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(HAMI_SCHED_CORPUS_DIR) / dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

TEST(FuzzCorpus, DevicesAnnotation) { EXPECT_GE(Replay("devices", &DevicesAnnotation), 5); }
TEST(FuzzCorpus, NodeRegister) { EXPECT_GE(Replay("node_register", &NodeRegister), 5); }

}  // namespace
}  // namespace hami::sched::fuzz
