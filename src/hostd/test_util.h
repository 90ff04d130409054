// Helpers shared by the hostd tests: a fresh state directory and in-memory GPUs.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "hostd/gpu_source.h"
#include "hostd/proc.h"

namespace hami::hostd::testing {

inline std::string TempDir(const std::string& tag) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / ("hostd-" + tag + "-XXXXXX")).string();
  char* p = mkdtemp(tmpl.data());
  return p ? std::string(p) : std::string();
}

struct TempDirGuard {
  explicit TempDirGuard(const std::string& tag) : path(TempDir(tag)) {}
  ~TempDirGuard() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

// GPU i: "GPU-test-<i>", 16 GiB unless given.
inline std::unique_ptr<GpuSource> Gpus(int n, uint64_t mib = 16384,
                                       const std::string& name = "Tesla T4") {
  std::vector<HostGpu> v;
  for (int i = 0; i < n; ++i) {
    HostGpu g;
    g.uuid = "GPU-test-" + std::to_string(i);
    g.index = i;
    g.name = name;
    g.memory_bytes = mib << 20;
    v.push_back(g);
  }
  return std::make_unique<MemoryGpuSource>(std::move(v));
}

// A child process that sleeps until killed; kill it with KillChild.
inline ProcessRef SpawnSleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  ProcessRef p;
  p.pid = pid;
  for (int i = 0; i < 100 && p.start_ticks == 0; ++i) {
    p.start_ticks = ProcessStartTicks(pid).value_or(0);
  }
  return p;
}

inline void KillChild(const ProcessRef& p) {
  kill(p.pid, SIGKILL);
  int st;
  waitpid(p.pid, &st, 0);
}

}  // namespace hami::hostd::testing
