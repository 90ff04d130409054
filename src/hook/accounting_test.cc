#include "accounting.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

// ---- the file is opened safely (issue 12) --------------------------------------------------

TEST_F(AccountingTest, NewFileIsPrivateToItsUser) {
  umask(0);  // even a permissive umask must not widen it
  Accounting a;
  ASSERT_TRUE(Open(&a)) << last_error_;
  umask(022);
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST_F(AccountingTest, SymbolicLinkIsRefusedAndItsTargetUntouched) {
  std::string target = dir_ + "/precious";
  int fd = open(target.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(symlink(target.c_str(), path_.c_str()), 0);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("symbolic link"), std::string::npos) << last_error_;
  struct stat st;
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "the link's target was written through";
  unlink(target.c_str());
}

TEST_F(AccountingTest, DanglingSymbolicLinkCreatesNothing) {
  std::string target = dir_ + "/created-through-link";
  ASSERT_EQ(symlink(target.c_str(), path_.c_str()), 0);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(access(target.c_str(), F_OK), 0) << "a file was created through the link";
}

TEST_F(AccountingTest, FifoIsRefusedWithoutHanging) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("not a regular file"), std::string::npos) << last_error_;
}

TEST_F(AccountingTest, GroupOrWorldWritableFileIsRefused) {
  int fd = open(path_.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fchmod(fd, 0666), 0);  // what HAMi-core creates
  close(fd);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("writable by group or others"), std::string::npos) << last_error_;
}

TEST_F(AccountingTest, HardLinkedFileIsRefused) {
  std::string other = dir_ + "/other";
  int fd = open(other.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(link(other.c_str(), path_.c_str()), 0);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("hard links"), std::string::npos) << last_error_;
  unlink(other.c_str());
}

TEST_F(AccountingTest, AnotherUsersFileIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file to another user";
  int fd = open(path_.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fchown(fd, 65534, 65534), 0);
  close(fd);
  Accounting a;
  EXPECT_FALSE(Open(&a));
  EXPECT_NE(last_error_.find("owned by another user"), std::string::npos) << last_error_;
}

// ---- a lock holder that never lets go cannot block the others forever ----------------------

// A child that takes the file's mutex and then `after` (0: sleeps holding it; 1: unmaps the
// file while holding it and exits normally, which a robust mutex cannot detect).
pid_t StartHolder(const std::string& path, int after, int ready_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  Accounting b;
  char err[256];
  if (!b.Open(path.c_str(), err, sizeof(err))) _exit(1);
  auto* mu = reinterpret_cast<pthread_mutex_t*>(b.header()->mutex_storage);
  pthread_mutex_lock(mu);
  if (after == 1) munmap(b.header(), ShmFileSize(HAMI_SHM_DEFAULT_SLOTS));
  (void)!write(ready_fd, "x", 1);
  if (after == 1) _exit(0);
  for (;;) pause();
}

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

TEST_F(AccountingTest, HolderThatNeverReleasesMakesAllocationsFailClosedNotHang) {
  for (int after : {0, 1}) {
    Accounting a;
    ASSERT_TRUE(Open(&a)) << last_error_;
    a.SetLockTimeoutMs(300);
    int dev = a.DeviceEntry("GPU-1", 80ull << 30);
    ASSERT_TRUE(a.Reserve(dev, kMiB, 1024 * kMiB));
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t holder = StartHolder(path_, after, p[1]);
    char c;
    ASSERT_EQ(read(p[0], &c, 1), 1);
    if (after == 1) waitpid(holder, nullptr, 0);  // it exited holding the lock
    uint64_t t0 = NowMs();
    EXPECT_FALSE(a.Reserve(dev, kMiB, 1024 * kMiB)) << "after=" << after;
    uint64_t waited = NowMs() - t0;
    EXPECT_GE(waited, 250u);
    EXPECT_LT(waited, 10000u) << "the wait must be bounded";
    a.Release(dev, kMiB);  // must not hang either
    if (after == 0) {
      kill(holder, SIGKILL);
      waitpid(holder, nullptr, 0);
      // The holder died: the robust mutex recovers and allocations work again.
      EXPECT_TRUE(a.Reserve(dev, kMiB, 1024 * kMiB));
    }
    close(p[0]);
    close(p[1]);
    a.DetachAfterFork();
    unlink(path_.c_str());
  }
}

}  // namespace
}  // namespace hami::vgpu
