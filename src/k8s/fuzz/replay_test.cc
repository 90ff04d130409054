// Replays the fuzz corpora (src/k8s/fuzz/corpus/<target>/) through the harnesses, plus a
// fixed number of deterministic mutations of every file, so CI exercises the parsers of
// untrusted input on every run. libFuzzer builds (clang) grow the same corpora.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "k8s/fuzz/harness.h"

namespace hami::k8s::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Corpus(const std::string& target) {
  std::vector<std::string> out;
  fs::path dir = fs::path(HAMI_K8S_CORPUS_DIR) / target;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

std::string Mutate(std::string s, std::mt19937& rng) {
  static const char* kTokens[] = {"{",           "}", "[",    "]",    "\"",
                                  ",",           ":", "null", "-1",   "1e999",
                                  "\"\\u0000\"", ";", "GPU-", "true", "999999999999999999999"};
  int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0:
        if (!s.empty() && pos < s.size()) s[pos] = static_cast<char>(rng() % 256);
        break;
      case 1:
        s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]);
        break;
      case 2:
        if (pos < s.size()) s.erase(pos, 1 + rng() % 8);
        break;
      case 3:
        s = s.substr(0, pos);
        break;
    }
  }
  return s;
}

void Replay(const std::string& target, const std::function<void(std::string_view)>& f,
            int mutations) {
  auto files = Corpus(target);
  ASSERT_FALSE(files.empty()) << target;
  std::mt19937 rng(1234);
  for (const auto& data : files) {
    f(data);
    for (int i = 0; i < mutations; ++i) f(Mutate(data, rng));
  }
}

TEST(FuzzReplayTest, ExtenderRequests) { Replay("extender", FuzzExtenderRequest, 150); }
TEST(FuzzReplayTest, AdmissionReviews) { Replay("admission", FuzzAdmissionReview, 300); }
TEST(FuzzReplayTest, WatchEvents) { Replay("watch", FuzzWatchEvent, 300); }
TEST(FuzzReplayTest, Quantities) { Replay("quantity", FuzzQuantity, 300); }
TEST(FuzzReplayTest, PodAnnotations) { Replay("annotations", FuzzPodAnnotations, 300); }
TEST(FuzzReplayTest, Kubeconfigs) { Replay("kubeconfig", FuzzKubeconfig, 200); }

}  // namespace
}  // namespace hami::k8s::fuzz
