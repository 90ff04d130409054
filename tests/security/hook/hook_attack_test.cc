// libvgpu.so attacked by a second, unprivileged local user ("nobody", uid 65534) sharing a
// world-writable directory with the victim, and by a tenant that controls files the limiter
// reads (issue 12). Every test fails if its attack works: a link followed, a file of another
// user shared, a process left hanging, or a limit dropped or loosened.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "abi/vgpu_shm.h"
#include "vgpu/process.h"

namespace hami::testing {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr uid_t kOtherTenant = 65533;  // a third, unprivileged owner
constexpr int kCudaNotInitialized = 3;

// Runs fn in a child that has dropped to `uid`/`gid` with no supplementary groups, as
// `setpriv --reuid --regid --clear-groups` would; returns fn's result (or 100+errno).
int AsUser(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0)
      _exit(100 + errno);
    _exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

class HookAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to act as a second user (nobody)";
    // Like /tmp: world-writable and sticky, shared by the victim and the attacker.
    char d[] = "/tmp/hami_sec_hookXXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    ASSERT_EQ(chmod(dir_.c_str(), 01777), 0);
    root_dir_ = dir_ + "/root-only";
    ASSERT_EQ(mkdir(root_dir_.c_str(), 0700), 0);
    std::ofstream(dir_ + "/gpus.conf")
        << "uuid=GPU-11111111-2222-3333-4444-000000000000 name=H100 mem=16g ctxmem=100m\n"
        << "uuid=GPU-11111111-2222-3333-4444-000000000001 name=H100 mem=16g ctxmem=100m\n";
    chmod((dir_ + "/gpus.conf").c_str(), 0644);
    cache_ = dir_ + "/vgpu.cache";
    int can_run = AsUser(kNobody, kNogroup, [] {
      return access(VGPU_PROBE, X_OK) == 0 && access(VGPU_LIB, R_OK) == 0 ? 0 : 1;
    });
    nobody_can_run_ = can_run == 0;
  }
  void TearDown() override {
    if (!dir_.empty() && system(("rm -rf " + dir_).c_str()) != 0) ADD_FAILURE() << "cleanup";
  }

  // A CUDA process of the container: fake driver, libvgpu.so preloaded, a 1 GiB limit.
  Env VictimEnv(const std::string& state = "fake.state") {
    return Env{
        {"LD_LIBRARY_PATH", FAKEGPU_LIB_DIR},    {"LD_PRELOAD", VGPU_LIB},
        {"FAKEGPU_CONFIG", dir_ + "/gpus.conf"}, {"FAKEGPU_STATE", dir_ + "/" + state},
        {"CUDA_DEVICE_MEMORY_LIMIT", "1g"},      {"CUDA_DEVICE_MEMORY_SHARED_CACHE", cache_}};
  }
  // Runs the probe as root, or as nobody (through setpriv, as a container user would run).
  Result Probe(const std::vector<std::string>& args, const Env& env, bool as_nobody = false,
               int timeout_s = 30) {
    std::vector<std::string> argv;
    if (as_nobody) argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    argv.push_back(VGPU_PROBE);
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, env, timeout_s);
  }
  void RequireNobodyCanRun() {
    if (!nobody_can_run_) GTEST_SKIP() << "nobody cannot reach " << VGPU_PROBE;
  }
  void WriteRootFile(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path, std::ios::binary) << text;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  std::string dir_, root_dir_, cache_;
  bool nobody_can_run_ = false;
};

// ---- the accounting file -------------------------------------------------------------------

TEST_F(HookAttackTest, SymlinkedAccountingFileDoesNotWriteARootOnlyFile) {
  std::string precious = root_dir_ + "/precious";
  WriteRootFile(precious, "root secrets\n", 0600);
  ASSERT_EQ(AsUser(kNobody, kNogroup, [&] { return symlink(precious.c_str(), cache_.c_str()); }),
            0);
  Result r = Probe({"init"}, VictimEnv());
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(precious), "root secrets\n") << "the root-only file was written through";
}

TEST_F(HookAttackTest, DanglingSymlinkDoesNotCreateAFileForTheAttacker) {
  std::string planted = root_dir_ + "/planted";
  ASSERT_EQ(AsUser(kNobody, kNogroup, [&] { return symlink(planted.c_str(), cache_.c_str()); }), 0);
  Result r = Probe({"init"}, VictimEnv());
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(access(planted.c_str(), F_OK), 0) << "a file was created through the link";
}

TEST_F(HookAttackTest, FifoAccountingFileFailsClosedWithoutHanging) {
  ASSERT_EQ(AsUser(kNobody, kNogroup, [&] { return mkfifo(cache_.c_str(), 0666); }), 0);
  uint64_t t0 = NowMs();
  Result r = Probe({"init"}, VictimEnv(), false, 20);
  EXPECT_LT(NowMs() - t0, 15000u) << "CUDA initialisation hung on a FIFO";
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
}

TEST_F(HookAttackTest, AnotherUsersAccountingFileIsNotShared) {
  // The attacker plants a file of its own, private or world-writable, where the victim's
  // accounting file goes: sharing it would let it count (and block) the victim's memory.
  for (mode_t mode : {0600, 0666}) {
    unlink(cache_.c_str());
    ASSERT_EQ(AsUser(kNobody, kNogroup,
                     [&] {
                       int fd = open(cache_.c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
                       if (fd < 0) return 1;
                       fchmod(fd, mode);
                       return close(fd);
                     }),
              0);
    Result r = Probe({"init"}, VictimEnv());
    EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << std::oct << mode << r.err;
    EXPECT_NE(r.err.find("owned by another user"), std::string::npos) << r.err;
  }
}

TEST_F(HookAttackTest, VictimsAccountingFileCannotBeOpenedByAnotherUser) {
  Result r = Probe({"info"}, VictimEnv());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  struct stat st;
  ASSERT_EQ(stat(cache_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Mapping it (to hold its mutex or rewrite the counters) needs opening it first.
  EXPECT_EQ(AsUser(kNobody, kNogroup,
                   [&] {
                     int fd = open(cache_.c_str(), O_RDWR);
                     if (fd >= 0) return 1;
                     fd = open(cache_.c_str(), O_RDONLY);
                     return fd >= 0 ? 2 : 0;
                   }),
            0)
      << "another user opened the victim's accounting file";
}

// A process that can open the file (the container's own user) takes its mutex and never lets
// go, or unmaps the file while holding it and exits (a robust mutex cannot see that): the
// others must fail closed within a bounded time, never hang.
class StuckHolderTest : public HookAttackTest, public ::testing::WithParamInterface<bool> {};

TEST_P(StuckHolderTest, AllocationFailsClosedInsteadOfHanging) {
  bool unmap_and_exit = GetParam();
  RequireNobodyCanRun();
  Env env = VictimEnv("fake-nobody.state");
  env["PROBE_GO_FILE"] = dir_ + "/go";
  std::vector<std::string> argv = {
      "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
      VGPU_PROBE,         "fill",          "alloc",         "16"};
  Child victim = Start(argv, env);
  ASSERT_EQ(victim.ReadLine(20000), "ready=1") << "the victim did not start";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t holder = fork();
  if (holder == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0)
      _exit(1);
    int fd = open(cache_.c_str(), O_RDWR);
    size_t size = HAMI_SHM_HEADER_SIZE + HAMI_SHM_DEFAULT_SLOTS * size_t{HAMI_SHM_SLOT_SIZE};
    void* p = fd < 0 ? MAP_FAILED : mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) _exit(2);
    auto* h = static_cast<hami_shm_header*>(p);
    pthread_mutex_lock(reinterpret_cast<pthread_mutex_t*>(h->mutex_storage));
    if (unmap_and_exit) munmap(p, size);
    (void)!write(ready[1], "x", 1);
    if (unmap_and_exit) _exit(0);
    for (;;) pause();
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the holder could not take the lock";
  uint64_t t0 = NowMs();
  std::ofstream(dir_ + "/go") << "go\n";
  std::string out;
  for (std::string line; !(line = victim.ReadLine(40000)).empty();) out += line + "\n";
  Result r = victim.Wait(10);
  r.out = out + r.out;
  uint64_t waited = NowMs() - t0;
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  EXPECT_LT(waited, 30000u) << "the victim was blocked by the lock holder";
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.GetInt("stop_error"), 2) << "must fail with CUDA_ERROR_OUT_OF_MEMORY: " << r.out;
  EXPECT_EQ(r.GetInt("allocated_mib"), 0) << r.out;
}

INSTANTIATE_TEST_SUITE_P(HoldOrUnmap, StuckHolderTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "UnmapAndExit" : "Hold"; });

// ---- the limits file -----------------------------------------------------------------------

TEST_F(HookAttackTest, LimitsFileWrittenByAnotherUserIsRefused) {
  // A tenant-writable limits file (here: the tenant's own) must not lift the 1 GiB limit.
  std::string limits = dir_ + "/limits";
  ASSERT_EQ(AsUser(kNobody, kNogroup,
                   [&] {
                     int fd = open(limits.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
                     const char kText[] = "CUDA_DEVICE_MEMORY_LIMIT=16g\n";
                     bool ok = fd >= 0 && write(fd, kText, sizeof(kText) - 1) > 0;
                     return ok && close(fd) == 0 ? 0 : 1;
                   }),
            0);
  Env env = VictimEnv();
  env["HAMI_LIMITS_FILE"] = limits;
  Result r = Probe({"init"}, env);
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("owned by another user"), std::string::npos) << r.err;
}

TEST_F(HookAttackTest, WorldWritableLimitsFileRewrittenByAnotherUserIsRefused) {
  std::string limits = dir_ + "/limits";
  WriteRootFile(limits, "CUDA_DEVICE_MEMORY_LIMIT=1g\n", 0666);
  ASSERT_EQ(AsUser(kNobody, kNogroup,
                   [&] {
                     int fd = open(limits.c_str(), O_WRONLY | O_TRUNC);
                     const char kText[] = "CUDA_DEVICE_MEMORY_LIMIT=16g\n";
                     bool ok = fd >= 0 && write(fd, kText, sizeof(kText) - 1) > 0;
                     return ok && close(fd) == 0 ? 0 : 1;
                   }),
            0);
  Env env = VictimEnv();
  env["HAMI_LIMITS_FILE"] = limits;
  Result r = Probe({"init"}, env);
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("writable by group or others"), std::string::npos) << r.err;
}

TEST_F(HookAttackTest, LimitsFileOfAnotherTenantIsRefusedByANonRootProcess) {
  RequireNobodyCanRun();
  std::string limits = dir_ + "/limits";
  WriteRootFile(limits, "CUDA_DEVICE_MEMORY_LIMIT=16g\n", 0644);
  ASSERT_EQ(chown(limits.c_str(), kOtherTenant, kOtherTenant), 0);
  Env env = VictimEnv("fake-nobody.state");
  env["HAMI_LIMITS_FILE"] = limits;
  Result r = Probe({"init"}, env, /*as_nobody=*/true);
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("owned by another user"), std::string::npos) << r.err;
}

TEST_F(HookAttackTest, SymlinkedLimitsFileIsRefused) {
  // The link leads to a real limits file of root's with a looser limit.
  std::string loose = root_dir_ + "/loose.limits";
  WriteRootFile(loose, "CUDA_DEVICE_MEMORY_LIMIT=16g\n", 0644);
  chmod(root_dir_.c_str(), 0755);
  std::string limits = dir_ + "/limits";
  ASSERT_EQ(AsUser(kNobody, kNogroup, [&] { return symlink(loose.c_str(), limits.c_str()); }), 0);
  Env env = VictimEnv();
  env["HAMI_LIMITS_FILE"] = limits;
  Result r = Probe({"init"}, env);
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
}

TEST_F(HookAttackTest, FifoLimitsFileFailsClosedWithoutHanging) {
  std::string limits = dir_ + "/limits";
  ASSERT_EQ(AsUser(kNobody, kNogroup, [&] { return mkfifo(limits.c_str(), 0666); }), 0);
  Env env = VictimEnv();
  env["HAMI_LIMITS_FILE"] = limits;
  uint64_t t0 = NowMs();
  Result r = Probe({"init"}, env, false, 20);
  EXPECT_LT(NowMs() - t0, 15000u) << "CUDA initialisation hung on a FIFO";
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
}

// Malformed files written by the node agent (root), read by a tenant's process (nobody):
// each must fail closed with a named error, never run with a limit dropped or loosened.
struct Malformed {
  const char* name;
  std::string text;
  const char* expect;
};
void PrintTo(const Malformed& m, std::ostream* os) { *os << m.name; }

class MalformedLimitsTest : public HookAttackTest,
                            public ::testing::WithParamInterface<Malformed> {};

TEST_P(MalformedLimitsTest, FailsClosedWithANamedError) {
  RequireNobodyCanRun();
  std::string limits = dir_ + "/limits";
  WriteRootFile(limits, GetParam().text, 0644);
  Env env = VictimEnv("fake-nobody.state");
  env.erase("CUDA_DEVICE_MEMORY_LIMIT");  // the file alone configures the process
  env["HAMI_LIMITS_FILE"] = limits;
  Result r = Probe({"init"}, env, /*as_nobody=*/true);
  EXPECT_EQ(r.GetInt("init_result"), kCudaNotInitialized) << r.out << r.err;
  EXPECT_NE(r.err.find(GetParam().expect), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedLimitsTest,
    ::testing::Values(
        // Used to drop device 1's limit silently (16 GiB visible instead of 1 GiB).
        Malformed{
            "NulByte",
            std::string("CUDA_DEVICE_MEMORY_LIMIT_0=2g\0\nCUDA_DEVICE_MEMORY_LIMIT_1=1g\n", 61),
            "NUL byte"},
        Malformed{"DuplicateKey", "CUDA_DEVICE_MEMORY_LIMIT=1g\nCUDA_DEVICE_MEMORY_LIMIT=16g\n",
                  "duplicate key"},
        Malformed{"IndexPastSixteen", "CUDA_DEVICE_MEMORY_LIMIT_99=1g\n", "device index"},
        Malformed{"IndexPastTheVisibleDevices",
                  "CUDA_DEVICE_MEMORY_LIMIT_0=1g\nCUDA_DEVICE_MEMORY_LIMIT_5=1g\n",
                  "only 2 devices are visible"},
        Malformed{"Empty", "", "sets nothing"},
        Malformed{"OnlyComments", "# nothing here\n\n", "sets nothing"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hami::testing
