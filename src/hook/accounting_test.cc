#include "accounting.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace hami::vgpu {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

class AccountingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vgpu_acct_testXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/vgpu.cache";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  bool Open(Accounting* a) {
    char err[512];
    bool ok = a->Open(path_.c_str(), err, sizeof(err));
    last_error_ = err;
    return ok;
  }
  // Runs fn in a forked child; returns its exit status (or -signal).
  template <typename Fn>
  int InChild(Fn fn, bool wait_for_it = true, pid_t* pid_out = nullptr) {
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    if (pid_out) *pid_out = pid;
    if (!wait_for_it) return 0;
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  }
  std::string dir_, path_, last_error_;
};

TEST_F(AccountingTest, ReserveHoldsTheLimitAcrossProcesses) {
  Accounting a;
  ASSERT_TRUE(Open(&a)) << last_error_;
  int dev = a.DeviceEntry("GPU-1", 80ull << 30);
  ASSERT_GE(dev, 0);
  EXPECT_TRUE(a.Reserve(dev, 600 * kMiB, 1024 * kMiB));
  // A second process of the container sees the same device entry and the same total.
  int rc = InChild([&] {
    Accounting b;
    char err[256];
    if (!b.Open(path_.c_str(), err, sizeof(err))) return 10;
    int d = b.DeviceEntry("GPU-1", 80ull << 30);
    if (d != dev) return 11;
    if (b.Reserve(d, 500 * kMiB, 1024 * kMiB)) return 12;   // 600 + 500 > 1024
    if (!b.Reserve(d, 424 * kMiB, 1024 * kMiB)) return 13;  // exactly fills it
    if (b.Used(d) != 1024 * kMiB) return 14;
    b.Release(d, 424 * kMiB);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(a.Used(dev), 600 * kMiB);
  a.Release(dev, 600 * kMiB);
  EXPECT_EQ(a.Used(dev), 0u);
}

TEST_F(AccountingTest, ReleaseNeverUnderflowsOrTakesOthersUsage) {
  Accounting a;
  ASSERT_TRUE(Open(&a));
  int dev = a.DeviceEntry("GPU-1", 1ull << 30);
  ASSERT_TRUE(a.Reserve(dev, 10 * kMiB, 0));
  a.Release(dev, 50 * kMiB);  // more than we hold: only ours is dropped
  EXPECT_EQ(a.Used(dev), 0u);
  EXPECT_EQ(a.MyUsed(dev), 0u);
}

TEST_F(AccountingTest, DeadProcessUsageIsReclaimedAtTheLimit) {
  Accounting a;
  ASSERT_TRUE(Open(&a));
  int dev = a.DeviceEntry("GPU-1", 80ull << 30);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = 0;
  InChild(
      [&] {
        Accounting b;
        char err[256];
        if (!b.Open(path_.c_str(), err, sizeof(err))) return 1;
        b.Reserve(b.DeviceEntry("GPU-1", 80ull << 30), 900 * kMiB, 1024 * kMiB);
        char c = 'x';
        if (write(pipefd[1], &c, 1) != 1) return 2;
        pause();
        return 0;
      },
      false, &child);
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  EXPECT_EQ(a.Used(dev), 900 * kMiB);
  EXPECT_FALSE(a.Reserve(dev, 200 * kMiB, 1024 * kMiB));  // the child is alive
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(a.Reserve(dev, 200 * kMiB, 1024 * kMiB));  // swept on the way
  EXPECT_EQ(a.Used(dev), 200 * kMiB);
  close(pipefd[0]);
  close(pipefd[1]);
}

TEST_F(AccountingTest, LockHolderKilledInsideCriticalSectionDoesNotDeadlock) {
  Accounting a;
  ASSERT_TRUE(Open(&a));
  int dev = a.DeviceEntry("GPU-1", 80ull << 30);
  ASSERT_TRUE(a.Reserve(dev, 100 * kMiB, 0));
  int rc = InChild([&] {
    Accounting b;
    char err[256];
    if (!b.Open(path_.c_str(), err, sizeof(err))) return 1;
    b.Reserve(b.DeviceEntry("GPU-1", 0), 300 * kMiB, 0);
    // Die holding the mutex, with the device total deliberately wrong.
    pthread_mutex_lock(reinterpret_cast<pthread_mutex_t*>(b.header()->mutex_storage));
    b.header()->devices[0].used_bytes = 12345;
    raise(SIGKILL);
    return 0;
  });
  EXPECT_EQ(rc, -SIGKILL);
  // Next lock sees EOWNERDEAD, rebuilds totals from the slots (100 ours + 300 the dead's),
  // then the sweep reclaims the dead process's 300 when the limit is reached.
  EXPECT_TRUE(a.Reserve(dev, 0, 0));
  EXPECT_EQ(a.Used(dev), 400 * kMiB);
  EXPECT_TRUE(a.Reserve(dev, 900 * kMiB, 1024 * kMiB));
  EXPECT_EQ(a.Used(dev), 1000 * kMiB);
}

TEST_F(AccountingTest, SlotsOfDeadProcessesAreReusedNoFixedSmallTable) {
  Accounting a;
  ASSERT_TRUE(Open(&a));
  for (int i = 0; i < 200; ++i) {
    int rc = InChild([&] {
      Accounting b;
      char err[256];
      return b.Open(path_.c_str(), err, sizeof(err)) ? 0 : 1;
    });
    ASSERT_EQ(rc, 0) << "process " << i;
  }
  EXPECT_LE(a.header()->slot_high_water, 3u);
}

TEST_F(AccountingTest, CorruptFileFailsClosedWithMessage) {
  int fd = open(path_.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  std::string junk(ShmFileSize(HAMI_SHM_DEFAULT_SLOTS), 'z');
  ASSERT_EQ(write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  close(fd);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("corrupt"), std::string::npos) << last_error_;
  EXPECT_NE(last_error_.find(path_), std::string::npos) << last_error_;

  ASSERT_EQ(truncate(path_.c_str(), 100), 0);
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("smaller than its header"), std::string::npos) << last_error_;
}

TEST_F(AccountingTest, SixteenProcessesRacingNeverExceedTheLimit) {
  Accounting a;
  ASSERT_TRUE(Open(&a));
  int dev = a.DeviceEntry("GPU-1", 80ull << 30);
  const uint64_t limit = 256 * kMiB;
  pid_t pids[16];
  for (pid_t& p : pids) {
    InChild(
        [&] {
          Accounting b;
          char err[256];
          if (!b.Open(path_.c_str(), err, sizeof(err))) return 1;
          int d = b.DeviceEntry("GPU-1", 80ull << 30);
          unsigned seed = static_cast<unsigned>(getpid());
          for (int i = 0; i < 3000; ++i) {
            uint64_t sz = (1 + rand_r(&seed) % 64) * kMiB;
            if (b.Reserve(d, sz, limit)) {
              if (b.Used(d) > limit) return 2;
              b.Release(d, sz);
            }
          }
          return 0;
        },
        false, &p);
  }
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
  }
  EXPECT_EQ(a.Used(dev), 0u);
}

}  // namespace
}  // namespace hami::vgpu
