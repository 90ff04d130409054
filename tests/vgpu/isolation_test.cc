// libvgpu.so against the fake driver, in real processes: the cap on every allocation path,
// agreement of the CUDA and NVML views, racing processes, kill -9 at random moments,
// fail-closed configuration and device ordinals.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "vgpu/process.h"

namespace hami::testing {
namespace {

constexpr const char* kUuid0 = "GPU-11111111-2222-3333-4444-000000000000";
constexpr const char* kUuid1 = "GPU-11111111-2222-3333-4444-000000000001";

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vgpu_isolationXXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    std::ofstream(dir_ + "/gpus.conf")
        << "uuid=" << kUuid0 << " name=NVIDIA H100 80GB HBM3 mem=16g reserved=0 ctxmem=" << ctxmem_
        << "\nuuid=" << kUuid1
        << " name=NVIDIA H100 80GB HBM3 mem=16g reserved=0 ctxmem=" << ctxmem_ << "\n";
  }
  void TearDown() override {
    if (system(("rm -rf " + dir_).c_str()) != 0) ADD_FAILURE() << "cleanup failed";
  }

  // Environment of a process in the container: fake driver, hook preloaded.
  Env ContainerEnv(const std::string& limit = "1g") {
    Env e{{"LD_LIBRARY_PATH", FAKEGPU_LIB_DIR},
          {"LD_PRELOAD", VGPU_LIB},
          {"FAKEGPU_CONFIG", dir_ + "/gpus.conf"},
          {"FAKEGPU_STATE", dir_ + "/fake.state"},
          {"CUDA_DEVICE_MEMORY_SHARED_CACHE", dir_ + "/vgpu.cache"}};
    if (!limit.empty()) e["CUDA_DEVICE_MEMORY_LIMIT"] = limit;
    return e;
  }
  Result Probe(const std::vector<std::string>& args, const Env& env, int timeout = 60) {
    std::vector<std::string> argv{VGPU_PROBE};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, env, timeout);
  }
  std::string dir_;
  std::string ctxmem_ = "100m";
};

class PathTest : public IsolationTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(PathTest, CapHoldsAndFreesReleaseExactly) {
  Result r = Probe({"fill", GetParam(), "16", "free"}, ContainerEnv("1g"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.GetInt("stop_error"), 2) << "must stop with CUDA_ERROR_OUT_OF_MEMORY: " << r.out;
  long long got = r.GetInt("allocated_mib");
  // 1024 MiB limit, 100 MiB context: 924 MiB of room, filled in 16 MiB steps.
  EXPECT_GT(got, 924 - 16 * 3) << r.out;
  EXPECT_LE(got, 924) << r.out;
  // The driver's own figure for the process stays within the limit too (a pool that grew
  // past it must give the growth back, not keep it cached).
  EXPECT_LE(r.GetInt("driver_process_mib"), 1024) << r.out;
  // After freeing everything only the context is left in use.
  EXPECT_EQ(r.GetInt("total_mib"), 1024);
  EXPECT_EQ(r.GetInt("free_mib"), 924) << r.out;
}

// Memory the driver takes after the context, for modules loaded at their first launch (CUDA's
// lazy loading), is charged too, also in a container with its own PID namespace, where NVML
// reports host PIDs that getpid() does not know (libvgpu learns its host PID when it creates
// its context). The fake's module takes 200 MiB at the first launch.
class LazyModuleTest : public IsolationTest, public ::testing::WithParamInterface<bool> {};

TEST_P(LazyModuleTest, LazilyLoadedModuleMemoryIsCharged) {
  bool pid_namespace = GetParam();
  Env env = ContainerEnv("1g");
  env["FAKEGPU_LAZY_MODULE_MIB"] = "200";
  env["PROBE_LAUNCH_FIRST"] = "1";
  std::vector<std::string> argv = {VGPU_PROBE, "fill", "alloc", "16"};
  if (pid_namespace) {
    // A user and PID namespace of its own; /proc stays the host's, so the fake driver can
    // still report host PIDs as the real one does.
    if (system("unshare -Urpf true >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "no unprivileged user/PID namespaces here";
    argv.insert(argv.begin(), {"/usr/bin/unshare", "-Urpf"});
  }
  Result r = RunProcess(argv, env, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.GetInt("stop_error"), 2) << r.out;
  // 1024 MiB: 100 MiB context, 200 MiB module, so at most 724 MiB of allocations.
  EXPECT_LE(r.GetInt("allocated_mib"), 724) << r.out;
  EXPECT_GT(r.GetInt("allocated_mib"), 724 - 16 * 3) << r.out;
  EXPECT_LE(r.GetInt("driver_process_mib"), 1024) << r.out;
}
INSTANTIATE_TEST_SUITE_P(HostAndOwnPidNamespace, LazyModuleTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "OwnPidNs" : "HostPidNs"; });

INSTANTIATE_TEST_SUITE_P(AllPaths, PathTest,
                         ::testing::Values("alloc", "managed", "pitch", "vmm", "async", "pool",
                                           "array", "array3d", "mipmap"));

TEST_F(IsolationTest, UnlimitedProcessSeesThePhysicalGpu) {
  Result r = Probe({"info"}, ContainerEnv(""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.GetInt("total_mib"), 16384);
  EXPECT_EQ(r.GetInt("device_total_mib"), 16384);
}

TEST_F(IsolationTest, CudaAndNvmlViewsAgree) {
  Env env = ContainerEnv("2g");
  Child holder = Start({VGPU_PROBE, "fill", "alloc", "256", "wait"}, env);
  std::string line = holder.ReadLine(20000);
  ASSERT_NE(line.find("allocated_mib="), std::string::npos) << line;
  Result cuda;  // the holder's own cuMemGetInfo / cuDeviceTotalMem at the cap
  cuda.out = holder.ReadLine(20000);
  cuda.exit_code = 0;
  Result nvml = Probe({"nvml"}, env);
  Result smi = RunProcess({FAKEGPU_SMI_BIN, "--query"}, env);
  holder.Wait();
  ASSERT_EQ(cuda.exit_code, 0) << cuda.err;
  ASSERT_EQ(nvml.exit_code, 0) << nvml.out << nvml.err;
  EXPECT_EQ(cuda.GetInt("total_mib"), 2048);
  EXPECT_EQ(cuda.GetInt("device_total_mib"), 2048);
  long long cuda_used = cuda.GetInt("total_mib") - cuda.GetInt("free_mib");
  // NVML's first line is device 0, the one the holder and the info probe use.
  std::string first = nvml.out.substr(0, nvml.out.find('\n'));
  Result n0;
  n0.out = first;
  EXPECT_EQ(n0.GetInt("total_mib"), 2048) << nvml.out;
  EXPECT_EQ(n0.GetInt("v2_total_mib"), 2048) << nvml.out;
  EXPECT_EQ(n0.GetInt("used_mib"), cuda_used) << nvml.out << cuda.out;
  EXPECT_EQ(n0.GetInt("used_mib") + n0.GetInt("free_mib"), 2048) << nvml.out;
  // The nvidia-smi stand-in (dlopen + dlsym, as nvidia-smi does) shows the slice too.
  ASSERT_EQ(smi.exit_code, 0) << smi.err;
  EXPECT_NE(smi.out.find(std::string(kUuid0) + "," + std::to_string(cuda_used) + ",2048"),
            std::string::npos)
      << smi.out;
}

TEST_F(IsolationTest, SixteenRacingProcessesNeverExceedTheCap) {
  ctxmem_ = "16m";
  SetUp();  // rewrite the config with small contexts
  Env env = ContainerEnv("1g");
  env["PROBE_GO_FILE"] = dir_ + "/go";
  std::vector<Child> kids;
  for (int i = 0; i < 16; ++i)
    kids.push_back(Start({VGPU_PROBE, "fill", "alloc", "8", "wait"}, env));
  for (auto& k : kids) ASSERT_EQ(k.ReadLine(30000), "ready=1");  // all contexts exist
  std::ofstream(dir_ + "/go") << "go";
  long long sum = 0;
  for (auto& k : kids) {
    Result line;
    line.out = k.ReadLine(60000);
    if (line.Get("allocated_mib").empty()) {
      Result dead = k.Wait(5);
      FAIL() << "a process did not finish filling: rc=" << dead.exit_code << " " << dead.err;
    }
    sum += line.GetInt("allocated_mib");
  }
  // What the (fake) driver really holds, read without the hook, while all 16 still hold.
  Env raw{{"LD_LIBRARY_PATH", FAKEGPU_LIB_DIR},
          {"FAKEGPU_CONFIG", dir_ + "/gpus.conf"},
          {"FAKEGPU_STATE", dir_ + "/fake.state"}};
  Result smi = RunProcess({FAKEGPU_SMI_BIN, "--query"}, raw);
  for (auto& k : kids) k.Wait();
  EXPECT_LE(sum + 16 * 16, 1024);
  EXPECT_GE(sum + 16 * 16, 1024 - 16 * 8) << "the cap should be nearly used up";
  std::string prefix = std::string("0,") + kUuid0 + ",";
  size_t at = smi.out.find(prefix);
  ASSERT_NE(at, std::string::npos) << smi.out;
  long long real_used = atoll(smi.out.c_str() + at + prefix.size());
  EXPECT_LE(real_used, 1024) << smi.out;
}

TEST_F(IsolationTest, KilledInTightLoopLeavesNoDeadlockAndUsageIsReleased) {
  Env env = ContainerEnv("1g");
  std::mt19937 rng(42);
  for (int i = 0; i < 25; ++i) {
    Child c = Start({VGPU_PROBE, "churn", "64"}, env);
    ASSERT_EQ(c.ReadLine(20000), "ready=1");
    usleep(std::uniform_int_distribution<int>(0, 15000)(rng));
    kill(c.pid, SIGKILL);
    Result dead = c.Wait(10);
    EXPECT_EQ(dead.exit_code, -SIGKILL);
  }
  // A new process neither hangs nor sees the dead processes' memory (its own context only).
  Result r = Probe({"info"}, env, 10);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.GetInt("free_mib"), 1024 - 100) << r.out;
  // And it can use the whole slice.
  Result f = Probe({"fill", "alloc", "4"}, env, 20);
  EXPECT_GE(f.GetInt("allocated_mib"), 1024 - 100 - 4) << f.out;
}

TEST_F(IsolationTest, MalformedLimitFailsClosedWithTheMessage) {
  for (auto [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"CUDA_DEVICE_MEMORY_LIMIT", "1.5g"},
                                                        {"CUDA_DEVICE_MEMORY_LIMIT_1", "two"},
                                                        {"CUDA_DEVICE_SM_LIMIT", "150"},
                                                        {"GPU_CORE_UTILIZATION_POLICY", "maybe"}}) {
    Env env = ContainerEnv("");
    env[key] = value;
    Result r = Probe({"init"}, env);
    EXPECT_EQ(r.GetInt("init_result"), 3) << key << "=" << value << "\n" << r.out;
    EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
  }
}

TEST_F(IsolationTest, UnreadableLimitsFileFailsClosed) {
  std::ofstream(dir_ + "/limits") << "CUDA_DEVICE_MEMORY_LIMIT=1g\nCUDA_DEVICE_MEMRY_LIMIT_0=2g\n";
  Env env = ContainerEnv("");
  env["HAMI_LIMITS_FILE"] = dir_ + "/limits";
  Result r = Probe({"init"}, env);
  EXPECT_EQ(r.GetInt("init_result"), 3) << r.out;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
}

TEST_F(IsolationTest, CorruptAccountingFileFailsClosed) {
  std::ofstream(dir_ + "/vgpu.cache") << std::string(20000, 'x');
  Result r = Probe({"init"}, ContainerEnv("1g"));
  EXPECT_EQ(r.GetInt("init_result"), 3) << r.out;
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
}

TEST_F(IsolationTest, LimitsFileIsAuthoritativeOverEnvironment) {
  std::ofstream(dir_ + "/limits") << "CUDA_DEVICE_MEMORY_LIMIT_0=512m\n";
  Env env = ContainerEnv("8g");  // a tenant trying to raise it
  env["HAMI_LIMITS_FILE"] = dir_ + "/limits";
  Result r = Probe({"info"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.GetInt("total_mib"), 512);
}

TEST_F(IsolationTest, DeviceOutsideTheAllocationGetsNoMemory) {
  std::ofstream(dir_ + "/limits") << "CUDA_DEVICE_MEMORY_LIMIT_0=4g\nCUDA_DEVICE_UUID_0=" << kUuid1
                                  << "\n";
  Env env = ContainerEnv("");
  env["HAMI_LIMITS_FILE"] = dir_ + "/limits";
  env["CUDA_VISIBLE_DEVICES"] = kUuid1;  // the allocated card: 4 GiB
  Result ok = Probe({"info"}, env);
  EXPECT_EQ(ok.GetInt("total_mib"), 4096) << ok.out << ok.err;
  env["CUDA_VISIBLE_DEVICES"] = "0";  // the tenant reaches for another card
  Result other = Probe({"fill", "alloc", "16"}, env);
  EXPECT_EQ(other.GetInt("allocated_mib"), -999999) << "context must not fit: " << other.out;
  EXPECT_EQ(other.GetInt("error"), 2) << other.out;
}

TEST_F(IsolationTest, PerDeviceLimitFollowsVisibleOrdinals) {
  Env env = ContainerEnv("");
  env["CUDA_DEVICE_MEMORY_LIMIT_0"] = "1g";
  env["CUDA_DEVICE_MEMORY_LIMIT_1"] = "3g";
  env["CUDA_VISIBLE_DEVICES"] = std::string(kUuid1) + "," + kUuid0;
  env["PROBE_DEVICE"] = "1";
  Result r = Probe({"info"}, env);
  EXPECT_EQ(r.GetInt("total_mib"), 3072) << r.out << r.err;
  env["PROBE_DEVICE"] = "0";
  r = Probe({"info"}, env);
  EXPECT_EQ(r.GetInt("total_mib"), 1024) << r.out << r.err;
}

TEST_F(IsolationTest, OutOfRangeOrdinalIsAnErrorCode) {
  Env env = ContainerEnv("1g");
  for (const char* ord : {"2", "16", "1000000"}) {
    env["PROBE_DEVICE"] = ord;
    Result r = Probe({"device"}, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.GetInt("device_result"), 101) << ord << ": " << r.out;
  }
}

TEST_F(IsolationTest, ProcAddressHandsOutTheWrappersForEveryVersion) {
  Result r = Probe({"procaddr"}, ContainerEnv("1g"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.GetInt("procaddr_bad"), 0) << r.out;
}

TEST_F(IsolationTest, RtldNextStillMeansNextAfterTheCaller) {
  Env env = ContainerEnv("1g");
  env["LD_PRELOAD"] = std::string(VGPU_LIB) + ":" + RTLD_NEXT_SHIM;
  Result r = Probe({"count"}, env, 20);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.GetInt("count_result"), 0) << r.out;
  EXPECT_EQ(r.GetInt("count"), 102) << "shim must reach the driver's 2 devices: " << r.out;
}

TEST_F(IsolationTest, LegacyAllocationIsRefusedUnderALimit) {
  Result r = Probe({"legacy"}, ContainerEnv("1g"));
  EXPECT_EQ(r.GetInt("legacy_alloc"), 801) << r.out << r.err;
}

// The per-thread stack size is device memory for every resident thread, reserved by
// cuCtxSetLimit with no allocation call (on the fake: 132 SMs x 2048 threads, so 32 KiB is
// about 8 GiB). Under a 4 GiB cap, 2 KiB (264 MiB more) is charged and given back when it is
// lowered again; 32 KiB is refused with CUDA_ERROR_OUT_OF_MEMORY and the old size stays (the
// driver took 8 GiB past the cap before).
TEST_F(IsolationTest, StackSizeIsChargedAndRefusedOverTheCap) {
  Result base = Probe({"info"}, ContainerEnv("4g"));
  ASSERT_EQ(base.exit_code, 0) << base.out << base.err;
  const long free0 = base.GetInt("free_mib");
  Result fits = Probe({"stack", "2"}, ContainerEnv("4g"));
  ASSERT_EQ(fits.exit_code, 0) << fits.out << fits.err;
  EXPECT_EQ(fits.GetInt("set_result"), 0) << fits.out;
  EXPECT_EQ(fits.GetInt("stack_bytes"), 2048) << fits.out;
  EXPECT_EQ(fits.GetInt("free_mib"), free0 - 264) << "the stack is charged: " << fits.out;
  EXPECT_EQ(fits.GetInt("after_reset_free_mib"), free0) << "and given back: " << fits.out;
  Result over = Probe({"stack", "32"}, ContainerEnv("4g"));
  ASSERT_EQ(over.exit_code, 0) << over.out << over.err;
  EXPECT_EQ(over.GetInt("set_result"), 2) << "CUDA_ERROR_OUT_OF_MEMORY: " << over.out;
  EXPECT_EQ(over.GetInt("stack_bytes"), 1024) << "the old size is back: " << over.out;
  EXPECT_EQ(over.GetInt("free_mib"), free0) << over.out;
  EXPECT_LT(over.GetInt("driver_process_mib"), 4096) << "the driver holds it no more: " << over.out;
  EXPECT_NE(over.err.find("cuCtxSetLimit(0, 32768) on device 0 takes 8184 MiB"), std::string::npos)
      << over.err;
}

}  // namespace
}  // namespace hami::testing
