// Helpers for the fakegpu tests. Every test case gets its own state file and config, and
// runs its CUDA/NVML work in forked children, so the driver's process-wide state (cuInit,
// contexts) starts fresh in each child and never leaks from one case into the next.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fakegpu/state.h"

namespace hami::fakegpu::testing {

class FakeGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fakegpu-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    state_path_ = dir_ + "/state";
    setenv("FAKEGPU_STATE", state_path_.c_str(), 1);
    unsetenv("FAKEGPU_CONFIG");
    unsetenv("CUDA_VISIBLE_DEVICES");
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (system(cmd.c_str()) != 0) ADD_FAILURE() << "cleanup failed";
  }
  // Writes a FAKEGPU_CONFIG file and points the environment at it.
  void WriteConfig(const std::string& text) {
    std::string path = dir_ + "/config";
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text.c_str(), f);
    fclose(f);
    setenv("FAKEGPU_CONFIG", path.c_str(), 1);
  }
  // The state file seen directly (no driver library state in the test process).
  SharedState& State() {
    if (!state_) {
      auto s = SharedState::Open(state_path_);
      EXPECT_TRUE(s.ok()) << s.status().message();
      state_ = std::move(*s);
    }
    return *state_;
  }

  std::string dir_, state_path_;
  std::unique_ptr<SharedState> state_;
};

// Forks; the child runs fn and exits 0, or 1 when it recorded a test failure.
inline pid_t Spawn(const std::function<void()>& fn) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    bool failed_before = ::testing::Test::HasFailure();
    fn();
    fflush(nullptr);
    _exit(::testing::Test::HasFailure() && !failed_before ? 1 : 0);
  }
  return pid;
}

inline int Wait(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline int RunInChild(const std::function<void()>& fn) { return Wait(Spawn(fn)); }

// Runs fn in a child and fails the test when the child failed (its own assertions print the
// details) or died.
inline void ExpectChildOk(const std::function<void()>& fn, const std::string& what = "") {
  int rc = RunInChild(fn);
  EXPECT_EQ(rc, 0) << "child " << what << " failed (exit status, or 128 + signal)";
}

// A one-way channel of small integers between processes.
class Pipe {
 public:
  Pipe() {
    if (pipe(fd_) != 0) ADD_FAILURE() << "pipe";
  }
  ~Pipe() {
    close(fd_[0]);
    close(fd_[1]);
  }
  void Send(uint64_t v) {
    if (write(fd_[1], &v, sizeof v) != sizeof v) ADD_FAILURE() << "pipe write";
  }
  uint64_t Recv() {
    uint64_t v = ~0ull;
    if (read(fd_[0], &v, sizeof v) != sizeof v) ADD_FAILURE() << "pipe read";
    return v;
  }

 private:
  int fd_[2];
};

}  // namespace hami::fakegpu::testing
