// End-to-end: the `hami` binary as daemon and as `hami run`, in separate processes, as a user
// would run them. GPUs are in-memory (--static-gpus) or the fake NVML driver when it is built.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "hostd/client.h"
#include "hostd/proc.h"
#include "hostd/test_util.h"

extern char** environ;

namespace hami::hostd {
namespace {

using nlohmann::json;
using testing::TempDirGuard;
using Clock = std::chrono::steady_clock;

pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
            const std::string& out_file) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& e : extra_env) env.push_back(e);
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> a = args;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

template <typename F>
bool WaitFor(F pred, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class E2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (pid_t p : children_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    StopServe();
  }

  void StartServe(std::vector<std::string> extra = {"--static-gpus", "8g"},
                  std::vector<std::string> env = {}) {
    std::filesystem::remove(dir_.path + "/port");
    const std::string sock = dir_.path + "/hami.sock";
    std::vector<std::string> args = {
        HAMI_BIN, "serve",       "--state-dir",       dir_.path + "/state", "--listen",
        sock,     "--port-file", dir_.path + "/port", "--reap-interval-ms", "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    serve_ = Spawn(args, env, dir_.path + "/serve.log");
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir_.path + "/port"); },
                        std::chrono::seconds(10)))
        << ReadFile(dir_.path + "/serve.log");
    addr_ = "unix:" + sock;
    auto c = ApiClient::Make(addr_);
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  void StopServe(int sig = SIGTERM) {
    if (serve_ > 0) {
      kill(serve_, sig);
      WaitExit(serve_);
      serve_ = -1;
    }
  }
  pid_t Hami(std::vector<std::string> args, const std::string& log = "run.log") {
    args.insert(args.begin(), HAMI_BIN);
    pid_t p = Spawn(args, {"HAMI_ADDR=" + addr_}, dir_.path + "/" + log);
    children_.push_back(p);
    return p;
  }
  int HamiWait(std::vector<std::string> args, const std::string& log = "run.log") {
    pid_t p = Hami(std::move(args), log);
    int rc = WaitExit(p);
    children_.erase(std::remove(children_.begin(), children_.end(), p), children_.end());
    return rc;
  }
  int Reap(pid_t p) {
    int rc = WaitExit(p);
    children_.erase(std::remove(children_.begin(), children_.end(), p), children_.end());
    return rc;
  }
  json Slices() {
    auto r = client_->CallOk("GET", "/v1/slices");
    return r.ok() ? (*r)["slices"] : json::array();
  }
  json Queue() {
    auto r = client_->CallOk("GET", "/v1/queue");
    return r.ok() ? (*r)["queue"] : json::array();
  }
  // Waits until one slice has its job attached and returns it.
  json RunningSlice() {
    json found;
    WaitFor(
        [&] {
          for (const auto& s : Slices()) {
            if (s["job"]["pid"].get<int>() > 0) {
              found = s;
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(10));
    return found;
  }

  TempDirGuard dir_{"e2e"};
  pid_t serve_ = -1;
  std::string addr_;
  std::unique_ptr<ApiClient> client_;
  std::vector<pid_t> children_;
};

TEST_F(E2eTest, KillDashNineOfHamiRunFreesSliceAndEndsJob) {
  StartServe();
  pid_t run = Hami({"run", "--no-preload", "--gpumem", "1g", "--", "sleep", "60"});
  json s = RunningSlice();
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_.path + "/run.log");
  ProcessRef job{s["job"]["pid"].get<int>(), s["job"]["start_ticks"].get<uint64_t>()};
  EXPECT_TRUE(IsAlive(job));
  auto t0 = Clock::now();
  kill(run, SIGKILL);
  EXPECT_EQ(Reap(run), 128 + SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)))
      << Slices().dump();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(WaitFor([&] { return !IsAlive(job); }, std::chrono::seconds(2)));
  EXPECT_FALSE(std::filesystem::exists(s["dir"].get<std::string>()));
}

TEST_F(E2eTest, KillDashNineOfJobFreesSliceAndExitCodeIs137) {
  StartServe();
  pid_t run = Hami({"run", "--no-preload", "--gpumem", "1g", "--", "sleep", "60"});
  json s = RunningSlice();
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_.path + "/run.log");
  auto t0 = Clock::now();
  kill(s["job"]["pid"].get<int>(), SIGKILL);
  EXPECT_EQ(Reap(run), 137);
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
}

TEST_F(E2eTest, ExitCodesAndEnvironment) {
  StartServe();
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--", "sh", "-c", "exit 7"}), 7);
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--", "sh", "-c", "kill -TERM $$"}), 143);
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--", "/no/such/program"}), 127);
  EXPECT_EQ(HamiWait({"run", "--gpumem", "lots", "--", "true"}), 2);
  EXPECT_EQ(HamiWait({"run", "--gpucores", "300", "--", "true"}), 2);
  // Without a readable libvgpu.so the job is refused rather than run uncapped.
  EXPECT_EQ(HamiWait({"run", "--libvgpu", "/no/such/libvgpu.so", "--", "true"}), 78);
  // The job sees its slice.
  std::string out = dir_.path + "/env.txt";
  EXPECT_EQ(
      HamiWait({"run", "--no-preload", "--gpumem", "2g", "--gpucores", "30", "--priority", "1",
                "--", "sh", "-c", "cat \"$HAMI_LIMITS_FILE\" > " + out + "; env >> " + out}),
      0);
  std::string text = ReadFile(out);
  for (const char* want :
       {"CUDA_DEVICE_MEMORY_LIMIT_0=2048m", "CUDA_DEVICE_SM_LIMIT_0=30",
        "CUDA_DEVICE_UUID_0=GPU-00000000-0000-4000-8000-000000000000",
        "CUDA_VISIBLE_DEVICES=GPU-00000000-0000-4000-8000-000000000000", "CUDA_TASK_PRIORITY=1",
        "CUDA_DEVICE_MEMORY_SHARED_CACHE=", "HAMI_LIMITS_FILE="}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  // `hami run` ignores SIGPIPE for itself only: the job gets the default disposition.
  std::string status = dir_.path + "/status.txt";
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--", "sh", "-c",
                      "grep SigIgn /proc/self/status > " + status}),
            0);
  std::string ign = ReadFile(status);
  ASSERT_NE(ign.find("SigIgn:"), std::string::npos) << ign;
  uint64_t mask = std::stoull(ign.substr(ign.find(':') + 1), nullptr, 16);
  EXPECT_EQ(mask & (uint64_t{1} << (SIGPIPE - 1)), 0u) << ign;
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
}

TEST_F(E2eTest, NoWaitAndNeverFitsExitCodes) {
  StartServe();
  pid_t holder = Hami({"run", "--no-preload", "--", "sleep", "60"});  // whole card
  ASSERT_FALSE(RunningSlice().is_null());
  EXPECT_EQ(
      HamiWait({"run", "--no-preload", "--no-wait", "--gpumem", "1g", "--", "true"}, "nowait.log"),
      75);
  EXPECT_NE(ReadFile(dir_.path + "/nowait.log").find("insufficient GPU memory"), std::string::npos);
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--gpumem", "100g", "--", "true"}), 77);
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--gpu-type", "A100", "--", "true"}), 77);
  kill(holder, SIGTERM);  // passed on to the job
  EXPECT_EQ(Reap(holder), 143);
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
}

TEST_F(E2eTest, QueueServesInArrivalOrderAndShowsPosition) {
  StartServe();
  std::string order = dir_.path + "/order.txt";
  pid_t holder = Hami({"run", "--no-preload", "--", "sleep", "60"});
  ASSERT_FALSE(RunningSlice().is_null());
  pid_t b = Hami({"run", "--no-preload", "--gpumem", "6g", "--", "sh", "-c", "echo B >> " + order},
                 "b.log");
  ASSERT_TRUE(WaitFor([&] { return Queue().size() == 1; }, std::chrono::seconds(10)));
  pid_t c = Hami({"run", "--no-preload", "--gpumem", "6g", "--", "sh", "-c", "echo C >> " + order},
                 "c.log");
  ASSERT_TRUE(WaitFor([&] { return Queue().size() == 2; }, std::chrono::seconds(10)));
  json q = Queue();
  EXPECT_EQ(q[0]["request"]["owner"]["pid"], b);
  EXPECT_EQ(q[1]["request"]["owner"]["pid"], c);
  EXPECT_TRUE(WaitFor(
      [&] {
        return ReadFile(dir_.path + "/c.log").find("position 2 in queue") != std::string::npos;
      },
      std::chrono::seconds(5)))
      << ReadFile(dir_.path + "/c.log");
  kill(holder, SIGTERM);
  EXPECT_EQ(Reap(holder), 143);
  EXPECT_EQ(Reap(b), 0);
  EXPECT_EQ(Reap(c), 0);
  EXPECT_EQ(ReadFile(order), "B\nC\n");
  EXPECT_NE(ReadFile(dir_.path + "/b.log").find("position 1 in queue"), std::string::npos);
}

TEST_F(E2eTest, InterruptedWaitLeavesTheQueue) {
  StartServe();
  pid_t holder = Hami({"run", "--no-preload", "--", "sleep", "60"});
  ASSERT_FALSE(RunningSlice().is_null());
  pid_t w = Hami({"run", "--no-preload", "--", "true"});
  ASSERT_TRUE(WaitFor([&] { return Queue().size() == 1; }, std::chrono::seconds(10)));
  kill(w, SIGINT);
  EXPECT_EQ(Reap(w), 128 + SIGINT);
  EXPECT_TRUE(Queue().empty());
  kill(holder, SIGKILL);
  Reap(holder);
}

TEST_F(E2eTest, DaemonKilledAndRestartedKeepsSlices) {
  StartServe();
  pid_t run =
      Hami({"run", "--no-preload", "--gpumem", "3g", "--gpucores", "20", "--", "sleep", "60"});
  json s = RunningSlice();
  ASSERT_FALSE(s.is_null());
  StopServe(SIGKILL);
  StartServe();
  json after = Slices();
  ASSERT_EQ(after.size(), 1u) << after.dump();
  EXPECT_EQ(after[0]["id"], s["id"]);
  EXPECT_EQ(after[0]["job"]["pid"], s["job"]["pid"]);
  EXPECT_EQ(after[0]["devices"][0]["memory_mib"], 3072);
  EXPECT_EQ(after[0]["devices"][0]["cores"], 20);
  auto gpus = client_->CallOk("GET", "/v1/gpus");
  ASSERT_TRUE(gpus.ok());
  EXPECT_EQ((*gpus)["gpus"][0]["allocated_memory_mib"], 3072);
  // The restarted daemon still notices when the job goes away.
  kill(run, SIGKILL);
  Reap(run);
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
}

TEST_F(E2eTest, DaemonRestartWhileWaitingKeepsTheQueuePlace) {
  StartServe();
  pid_t holder = Hami({"run", "--no-preload", "--", "sleep", "60"});
  ASSERT_FALSE(RunningSlice().is_null());
  std::string out = dir_.path + "/waiter.txt";
  pid_t waiter =
      Hami({"run", "--no-preload", "--gpumem", "1g", "--", "sh", "-c", "echo ran > " + out},
           "waiter.log");
  ASSERT_TRUE(WaitFor([&] { return Queue().size() == 1; }, std::chrono::seconds(10)));
  StopServe(SIGKILL);
  StartServe({"--static-gpus", "8g"}, {});
  ASSERT_EQ(Queue().size(), 1u) << ReadFile(dir_.path + "/serve.log");
  kill(holder, SIGKILL);  // the restarted daemon frees its slice and serves the queue
  Reap(holder);
  EXPECT_EQ(Reap(waiter), 0) << ReadFile(dir_.path + "/waiter.log");
  EXPECT_EQ(ReadFile(out), "ran\n");
}

TEST_F(E2eTest, ConcurrentHamiRunsNeverOvercommit) {
  StartServe({"--static-gpus", "10000m,10000m"});
  std::string barrier = dir_.path + "/barrier";
  std::ofstream(barrier) << "x";
  std::vector<pid_t> runs;
  for (int i = 0; i < 12; ++i) {
    runs.push_back(Hami({"run", "--no-preload", "--no-wait", "--gpumem", "3000m", "--", "sh", "-c",
                         "while [ -e " + barrier + " ]; do sleep 0.05; done"},
                        "conc.log"));
  }
  int refused = 0;
  std::vector<pid_t> granted_runs;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  std::vector<bool> done(runs.size(), false);
  while (Clock::now() < deadline) {
    for (size_t i = 0; i < runs.size(); ++i) {
      if (done[i]) continue;
      int st;
      if (waitpid(runs[i], &st, WNOHANG) == runs[i]) {
        done[i] = true;
        children_.erase(std::remove(children_.begin(), children_.end(), runs[i]), children_.end());
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 75) << st;
        ++refused;
      }
    }
    auto g = client_->CallOk("GET", "/v1/gpus");
    ASSERT_TRUE(g.ok());
    for (const auto& gpu : (*g)["gpus"]) {
      ASSERT_LE(gpu["allocated_memory_mib"].get<int64_t>(), gpu["memory_mib"].get<int64_t>());
    }
    if (refused + static_cast<int>(Slices().size()) == 12) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(refused, 6);
  EXPECT_EQ(Slices().size(), 6u);
  std::filesystem::remove(barrier);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!done[i]) {
      EXPECT_EQ(Reap(runs[i]), 0);
    }
  }
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
}

TEST_F(E2eTest, CliViewsAndJson) {
  StartServe({"--static-gpus", "8g"});
  pid_t run = Hami({"run", "--no-preload", "--gpumem", "2g", "--", "sleep", "60"});
  ASSERT_FALSE(RunningSlice().is_null());
  EXPECT_EQ(HamiWait({"top", "--once"}, "top.txt"), 0);
  std::string top = ReadFile(dir_.path + "/top.txt");
  EXPECT_NE(top.find("FAKE GPU"), std::string::npos) << top;
  EXPECT_NE(top.find("2048 MiB / 8192 MiB"), std::string::npos) << top;
  EXPECT_NE(top.find("sleep 60"), std::string::npos) << top;
  EXPECT_EQ(HamiWait({"ps", "--json"}, "ps.json"), 0);
  json ps = json::parse(ReadFile(dir_.path + "/ps.json"), nullptr, false);
  ASSERT_TRUE(ps.is_array()) << ReadFile(dir_.path + "/ps.json");
  EXPECT_EQ(ps.size(), 1u);
  EXPECT_EQ(HamiWait({"nodes", "--json"}, "gpus.json"), 0);
  json gpus = json::parse(ReadFile(dir_.path + "/gpus.json"), nullptr, false);
  ASSERT_TRUE(gpus.is_array());
  EXPECT_EQ(gpus[0]["allocated_memory_mib"], 2048);
  EXPECT_EQ(HamiWait({"--help"}, "help.txt"), 0);
  EXPECT_NE(ReadFile(dir_.path + "/help.txt").find("run"), std::string::npos);
  EXPECT_EQ(HamiWait({"run", "--help"}, "runhelp.txt"), 0);
  EXPECT_NE(ReadFile(dir_.path + "/runhelp.txt").find("--gpumem"), std::string::npos);
  EXPECT_EQ(HamiWait({"bogus"}), 2);
  // Unreachable daemon: its own exit code and a hint.
  pid_t p = Spawn({HAMI_BIN, "ps"}, {"HAMI_ADDR=unix:" + dir_.path + "/none.sock"},
                  dir_.path + "/unreach.txt");
  EXPECT_EQ(WaitExit(p), 69);
  EXPECT_NE(ReadFile(dir_.path + "/unreach.txt").find("hami serve"), std::string::npos);
  kill(run, SIGKILL);
  Reap(run);
}

#ifdef HAMI_FAKE_NVML
TEST_F(E2eTest, FakeDriverIsUsedAndLabelled) {
  std::string cfg = dir_.path + "/fake.conf";
  std::ofstream(cfg) << "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 "
                        "mem=80g\n";
  StartServe(
      {"--fake", "--fake-config", cfg},
      {"HAMI_FAKEGPU_LIB_DIR=" + std::filesystem::path(HAMI_FAKE_NVML).parent_path().string(),
       "FAKEGPU_STATE=" + dir_.path + "/fake.state"});
  auto g = client_->CallOk("GET", "/v1/gpus");
  ASSERT_TRUE(g.ok()) << ReadFile(dir_.path + "/serve.log");
  ASSERT_EQ((*g)["gpus"].size(), 1u);
  EXPECT_EQ((*g)["gpus"][0]["uuid"], "GPU-11111111-2222-3333-4444-555555555555");
  EXPECT_EQ((*g)["gpus"][0]["memory_mib"], 80 * 1024);
  // The plain NVML name, as HAMi v2.8+ writes the type (never "NVIDIA-NVIDIA ...").
  EXPECT_EQ((*g)["gpus"][0]["type"], "NVIDIA H100 80GB HBM3");
  EXPECT_TRUE((*g)["fake"].get<bool>());
  EXPECT_NE(ReadFile(dir_.path + "/serve.log").find("FAKE GPU"), std::string::npos);
  // Jobs load the same fake driver and share its state file.
  std::string out = dir_.path + "/env.txt";
  EXPECT_EQ(HamiWait({"run", "--no-preload", "--gpumem", "10g", "--", "sh", "-c", "env > " + out}),
            0);
  std::string env = ReadFile(out);
  EXPECT_NE(
      env.find("LD_LIBRARY_PATH=" + std::filesystem::path(HAMI_FAKE_NVML).parent_path().string()),
      std::string::npos)
      << env;
  EXPECT_NE(env.find("FAKEGPU_CONFIG=" + cfg), std::string::npos);
  EXPECT_NE(env.find("FAKEGPU_STATE=" + dir_.path + "/fake.state"), std::string::npos);
}
#endif

#if defined(HAMI_FAKE_NVML) && defined(HAMI_LIBVGPU) && defined(HAMI_VGPU_PROBE)
// Three jobs share one fake GPU through libvgpu.so; each sees and is held to its own cap, and
// `hami ps` shows their live use from the accounting files.
TEST_F(E2eTest, CappedJobsSeeAndAreHeldToTheirLimits) {
  if (!std::filesystem::exists(HAMI_VGPU_PROBE)) GTEST_SKIP() << "vgpu_probe not built";
  std::string cfg = dir_.path + "/fake.conf";
  std::ofstream(cfg) << "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 "
                        "mem=16g\n";
  StartServe(
      {"--fake", "--fake-config", cfg, "--libvgpu", HAMI_LIBVGPU},
      {"HAMI_FAKEGPU_LIB_DIR=" + std::filesystem::path(HAMI_FAKE_NVML).parent_path().string(),
       "FAKEGPU_STATE=" + dir_.path + "/fake.state"});
  std::string barrier = dir_.path + "/barrier";
  std::ofstream(barrier) << "x";
  const int caps[] = {1024, 2048, 3072};
  std::vector<pid_t> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(Hami(
        {"run", "--gpumem", std::to_string(caps[i]) + "m", "--gpucores", "30", "--", "sh", "-c",
         "while [ -e " + barrier + " ]; do sleep 0.05; done | " + HAMI_VGPU_PROBE +
             " fill alloc 64 wait"},
        "job" + std::to_string(i) + ".log"));
  }
  // While they hold their memory, the accounting files show it.
  bool all_full = WaitFor(
      [&] {
        json s = Slices();
        if (s.size() != 3) return false;
        for (const auto& sl : s) {
          int64_t limit = sl["devices"][0]["memory_mib"].get<int64_t>() << 20;
          int64_t used = sl["usage"][0]["used_bytes"].get<int64_t>();
          if (used < limit - (int64_t{400} << 20) || used > limit) return false;
        }
        return true;
      },
      std::chrono::seconds(20));
  EXPECT_TRUE(all_full) << Slices().dump();
  EXPECT_EQ(HamiWait({"top", "--once"}, "top.txt"), 0);
  EXPECT_NE(ReadFile(dir_.path + "/top.txt").find("6144 MiB / 16.0 GiB"), std::string::npos)
      << ReadFile(dir_.path + "/top.txt");
  std::filesystem::remove(barrier);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Reap(runs[i]), 0);
    std::string log = ReadFile(dir_.path + "/job" + std::to_string(i) + ".log");
    EXPECT_NE(log.find("total_mib=" + std::to_string(caps[i]) + " "), std::string::npos) << log;
    // Allocation stopped at the cap with CUDA_ERROR_OUT_OF_MEMORY (2).
    EXPECT_NE(log.find("stop_error=2"), std::string::npos) << log;
    auto pos = log.find("allocated_mib=");
    ASSERT_NE(pos, std::string::npos) << log;
    int got = std::stoi(log.substr(pos + 14));
    EXPECT_LE(got, caps[i]);
    EXPECT_GT(got, caps[i] - 512);
  }
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(2)));
}
#endif

}  // namespace
}  // namespace hami::hostd
