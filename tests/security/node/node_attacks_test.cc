// Issue 12, node agents: what a tenant who controls its container directory
// (<hookPath>/vgpu/containers/<pod>_<ctr>/, mounted read-write into the pod) can try against the
// node monitor, which reads it as root. Each test fails if the attack works: the monitor hangs,
// aborts, reads through a link, or reads without bound. Files are planted by a second,
// unprivileged user (nobody) when the test runs as root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/hook_layout.h"
#include "common/pod_meta.h"
#include "common/testing/accounting_files.h"
#include "monitor/collector.h"

namespace hami::monitor {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Tenant and victim share one card, as slices do.
const char kTenantGpu[] = "GPU-7e0a0000-0000-4000-8000-000000000001";
const char kVictimGpu[] = "GPU-7e0a0000-0000-4000-8000-000000000001";

// Runs `fn` in a child process as the tenant (nobody when we are root). Returns its exit status.
int AsTenant(const std::function<void()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("nobody");
      if (pw == nullptr || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(90);
    }
    fn();
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Runs one collection in a child process, so a hang or an abort is observed instead of
// taking the test down. Returns the metrics text, or "" with `outcome` set on failure.
std::string CollectWithin(const CollectorOptions& opts, std::chrono::seconds limit,
                          std::string& outcome) {
  int p[2];
  if (pipe(p) != 0) return "";
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    Collector c(opts, nullptr);
    const std::string text = c.MetricsText();
    (void)c.WriteContentionFiles();
    (void)!write(p[1], text.data(), text.size());
    _exit(0);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int st = 0;
  while (true) {
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      close(p[0]);
      outcome = "the monitor's scan hung";
      return "";
    }
    std::this_thread::sleep_for(10ms);
  }
  ssize_t n;
  char buf[4096];
  while ((n = read(p[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(p[0]);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    outcome = "the monitor's scan died (status " + std::to_string(st) + ")";
    return "";
  }
  return text;
}

class TenantAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami-sec-node-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    opts_.hook_path = dir_;
    opts_.node_name = "node-1";
    layout_ = common::LayoutFor(dir_);
    // The device plugin's records for a tenant pod and a victim pod.
    Allocate("tenant", kTenantGpu);
    Allocate("victim", kVictimGpu);
    // The victim's accounting file: root's, private.
    victim_cache_ = layout_.ContainerDir("uid-victim", "main") + "/vgpu.cache";
    testing::WriteFile(victim_cache_, testing::AccountingBytes(
                                          {{kVictimGpu, 1ull << 30, 777ull << 20, 0, 0, 0}}, 1));
    chmod(victim_cache_.c_str(), 0600);
    // The tenant's directory is the tenant's (the container runs as it).
    tenant_dir_ = layout_.ContainerDir("uid-tenant", "main");
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("nobody");
      ASSERT_NE(pw, nullptr);
      ASSERT_EQ(chown(tenant_dir_.c_str(), pw->pw_uid, pw->pw_gid), 0);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Allocate(const std::string& pod, const std::string& gpu) {
    common::PodMeta m{"team-" + pod, pod, "uid-" + pod, "main", 0, {{gpu, "NVIDIA", 1024, 30}}};
    fs::create_directories(layout_.AllocationDir(m.pod_uid, "main"));
    fs::create_directories(layout_.ContainerDir(m.pod_uid, "main"));
    std::ofstream(layout_.AllocationDir(m.pod_uid, "main") + "/pod.json")
        << common::EncodePodMeta(m);
  }
  // Plants `fn`'s files as the tenant and collects once; the collection must finish in time.
  std::string AttackAndCollect(const std::function<void()>& plant) {
    EXPECT_EQ(AsTenant(plant), 0) << "the tenant could not plant its files";
    std::string outcome;
    std::string text = CollectWithin(opts_, 20s, outcome);
    EXPECT_TRUE(outcome.empty()) << outcome;
    EXPECT_NE(text.find("hami_build_info"), std::string::npos) << "no metrics: " << outcome;
    return text;
  }

  std::string dir_, tenant_dir_, victim_cache_;
  CollectorOptions opts_;
  common::HookLayout layout_;
};

TEST_F(TenantAttackTest, FifoInsteadOfTheAccountingFileDoesNotHangTheMonitor) {
  const std::string text = AttackAndCollect([&] {
    if (mkfifo((tenant_dir_ + "/vgpu.cache").c_str(), 0666) != 0) _exit(1);
    if (mkfifo((tenant_dir_ + "/other.cache").c_str(), 0666) != 0) _exit(1);
  });
  // The victim is still reported.
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes{namespace=\"team-victim\""), std::string::npos);
  EXPECT_NE(text.find("hami_monitor_corrupt_accounting_files 2"), std::string::npos) << text;
}

TEST_F(TenantAttackTest, LinkToAnotherContainersAccountingFileIsNotFollowed) {
  // The tenant would otherwise see (and be billed with) the victim's usage under its own labels.
  const std::string text = AttackAndCollect([&] {
    if (symlink(victim_cache_.c_str(), (tenant_dir_ + "/vgpu.cache").c_str()) != 0) _exit(1);
    if (symlink("/etc/shadow", (tenant_dir_ + "/x.cache").c_str()) != 0) _exit(1);
  });
  const std::string tenant_used = "hami_vgpu_memory_used_bytes{namespace=\"team-tenant\"";
  const auto at = text.find(tenant_used);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_EQ(text.substr(at, text.find('\n', at) - at).back(), '0')
      << "the tenant's series shows bytes read through a link";
}

TEST_F(TenantAttackTest, DirectoryHugeAndTruncatedFilesAreSkipped) {
  const std::string text = AttackAndCollect([&] {
    if (mkdir((tenant_dir_ + "/dir.cache").c_str(), 0755) != 0) _exit(1);
    // A sparse 64 GiB file: reading it whole would exhaust the node.
    int fd = open((tenant_dir_ + "/huge.cache").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, 64ll << 30) != 0) _exit(1);
    close(fd);
    // Cut inside the header (a writer truncating the file under the reader).
    std::string bytes = testing::AccountingBytes({{kTenantGpu, 1ull << 30, 1, 0, 0, 0}}, 1);
    testing::WriteFile(tenant_dir_ + "/vgpu.cache", bytes.substr(0, 100));
  });
  EXPECT_NE(text.find("hami_monitor_corrupt_accounting_files 3"), std::string::npos) << text;
}

TEST_F(TenantAttackTest, ManyEntriesAreBoundedPerScan) {
  const std::string text = AttackAndCollect([&] {
    for (int i = 0; i < 5000; ++i) {
      std::ofstream(tenant_dir_ + "/f" + std::to_string(i) + ".cache") << "x";
    }
  });
  // At most 256 entries of the tenant's directory are looked at in one scan.
  const std::string name = "\nhami_monitor_corrupt_accounting_files ";
  const auto at = text.find(name);
  ASSERT_NE(at, std::string::npos);
  EXPECT_LE(std::stoi(text.substr(at + name.size())), 256);
}

// pod.json lives in the plugin-only allocations directory, but if it is ever wrong (a directory,
// a FIFO, huge, truncated) the monitor skips that container instead of aborting.
TEST_F(TenantAttackTest, BadAllocationRecordsAreSkippedNotFatal) {
  const std::string meta = layout_.AllocationDir("uid-tenant", "main") + "/pod.json";
  fs::remove(meta);
  fs::create_directory(meta);
  Allocate("fifo", "GPU-f1f00000-0000-4000-8000-000000000003");
  const std::string fifo_meta = layout_.AllocationDir("uid-fifo", "main") + "/pod.json";
  fs::remove(fifo_meta);
  ASSERT_EQ(mkfifo(fifo_meta.c_str(), 0644), 0);
  Allocate("trunc", "GPU-7c000000-0000-4000-8000-000000000004");
  const std::string trunc_meta = layout_.AllocationDir("uid-trunc", "main") + "/pod.json";
  std::ofstream(trunc_meta, std::ios::trunc) << "{\"namespace\": \"team-trunc\", \"pod\":";
  Allocate("huge", "GPU-40e00000-0000-4000-8000-000000000005");
  std::ofstream(layout_.AllocationDir("uid-huge", "main") + "/pod.json", std::ios::trunc)
      << std::string(1 << 20, ' ');
  std::string outcome;
  const std::string text = CollectWithin(opts_, 20s, outcome);
  ASSERT_TRUE(outcome.empty()) << outcome;
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes{namespace=\"team-victim\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_monitor_corrupt_accounting_files 4"), std::string::npos) << text;
}

}  // namespace
}  // namespace hami::monitor
