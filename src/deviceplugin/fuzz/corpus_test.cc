// Replays every file of corpus/ through the fuzz entry points (a crash fails the test).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "deviceplugin/fuzz/fuzz_targets.h"

namespace hami::deviceplugin::fuzz {
namespace {

int Replay(const char* dir, void (*target)(const uint8_t*, size_t)) {
  int n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(HAMI_DP_CORPUS_DIR) / dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

TEST(DevicePluginFuzzCorpus, ToAllocate) { EXPECT_GE(Replay("to_allocate", &ToAllocate), 5); }
TEST(DevicePluginFuzzCorpus, DeviceConfig) { EXPECT_GE(Replay("device_config", &DeviceConfig), 5); }
TEST(DevicePluginFuzzCorpus, PodObject) { EXPECT_GE(Replay("pod", &PodObject), 5); }

}  // namespace
}  // namespace hami::deviceplugin::fuzz
