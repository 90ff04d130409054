// End to end on one node without a cluster: the device plugin's Allocate writes the files, a
// real process runs under libvgpu.so against the fake driver with the environment Allocate
// returned, and the monitor reports that process's memory under the pod's labels.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "deviceplugin/allocator.h"
#include "deviceplugin/fake_kube_api.h"
#include "monitor/collector.h"

namespace hami::monitor {
namespace {

namespace fs = std::filesystem;
namespace dp = hami::deviceplugin;
using namespace std::chrono_literals;

TEST(MonitorEndToEnd, ProcessUnderLibvgpuIsHeldToTheLimitAndShowsUpWithItsPodLabels) {
#if !defined(HAMI_LIBVGPU) || !defined(HAMI_FAKEGPU_LIB_DIR)
  GTEST_SKIP() << "libvgpu.so or the fake driver is not part of this build";
#else
  const std::string probe = HAMI_VGPU_PROBE;
  if (!fs::exists(probe) || !fs::exists(HAMI_LIBVGPU)) GTEST_SKIP() << "vgpu_probe not built";
  char tmpl[] = "/tmp/hami-e2e-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string gpu = "GPU-fa4e0000-0000-4000-8000-000000000000";  // fake default device 0

  dp::FakeKubeApi kube;
  dp::PodInfo pod;
  pod.ns = "ml";
  pod.name = "train-0";
  pod.uid = "5f0c2e";
  pod.node_name = "node-1";
  pod.annotations[dp::kToAllocateAnnotation] = gpu + ",NVIDIA,2048,0:;";
  pod.annotations[dp::kBindPhaseAnnotation] = "allocating";
  pod.annotations[dp::kVgpuNodeAnnotation] = "node-1";
  pod.containers = {{"trainer", {}, {}}};
  kube.AddPod(pod);
  dp::AllocatorOptions opts;
  opts.node_name = "node-1";
  opts.hook_path = dir;
  dp::Allocator alloc(opts, &kube);
  auto resp = alloc.AllocateContainer({gpu + "-0"});
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  std::string limits_file;
  for (const auto& m : resp->mounts) {
    if (m.container_path == dp::kLimitsMountPath) limits_file = m.host_path;
  }

  // Runs vgpu_probe with the container's environment; returns its pid and stdout pipe.
  auto spawn = [&](const char* mib, const char* seconds, int* out_fd) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      close(out[0]);
      for (const auto& [k, v] : resp->envs) setenv(k.c_str(), v.c_str(), 1);
      // What the container runtime does with NVIDIA_VISIBLE_DEVICES: only the given GPU.
      unsetenv("NVIDIA_VISIBLE_DEVICES");
      setenv("CUDA_VISIBLE_DEVICES", gpu.c_str(), 1);
      setenv("HAMI_LIMITS_FILE", limits_file.c_str(), 1);
      setenv("LD_LIBRARY_PATH", HAMI_FAKEGPU_LIB_DIR, 1);
      setenv("LD_PRELOAD", HAMI_LIBVGPU, 1);
      setenv("FAKEGPU_STATE", (dir + "/fakegpu.state").c_str(), 1);
      execl(probe.c_str(), probe.c_str(), "hold", mib, seconds, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    *out_fd = out[0];
    return pid;
  };
  auto first_line = [](int fd) {
    std::string line;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') line += c;
    return line;
  };
  // The limit the plugin wrote is enforced: 3000 MiB does not fit in 2048 MiB.
  int over_fd = -1;
  pid_t over = spawn("3000", "0", &over_fd);
  EXPECT_EQ(first_line(over_fd), "hold_mib=3000 result=2");  // CUDA_ERROR_OUT_OF_MEMORY
  waitpid(over, nullptr, 0);
  close(over_fd);

  int out_fd = -1;
  pid_t pid = spawn("512", "30", &out_fd);
  EXPECT_EQ(first_line(out_fd), "hold_mib=512 result=0");

  CollectorOptions copts;
  copts.hook_path = dir;
  Collector collector(copts, nullptr);
  double used = -1, limit = -1;
  std::string labels;
  for (int i = 0; i < 50 && used < (512 << 20); ++i) {
    for (const auto& f : collector.Collect()) {
      for (const auto& s : f.samples) {
        if (f.name == "hami_vgpu_memory_used_bytes") used = s.value;
        if (f.name == "hami_vgpu_memory_limit_bytes") limit = s.value;
        if (f.name == "hami_vgpu_memory_used_bytes") {
          labels.clear();
          for (const auto& [k, v] : s.labels) labels += k + "=" + v + ",";
        }
      }
    }
    if (used < (512 << 20)) std::this_thread::sleep_for(100ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(out_fd);
  EXPECT_GE(used, 512.0 * (1 << 20));
  EXPECT_LE(used, 2048.0 * (1 << 20));
  EXPECT_EQ(limit, 2048.0 * (1 << 20));
  EXPECT_EQ(labels, "namespace=ml,pod=train-0,container=trainer,vdevice_index=0,device_uuid=" +
                        gpu + ",zone=vGPU,");
  EXPECT_EQ(collector.corrupt_files_total(), 0u);
  fs::remove_all(dir);
#endif
}

}  // namespace
}  // namespace hami::monitor
