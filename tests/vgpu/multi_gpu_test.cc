// libvgpu.so on a host with several cards, against the fake driver (issue 16's CI half): each
// card of a multi-card slice holds its own memory cap and compute share at the same time,
// limits bound to UUIDs follow the card when CUDA_VISIBLE_DEVICES reorders it, and the NVML
// view (nvidia-smi) shows each card's own slice. bench/gpu/multi_gpu.py runs the same checks
// and NCCL on real cards.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "vgpu/process.h"

namespace hami::testing {
namespace {

constexpr const char* kUuid0 = "GPU-11111111-2222-3333-4444-00000000e000";
constexpr const char* kUuid1 = "GPU-11111111-2222-3333-4444-00000000e001";

class MultiGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vgpu_multiXXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    std::ofstream(dir_ + "/gpus.conf")
        << "uuid=" << kUuid0 << " name=NVIDIA H100 80GB HBM3 mem=16g reserved=0 ctxmem=64m\n"
        << "uuid=" << kUuid1 << " name=NVIDIA H100 80GB HBM3 mem=16g reserved=0 ctxmem=64m\n";
  }
  void TearDown() override {
    if (system(("rm -rf " + dir_).c_str()) != 0) ADD_FAILURE() << "cleanup failed";
  }
  // A process of one container holding both cards (one accounting file for the slice).
  Env SliceEnv() {
    return Env{{"LD_LIBRARY_PATH", FAKEGPU_LIB_DIR},
               {"LD_PRELOAD", VGPU_LIB},
               {"FAKEGPU_CONFIG", dir_ + "/gpus.conf"},
               {"FAKEGPU_STATE", dir_ + "/fake.state"},
               {"HAMI_COMPUTE_BOARD_DIR", dir_ + "/board"},
               {"HAMI_CONTENTION_DIR", dir_ + "/contention"},
               {"CUDA_DEVICE_MEMORY_SHARED_CACHE", dir_ + "/vgpu.cache"},
               {"CUDA_VISIBLE_DEVICES", std::string(kUuid0) + "," + kUuid1}};
  }
  Result Run(const char* bin, const std::vector<std::string>& args, const Env& env) {
    std::vector<std::string> argv{bin};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, env, 60);
  }
  std::future<Result> RunAsync(const char* bin, std::vector<std::string> args, Env env) {
    return std::async(std::launch::async, [=, this] { return Run(bin, args, env); });
  }
  std::string dir_;
};

// Two processes of one slice fill card 0 (2 GiB) and card 1 (6 GiB) at the same time: each
// stops at its own card's cap, and neither card's usage leaks into the other's.
TEST_F(MultiGpuTest, EachCardOfASliceHoldsItsOwnCapConcurrently) {
  Env env = SliceEnv();
  env["CUDA_DEVICE_MEMORY_LIMIT_0"] = "2g";
  env["CUDA_DEVICE_MEMORY_LIMIT_1"] = "6g";
  Env e0 = env, e1 = env;
  e0["PROBE_DEVICE"] = "0";
  e1["PROBE_DEVICE"] = "1";
  auto f0 = RunAsync(VGPU_PROBE, {"fill", "alloc", "64"}, e0);
  auto f1 = RunAsync(VGPU_PROBE, {"fill", "alloc", "64"}, e1);
  Result r0 = f0.get(), r1 = f1.get();
  ASSERT_EQ(r0.exit_code, 0) << r0.out << r0.err;
  ASSERT_EQ(r1.exit_code, 0) << r1.out << r1.err;
  // Allocatable = cap - context memory (64 MiB), to the 64 MiB chunk.
  EXPECT_LE(r0.GetInt("allocated_mib"), 2048 - 64) << r0.out;
  EXPECT_GE(r0.GetInt("allocated_mib"), 2048 - 64 - 64) << r0.out;
  EXPECT_LE(r1.GetInt("allocated_mib"), 6144 - 64) << r1.out;
  EXPECT_GE(r1.GetInt("allocated_mib"), 6144 - 64 - 64) << r1.out;
}

// A limits file binds each limit to a UUID: when CUDA_VISIBLE_DEVICES lists the cards the
// other way round, ordinal 0 is card 1 and gets card 1's limit.
TEST_F(MultiGpuTest, LimitsFollowTheCardsUuidWhenVisibleDevicesAreReordered) {
  std::ofstream(dir_ + "/limits") << "CUDA_DEVICE_MEMORY_LIMIT_0=2g\nCUDA_DEVICE_UUID_0=" << kUuid0
                                  << "\nCUDA_DEVICE_MEMORY_LIMIT_1=6g\n"
                                  << "CUDA_DEVICE_UUID_1=" << kUuid1 << "\n";
  ASSERT_EQ(chmod((dir_ + "/limits").c_str(), 0444), 0);
  Env env = SliceEnv();
  env["HAMI_LIMITS_FILE"] = dir_ + "/limits";
  env["CUDA_VISIBLE_DEVICES"] = std::string(kUuid1) + "," + kUuid0;
  env["PROBE_DEVICE"] = "0";
  Result first = Run(VGPU_PROBE, {"info"}, env);
  EXPECT_EQ(first.GetInt("total_mib"), 6144) << first.out << first.err;
  env["PROBE_DEVICE"] = "1";
  Result second = Run(VGPU_PROBE, {"info"}, env);
  EXPECT_EQ(second.GetInt("total_mib"), 2048) << second.out << second.err;
}

// nvidia-smi's view (NVML through dlopen) shows each card with its own total and usage while a
// process holds memory on card 1 only.
TEST_F(MultiGpuTest, NvmlShowsEachCardsOwnSlice) {
  Env env = SliceEnv();
  env["CUDA_DEVICE_MEMORY_LIMIT_0"] = "2g";
  env["CUDA_DEVICE_MEMORY_LIMIT_1"] = "6g";
  env["PROBE_DEVICE"] = "1";
  Child holder = Start({VGPU_PROBE, "fill", "alloc", "512", "wait"}, env);
  std::string line = holder.ReadLine(20000);
  ASSERT_NE(line.find("allocated_mib="), std::string::npos) << line;
  Result smi = Run(FAKEGPU_SMI_BIN, {"--query"}, env);
  holder.CloseStdin();
  holder.Wait();
  ASSERT_EQ(smi.exit_code, 0) << smi.err;
  // Card 0: nothing used under its 2 GiB; card 1: full (6 GiB used of 6 GiB, to the chunk).
  EXPECT_NE(smi.out.find(std::string(kUuid0) + ",0,2048"), std::string::npos) << smi.out;
  size_t at = smi.out.find(kUuid1);
  ASSERT_NE(at, std::string::npos) << smi.out;
  std::string row = smi.out.substr(at, smi.out.find('\n', at) - at);
  EXPECT_NE(row.find(",6144"), std::string::npos) << row;
  long used = atol(row.substr(row.find(',') + 1).c_str());
  EXPECT_GE(used, 6144 - 512) << row;
  EXPECT_LE(used, 6144) << row;
}

// Per-card compute shares at the same time: 30 % on card 0 and 70 % on card 1 for two processes
// of one slice (bench/gpu/compute_limits.py checks the 3 points on a real card; the wide
// tolerance here is for a loaded 2-core CI box).
TEST_F(MultiGpuTest, EachCardHoldsItsOwnComputeShare) {
  Env env = SliceEnv();
  env["CUDA_DEVICE_SM_LIMIT_0"] = "30";
  env["CUDA_DEVICE_SM_LIMIT_1"] = "70";
  env["GPU_CORE_UTILIZATION_POLICY"] = "force";
  std::vector<std::string> loop = {"loop",      "--kernel-us", "4000",        "--sync", "16",
                                   "--seconds", "2",           "--warmup-ms", "400"};
  Env e0 = env, e1 = env;
  e0["PROBE_DEVICE"] = "0";
  e1["PROBE_DEVICE"] = "1";
  auto f0 = RunAsync(COMPUTE_PROBE, loop, e0);
  auto f1 = RunAsync(COMPUTE_PROBE, loop, e1);
  Result r0 = f0.get(), r1 = f1.get();
  ASSERT_EQ(r0.exit_code, 0) << r0.out << r0.err;
  ASSERT_EQ(r1.exit_code, 0) << r1.out << r1.err;
  EXPECT_NEAR(atof(r0.Get("share_pct").c_str()), 30, 8) << r0.out;
  EXPECT_NEAR(atof(r1.Get("share_pct").c_str()), 70, 8) << r1.out;
}

}  // namespace
}  // namespace hami::testing
