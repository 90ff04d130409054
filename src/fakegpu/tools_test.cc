// fakegpu-ctl and fakegpu-smi against a live state file.
#include <stdio.h>

#include <string>

#include <gtest/gtest.h>

#include "abi/cuda_api.h"
#include "fakegpu/test_util.h"
#include "fakegpu_paths.h"

namespace hami::fakegpu::testing {
namespace {

std::string Shell(const std::string& cmd, int* status = nullptr) {
  std::string full = "LD_LIBRARY_PATH=" FAKEGPU_LIB_DIR " " + cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  int st = p ? pclose(p) : -1;
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

using FakeGpuTools = FakeGpuTest;

TEST_F(FakeGpuTools, SmiAndCtlShowSharedState) {
  Pipe ready, done;
  pid_t a = Spawn([&] {
    CUcontext ctx;
    CUdeviceptr p;
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAlloc_v2(&p, 1ull << 30), CUDA_SUCCESS);
    ready.Send(1);
    done.Recv();
  });
  ASSERT_EQ(ready.Recv(), 1u);
  int st = -1;
  EXPECT_EQ(Shell(FAKEGPU_SMI " --query", &st),
            "0,GPU-fa4e0000-0000-4000-8000-000000000000,1328,16384\n"
            "1,GPU-fa4e0000-0000-4000-8000-000000000001,4,16384\n");
  EXPECT_EQ(st, 0);
  std::string smi = Shell(FAKEGPU_SMI);
  EXPECT_NE(smi.find("Driver Version: 580.65.06  CUDA Version: 13.0\n"), std::string::npos) << smi;
  EXPECT_NE(smi.find("GPU 0: Tesla V100-SXM2-16GB | GPU-fa4e0000-0000-4000-8000-000000000000 | "
                     "1328MiB / 16384MiB\n  Process " +
                     std::to_string(a) + ": 1324MiB\n"),
            std::string::npos)
      << smi;
  EXPECT_EQ(Shell(FAKEGPU_SMI " --query --mem-v2"),
            "0,GPU-fa4e0000-0000-4000-8000-000000000000,1328,16384\n"
            "1,GPU-fa4e0000-0000-4000-8000-000000000001,4,16384\n");

  std::string list = Shell(FAKEGPU_CTL " list", &st);
  EXPECT_EQ(st, 0);
  EXPECT_NE(list.find("GPU 0 GPU-fa4e0000-0000-4000-8000-000000000000 \"Tesla V100-SXM2-16GB\" "
                      "used=1324MiB total=16384MiB health=healthy"),
            std::string::npos)
      << list;
  EXPECT_NE(list.find("  pid=" + std::to_string(a) + " used=1324MiB"), std::string::npos) << list;

  EXPECT_EQ(
      Shell(FAKEGPU_CTL " set-health GPU-fa4e0000-0000-4000-8000-000000000001 unhealthy 62", &st),
      "");
  EXPECT_EQ(st, 0);
  EXPECT_FALSE(State().GetHealth(1).healthy);
  EXPECT_EQ(State().GetHealth(1).xid, 62u);
  Shell(FAKEGPU_CTL " set-health 1 healthy", &st);
  EXPECT_EQ(st, 0);
  EXPECT_TRUE(State().GetHealth(1).healthy);
  Shell(FAKEGPU_CTL " set-health 7 healthy", &st);
  EXPECT_NE(st, 0);
  Shell(FAKEGPU_CTL " frobnicate", &st);
  EXPECT_EQ(st, 2);

  Shell(FAKEGPU_CTL " reset", &st);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(State().DeviceUsed(0), 0u);
  done.Send(1);
  EXPECT_EQ(Wait(a), 0);
}

TEST_F(FakeGpuTools, SmiReportsMissingLibrary) {
  int st = -1;
  std::string out = Shell("LD_LIBRARY_PATH=/nonexistent " FAKEGPU_SMI, &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(out.find("cannot load libnvidia-ml.so.1"), std::string::npos) << out;
}

}  // namespace
}  // namespace hami::fakegpu::testing
