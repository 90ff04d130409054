// Replays every file of corpus/ through the fuzz entry points (a crash fails the test).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "monitor/fuzz/fuzz_targets.h"

namespace hami::monitor::fuzz {
namespace {

int Replay(const char* dir, void (*target)(const uint8_t*, size_t)) {
  int n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(HAMI_MONITOR_CORPUS_DIR) / dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

TEST(MonitorFuzzCorpus, AccountingFile) { EXPECT_GE(Replay("accounting", &AccountingFile), 5); }
TEST(MonitorFuzzCorpus, PodMeta) { EXPECT_GE(Replay("pod_meta", &PodMeta), 5); }

}  // namespace
}  // namespace hami::monitor::fuzz
