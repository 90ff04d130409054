#include "hostd/limits.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace hami::hostd {
namespace {

Slice TwoGpuSlice() {
  Slice s;
  s.id = 4;
  s.request.priority = 1;
  s.devices = {{"GPU-a", 0, "T", 2048, 30}, {"GPU-b", 1, "T", 2048, 30}};
  s.limits_file = "/state/slices/s4/vgpu.limits";
  s.cache_file = "/state/slices/s4/vgpu.cache";
  return s;
}

TEST(LimitsTest, FileHasEveryKeyOfTheFormat) {
  std::string f = FormatLimitsFile(TwoGpuSlice());
  for (const char* line : {"CUDA_DEVICE_MEMORY_LIMIT_0=2048m\n", "CUDA_DEVICE_SM_LIMIT_0=30\n",
                           "CUDA_DEVICE_UUID_0=GPU-a\n", "CUDA_DEVICE_MEMORY_LIMIT_1=2048m\n",
                           "CUDA_DEVICE_UUID_1=GPU-b\n",
                           "CUDA_DEVICE_MEMORY_SHARED_CACHE=/state/slices/s4/vgpu.cache\n",
                           "CUDA_TASK_PRIORITY=1\n"}) {
    EXPECT_NE(f.find(line), std::string::npos) << line << " missing from\n" << f;
  }
  // Only comment lines and KEY=VALUE lines (docs/limits-file.md).
  size_t pos = 0;
  while (pos < f.size()) {
    size_t nl = f.find('\n', pos);
    std::string l = f.substr(pos, nl - pos);
    EXPECT_TRUE(l.empty() || l[0] == '#' || l.find('=') != std::string::npos) << l;
    pos = nl + 1;
  }
}

TEST(LimitsTest, EnvironmentPointsAtTheSlice) {
  JobContext ctx;
  ctx.libvgpu = "/lib/libvgpu.so";
  ctx.driver_lib_dir = "/fake/lib";
  ctx.extra_env["FAKEGPU_CONFIG"] = "/cfg";
  JobEnv env = BuildJobEnv(TwoGpuSlice(), ctx);
  EXPECT_EQ(env.set["CUDA_VISIBLE_DEVICES"], "GPU-a,GPU-b");
  EXPECT_EQ(env.set["HAMI_LIMITS_FILE"], "/state/slices/s4/vgpu.limits");
  EXPECT_EQ(env.set["CUDA_DEVICE_MEMORY_SHARED_CACHE"], "/state/slices/s4/vgpu.cache");
  EXPECT_EQ(env.set["CUDA_DEVICE_MEMORY_LIMIT_1"], "2048m");
  EXPECT_EQ(env.set["CUDA_TASK_PRIORITY"], "1");
  EXPECT_EQ(env.set["FAKEGPU_CONFIG"], "/cfg");
  EXPECT_EQ(env.prepend["LD_PRELOAD"], "/lib/libvgpu.so");

  std::vector<std::string> out = ApplyJobEnv(
      {"PATH=/bin", "LD_PRELOAD=/other.so", "CUDA_VISIBLE_DEVICES=0", "HOME=/root"}, env);
  auto has = [&](const std::string& kv) {
    return std::find(out.begin(), out.end(), kv) != out.end();
  };
  EXPECT_TRUE(has("PATH=/bin"));
  EXPECT_TRUE(has("LD_PRELOAD=/lib/libvgpu.so:/other.so"));
  EXPECT_TRUE(has("LD_LIBRARY_PATH=/fake/lib"));
  EXPECT_TRUE(has("CUDA_VISIBLE_DEVICES=GPU-a,GPU-b"));
  EXPECT_FALSE(has("CUDA_VISIBLE_DEVICES=0"));
}

}  // namespace
}  // namespace hami::hostd
