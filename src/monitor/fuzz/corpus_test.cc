// Replays every file of corpus/ through the fuzz entry points (a crash fails the test).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/testing/corpus.h"

#include "monitor/fuzz/fuzz_targets.h"

namespace hami::monitor::fuzz {
namespace {

int Replay(const char* dir, void (*target)(const uint8_t*, size_t)) {
  return hami::testing::ReplayCorpus(std::filesystem::path(HAMI_MONITOR_CORPUS_DIR) / dir, target);
}

TEST(MonitorFuzzCorpus, AccountingFile) { EXPECT_GE(Replay("accounting", &AccountingFile), 5); }
TEST(MonitorFuzzCorpus, PodMeta) { EXPECT_GE(Replay("pod_meta", &PodMeta), 5); }

}  // namespace
}  // namespace hami::monitor::fuzz
