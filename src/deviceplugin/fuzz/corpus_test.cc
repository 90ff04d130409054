// Replays every file of corpus/ through the fuzz entry points (a crash fails the test).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/testing/corpus.h"

#include "deviceplugin/fuzz/fuzz_targets.h"

namespace hami::deviceplugin::fuzz {
namespace {

int Replay(const char* dir, void (*target)(const uint8_t*, size_t)) {
  return hami::testing::ReplayCorpus(std::filesystem::path(HAMI_DP_CORPUS_DIR) / dir, target);
}

TEST(DevicePluginFuzzCorpus, ToAllocate) { EXPECT_GE(Replay("to_allocate", &ToAllocate), 5); }
TEST(DevicePluginFuzzCorpus, DeviceConfig) { EXPECT_GE(Replay("device_config", &DeviceConfig), 5); }
TEST(DevicePluginFuzzCorpus, PodObject) { EXPECT_GE(Replay("pod", &PodObject), 5); }

}  // namespace
}  // namespace hami::deviceplugin::fuzz
