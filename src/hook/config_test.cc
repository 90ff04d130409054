#include "config.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include <map>
#include <string>

namespace hami::vgpu {
namespace {

std::map<std::string, std::string>* g_env;
const char* FakeGetenv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}
// The environment as environ would hold it.
std::vector<std::string> g_env_lines;
std::vector<char*> g_env_ptrs;
char** FakeEnviron() {
  g_env_lines.clear();
  g_env_ptrs.clear();
  for (const auto& [k, v] : *g_env) g_env_lines.push_back(k + "=" + v);
  for (auto& l : g_env_lines) g_env_ptrs.push_back(l.data());
  g_env_ptrs.push_back(nullptr);
  return g_env_ptrs.data();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { g_env = &env_; }
  bool Load(const char* fixed = "/nonexistent/hami.limits") {
    ConfigSource src{FakeGetenv, fixed, FakeEnviron};
    return LoadConfig(src, &cfg_, err_, sizeof(err_));
  }
  std::string WriteFile(const std::string& text) {
    char path[] = "/tmp/vgpu_config_testXXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (auto& f : files_) unlink(f.c_str());
  }
  std::map<std::string, std::string> env_;
  std::vector<std::string> files_;
  Config cfg_;
  char err_[512] = {};
};

TEST_F(ConfigTest, NoConfigurationMeansNoLimits) {
  ASSERT_TRUE(Load()) << err_;
  EXPECT_FALSE(cfg_.AnyMemoryLimit());
  EXPECT_FALSE(cfg_.AnySmLimit());
  EXPECT_STREQ(cfg_.shm_path, "/tmp/cudevshr.cache");
  EXPECT_EQ(cfg_.policy, CorePolicy::kDefault);
}

TEST_F(ConfigTest, GlobalAndPerDeviceEnvironment) {
  env_["CUDA_DEVICE_MEMORY_LIMIT"] = "2g";
  env_["CUDA_DEVICE_MEMORY_LIMIT_1"] = "3000m";
  env_["CUDA_DEVICE_SM_LIMIT"] = "30";
  env_["CUDA_DEVICE_SM_LIMIT_2"] = "70";
  env_["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = "/tmp/x/y.cache";
  env_["GPU_CORE_UTILIZATION_POLICY"] = "force";
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.mem_limit[0], 2ull << 30);
  EXPECT_EQ(cfg_.mem_limit[1], 3000ull << 20);
  EXPECT_EQ(cfg_.mem_limit[15], 2ull << 30);
  EXPECT_EQ(cfg_.sm_limit[0], 30u);
  EXPECT_EQ(cfg_.sm_limit[2], 70u);
  EXPECT_STREQ(cfg_.shm_path, "/tmp/x/y.cache");
  EXPECT_EQ(cfg_.policy, CorePolicy::kForce);
}

TEST_F(ConfigTest, MemorySizesUseTheOneGrammarOfAbiUnits) {
  // What `hami run --gpumem` accepts, libvgpu accepts too (issue 12: "2gib" was refused).
  env_["CUDA_DEVICE_MEMORY_LIMIT_0"] = "2gib";
  env_["CUDA_DEVICE_MEMORY_LIMIT_1"] = "3GB";
  env_["CUDA_DEVICE_MEMORY_LIMIT_2"] = "1073741824";  // bare: bytes, as in HAMi-core
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.mem_limit[0], 2ull << 30);
  EXPECT_EQ(cfg_.mem_limit[1], 3ull << 30);
  EXPECT_EQ(cfg_.mem_limit[2], 1ull << 30);
  env_["CUDA_DEVICE_MEMORY_LIMIT_2"] = "2 g";
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("unknown unit"), std::string::npos) << err_;
}

TEST_F(ConfigTest, MalformedValuesFailClosedNamingTheVariable) {
  struct Case {
    const char* key;
    const char* value;
  } cases[] = {
      {"CUDA_DEVICE_MEMORY_LIMIT", "2Gx"},   {"CUDA_DEVICE_MEMORY_LIMIT_3", "lots"},
      {"CUDA_DEVICE_MEMORY_LIMIT_16", "1g"}, {"CUDA_DEVICE_SM_LIMIT", "101"},
      {"CUDA_DEVICE_SM_LIMIT_0", "-5"},      {"GPU_CORE_UTILIZATION_POLICY", "sometimes"},
      {"CUDA_TASK_PRIORITY", "high"},        {"CUDA_DEVICE_MEMORY_SHARED_CACHE", "relative/path"},
      {"CUDA_OVERSUBSCRIBE", "maybe"},       {"LIBCUDA_LOG_LEVEL", "9"}};
  for (const auto& c : cases) {
    env_.clear();
    env_[c.key] = c.value;
    EXPECT_FALSE(Load()) << c.key << "=" << c.value;
    EXPECT_NE(std::string(err_).find(c.key), std::string::npos) << err_;
  }
}

TEST_F(ConfigTest, LimitsFileIsAuthoritativeEnvironmentMayOnlyTighten) {
  std::string f = WriteFile(
      "# written by the node agent\n"
      "CUDA_DEVICE_MEMORY_LIMIT_0=4g\n"
      "CUDA_DEVICE_MEMORY_LIMIT_1 = 1g\n"
      "CUDA_DEVICE_SM_LIMIT=50\n"
      "CUDA_DEVICE_UUID_0=GPU-aaaa\n"
      "CUDA_DEVICE_UUID_1=GPU-bbbb\n"
      "CUDA_DEVICE_MEMORY_SHARED_CACHE=/var/run/hami/c.cache\n"
      "GPU_CORE_UTILIZATION_POLICY=default\n");
  env_["HAMI_LIMITS_FILE"] = f;
  env_["CUDA_DEVICE_MEMORY_LIMIT_0"] = "2g";   // tighter: applies
  env_["CUDA_DEVICE_MEMORY_LIMIT_1"] = "64g";  // looser: ignored
  env_["CUDA_DEVICE_SM_LIMIT"] = "0";          // "no limit" cannot lift the file's
  env_["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = "/tmp/elsewhere.cache";
  env_["GPU_CORE_UTILIZATION_POLICY"] = "disable";  // looser policy: ignored
  ASSERT_TRUE(Load()) << err_;
  EXPECT_TRUE(cfg_.from_file);
  EXPECT_EQ(cfg_.mem_limit[0], 2ull << 30);
  EXPECT_EQ(cfg_.mem_limit[1], 1ull << 30);
  EXPECT_EQ(cfg_.sm_limit[0], 50u);
  EXPECT_STREQ(cfg_.uuid[1], "GPU-bbbb");
  EXPECT_TRUE(cfg_.have_uuids);
  EXPECT_STREQ(cfg_.shm_path, "/var/run/hami/c.cache");
  EXPECT_EQ(cfg_.policy, CorePolicy::kDefault);
  EXPECT_FALSE(cfg_.priority_set);
}

TEST_F(ConfigTest, PriorityFromTheFileCountsAsExplicitAndMayOnlyBeLowered) {
  env_["HAMI_LIMITS_FILE"] = WriteFile("CUDA_TASK_PRIORITY=1\n");
  ASSERT_TRUE(Load()) << err_;
  EXPECT_TRUE(cfg_.priority_set);
  EXPECT_EQ(cfg_.priority, 1);
  env_["HAMI_LIMITS_FILE"] = WriteFile("CUDA_TASK_PRIORITY=1\n");
  env_["CUDA_TASK_PRIORITY"] = "0";  // a tenant claiming high priority: ignored
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.priority, 1);
}

TEST_F(ConfigTest, FixedPathWinsOverEnvironmentPath) {
  std::string fixed = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  std::string other = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=8g\n");
  env_["HAMI_LIMITS_FILE"] = other;
  ASSERT_TRUE(Load(fixed.c_str())) << err_;
  EXPECT_EQ(cfg_.mem_limit[0], 1ull << 30);
  EXPECT_STREQ(cfg_.limits_file, fixed.c_str());
}

// The SM limits read again from the file chosen at start (a running slice resized by the node
// agent): the file's new values, the environment still only tightening, and a file that
// cannot be used (broken, other UUIDs, made writable by others) an error, so that the caller
// keeps its limits.
TEST_F(ConfigTest, ReloadReadsTheSmLimitsOfTheFileChosenAtStart) {
  std::string path = WriteFile("CUDA_DEVICE_SM_LIMIT=30\nCUDA_DEVICE_SM_LIMIT_1=60\n");
  chmod(path.c_str(), 0644);
  env_["HAMI_LIMITS_FILE"] = path;
  env_["CUDA_DEVICE_SM_LIMIT_1"] = "50";
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.sm_limit[0], 30u);
  EXPECT_EQ(cfg_.sm_limit[1], 50u);
  uint32_t sm[kMaxDevices] = {};
  ASSERT_TRUE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_))) << err_;
  EXPECT_EQ(sm[0], 30u);
  EXPECT_EQ(sm[1], 50u);

  auto rewrite = [&](const char* text) {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text, f);
    fclose(f);
  };
  rewrite("CUDA_DEVICE_SM_LIMIT=70\nCUDA_DEVICE_SM_LIMIT_1=40\nCUDA_DEVICE_MEMORY_LIMIT=1g\n");
  ASSERT_TRUE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_))) << err_;
  EXPECT_EQ(sm[0], 70u);
  EXPECT_EQ(sm[1], 40u);  // the file's 40 is tighter than the environment's 50
  EXPECT_EQ(sm[2], 70u);
  rewrite("CUDA_DEVICE_SM_LIMIT=0\n");
  ASSERT_TRUE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_))) << err_;
  EXPECT_EQ(sm[0], 0u);   // the node agent lifted it
  EXPECT_EQ(sm[1], 50u);  // the environment's limit stays

  rewrite("CUDA_DEVICE_SM_LIMIT=seventy\n");
  EXPECT_FALSE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_)));
  EXPECT_NE(std::string(err_).find("CUDA_DEVICE_SM_LIMIT"), std::string::npos) << err_;
  rewrite("CUDA_DEVICE_UUID_0=GPU-other\nCUDA_DEVICE_SM_LIMIT=10\n");
  EXPECT_FALSE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_)));
  EXPECT_NE(std::string(err_).find("differs from the one at start"), std::string::npos) << err_;
  rewrite("CUDA_DEVICE_SM_LIMIT=90\n");
  chmod(path.c_str(), 0666);
  EXPECT_FALSE(ReloadSmLimits(cfg_, sm, err_, sizeof(err_)));
  EXPECT_NE(std::string(err_).find("writable by group or others"), std::string::npos) << err_;

  Config env_only;
  memset(&env_only, 0, sizeof(env_only));
  EXPECT_FALSE(ReloadSmLimits(env_only, sm, err_, sizeof(err_)));
}

TEST_F(ConfigTest, BrokenLimitsFileFailsClosedWithLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {{"CUDA_DEVICE_MEMORY_LIMIT=1.5g\n", "line 1"},
               {"# ok\nCUDA_DEVICE_MEMRY_LIMIT=2g\n", "unknown key"},
               {"CUDA_DEVICE_SM_LIMIT=30\njunk\n", "line 2"},
               {"CUDA_DEVICE_UUID=GPU-x\n", "CUDA_DEVICE_UUID"}};
  for (const auto& c : cases) {
    env_.clear();
    env_["HAMI_LIMITS_FILE"] = WriteFile(c.text);
    EXPECT_FALSE(Load()) << c.text;
    EXPECT_NE(std::string(err_).find(c.expect), std::string::npos) << err_;
  }
  env_["HAMI_LIMITS_FILE"] = "/nonexistent/limits";
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("/nonexistent/limits"), std::string::npos) << err_;
}

// ---- the limits file fails closed (issue 12) ------------------------------------------------

TEST_F(ConfigTest, NulByteInLimitsFileFailsClosed) {
  // A NUL used to end parsing silently, dropping device 1's limit.
  static const char kText[] = "CUDA_DEVICE_MEMORY_LIMIT_0=2g\0\nCUDA_DEVICE_MEMORY_LIMIT_1=1g\n";
  env_["HAMI_LIMITS_FILE"] = WriteFile(std::string(kText, sizeof(kText) - 1));
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("NUL byte at offset 29"), std::string::npos) << err_;
}

TEST_F(ConfigTest, DuplicateKeyFailsClosed) {
  env_["HAMI_LIMITS_FILE"] =
      WriteFile("CUDA_DEVICE_MEMORY_LIMIT_0=2g\n\n# again\nCUDA_DEVICE_MEMORY_LIMIT_0 = 8g\n");
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("line 4: duplicate key CUDA_DEVICE_MEMORY_LIMIT_0"),
            std::string::npos)
      << err_;
  env_["HAMI_LIMITS_FILE"] = WriteFile(
      "GPU_CORE_UTILIZATION_POLICY=force\n"
      "GPU_CORE_UTILIZATION_POLICY=disable\n");
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("duplicate key"), std::string::npos) << err_;
}

TEST_F(ConfigTest, IndexPastTheLastDeviceFailsClosedInFileAndEnvironment) {
  env_["HAMI_LIMITS_FILE"] = WriteFile("CUDA_DEVICE_MEMORY_LIMIT_99=1g\n");
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("CUDA_DEVICE_MEMORY_LIMIT_99: device index must be 0..15"),
            std::string::npos)
      << err_;
  env_.clear();
  env_["CUDA_DEVICE_SM_LIMIT_99"] = "10";  // used to be silently ignored
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("CUDA_DEVICE_SM_LIMIT_99"), std::string::npos) << err_;
  env_.clear();
  env_["CUDA_DEVICE_MEMORY_LIMIT_1000000000000"] = "1g";
  EXPECT_FALSE(Load());
  env_.clear();
  env_["CUDA_DEVICE_MEMORY_LIMITS"] = "1g";  // not one of ours: ignored
  EXPECT_TRUE(Load()) << err_;
  env_["CUDA_DEVICE_MEMORY_LIMIT_X"] = "1g";
  EXPECT_FALSE(Load()) << "a malformed index of our own key must not be ignored";
}

TEST_F(ConfigTest, FileRecordsItsHighestDeviceIndex) {
  env_["HAMI_LIMITS_FILE"] = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\nCUDA_DEVICE_SM_LIMIT_5=10\n");
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.file_max_index, 5);
  env_["HAMI_LIMITS_FILE"] = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  ASSERT_TRUE(Load()) << err_;
  EXPECT_EQ(cfg_.file_max_index, -1);
}

TEST_F(ConfigTest, EmptyLimitsFileFailsClosed) {
  for (const char* text : {"", "\n\n", "# only a comment\n   \n"}) {
    env_["HAMI_LIMITS_FILE"] = WriteFile(text);
    EXPECT_FALSE(Load()) << "'" << text << "'";
    EXPECT_NE(std::string(err_).find("sets nothing"), std::string::npos) << err_;
  }
}

TEST_F(ConfigTest, LimitWithoutItsUuidOrTwiceTheSameUuidFailsClosed) {
  env_["HAMI_LIMITS_FILE"] = WriteFile(
      "CUDA_DEVICE_UUID_0=GPU-aaaa\nCUDA_DEVICE_MEMORY_LIMIT_0=1g\nCUDA_DEVICE_MEMORY_LIMIT_1="
      "1g\n");
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("no CUDA_DEVICE_UUID_1"), std::string::npos) << err_;
  env_["HAMI_LIMITS_FILE"] = WriteFile(
      "CUDA_DEVICE_UUID_0=GPU-aaaa\nCUDA_DEVICE_UUID_1=GPU-aaaa\n"
      "CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("both GPU-aaaa"), std::string::npos) << err_;
}

TEST_F(ConfigTest, GroupOrWorldWritableLimitsFileFailsClosed) {
  std::string f = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  for (mode_t m : {0664, 0646}) {
    ASSERT_EQ(chmod(f.c_str(), m), 0);
    env_["HAMI_LIMITS_FILE"] = f;
    EXPECT_FALSE(Load()) << std::oct << m;
    EXPECT_NE(std::string(err_).find("writable by group or others"), std::string::npos) << err_;
  }
}

TEST_F(ConfigTest, LimitsFileOfAnotherUserFailsClosed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file to another user";
  std::string f = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  ASSERT_EQ(chown(f.c_str(), 65534, 65534), 0);
  env_["HAMI_LIMITS_FILE"] = f;
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("owned by another user"), std::string::npos) << err_;
}

TEST_F(ConfigTest, FifoOrSymlinkLimitsFileFailsClosedWithoutHanging) {
  char dir[] = "/tmp/vgpu_config_dirXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string fifo = std::string(dir) + "/fifo", link = std::string(dir) + "/link";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  env_["HAMI_LIMITS_FILE"] = fifo;  // nobody writes it: a blocking open would hang here
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("not a regular file"), std::string::npos) << err_;
  std::string real = WriteFile("CUDA_DEVICE_MEMORY_LIMIT=1g\n");
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  env_["HAMI_LIMITS_FILE"] = link;
  EXPECT_FALSE(Load());
  EXPECT_NE(std::string(err_).find("symbolic link"), std::string::npos) << err_;
  // A dangling link at the fixed path is the file (refused), not a reason to fall back to
  // HAMI_LIMITS_FILE, which a tenant controls.
  unlink(link.c_str());
  ASSERT_EQ(symlink("/nonexistent/limits", link.c_str()), 0);
  env_["HAMI_LIMITS_FILE"] = real;
  EXPECT_FALSE(Load(link.c_str()));
  EXPECT_NE(std::string(err_).find(link), std::string::npos) << err_;
  unlink(link.c_str());
  unlink(fifo.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace hami::vgpu
