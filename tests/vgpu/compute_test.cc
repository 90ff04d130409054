// The compute limiter (libvgpu.so) against the fake driver's kernel-time model, in real
// processes: convergence to the share for one and two processes of a container, every
// launch path including graphs, launch-bound loops, the three policies and priority.
// Tolerances are wide enough for a loaded 2-core machine (the fake's host overhead is tens
// of microseconds); the GPU benchmark (bench/gpu/compute_limits.py) checks the 3 points.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "common/accounting_reader.h"
#include "vgpu/process.h"

namespace hami::testing {
namespace {

constexpr const char* kUuid0 = "GPU-11111111-2222-3333-4444-00000000c000";
constexpr const char* kUuid1 = "GPU-11111111-2222-3333-4444-00000000c001";

double Share(const Result& r) { return atof(r.Get("share_pct").c_str()); }
double Rate(const Result& r) { return atof(r.Get("iters_per_s").c_str()); }
// A counter of the limiter's HAMI_COMPUTE_STATS lines on stderr (`name=`), -1 when absent.
long Stat(const Result& r, const std::string& name) {
  size_t at = r.err.find(" " + name + "=");
  return at == std::string::npos ? -1 : atol(r.err.c_str() + at + name.size() + 2);
}

class ComputeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vgpu_computeXXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    std::ofstream(dir_ + "/gpus.conf") << "uuid=" << kUuid0 << " name=NVIDIA H100 mem=16g\n"
                                       << "uuid=" << kUuid1 << " name=NVIDIA H100 mem=16g\n";
  }
  void TearDown() override {
    if (system(("rm -rf " + dir_).c_str()) != 0) ADD_FAILURE() << "cleanup failed";
  }
  // A process of container `container` (its own accounting file) on the shared fake GPU.
  Env ContainerEnv(const std::string& container, const std::string& sm_limit,
                   const std::string& policy = "force") {
    Env e{{"LD_LIBRARY_PATH", FAKEGPU_LIB_DIR},
          {"LD_PRELOAD", VGPU_LIB},
          {"FAKEGPU_CONFIG", dir_ + "/gpus.conf"},
          {"FAKEGPU_STATE", dir_ + "/fake.state"},
          {"HAMI_COMPUTE_BOARD_DIR", dir_ + "/board"},
          {"HAMI_CONTENTION_DIR", dir_ + "/contention"},
          {"CUDA_DEVICE_MEMORY_SHARED_CACHE", dir_ + "/" + container + ".cache"}};
    if (!sm_limit.empty()) e["CUDA_DEVICE_SM_LIMIT"] = sm_limit;
    if (!policy.empty()) e["GPU_CORE_UTILIZATION_POLICY"] = policy;
    return e;
  }
  // The pace-mode shapes: a container of its own per limit ("<tag><limit>"), no power probe
  // (none inside a measured window), and `extra` variables.
  Env ShapeEnv(const std::string& tag, const std::string& limit, const Env& extra = {}) {
    Env e = ContainerEnv(tag + limit, limit);
    e["HAMI_COMPUTE_POWER"] = "0";
    for (const auto& [k, v] : extra) e[k] = v;
    return e;
  }
  // A power-capped card (FAKEGPU_POWER_SLOWDOWN 1.25) with power probes on or off (`power`):
  // probes of 300 ms, whose settled third (100 ms) holds at least one burst of a loop that
  // queues 16 kernels of 4 ms at a time, and end before a 400 ms warm-up does.
  Env PowerEnv(const std::string& container, const std::string& limit, const char* power) {
    Env e = ContainerEnv(container, limit);
    e["FAKEGPU_POWER_SLOWDOWN"] = "1.25";
    e["HAMI_COMPUTE_POWER"] = power;
    e["HAMI_COMPUTE_PROBE_MS"] = "300";
    e["HAMI_COMPUTE_STATS"] = "1";
    return e;
  }
  // Contexts hold memory, as on a real card, so that NVML lists every process with one (the
  // fake lists processes that hold memory).
  void ListEveryContext() {
    std::ofstream(dir_ + "/gpus.conf")
        << "uuid=" << kUuid0 << " name=NVIDIA H100 mem=16g ctxmem=64m\n"
        << "uuid=" << kUuid1 << " name=NVIDIA H100 mem=16g ctxmem=64m\n";
  }
  // A process without libvgpu next to the measured ones, until Stop: `kernel_us` of work every
  // `gap_us` (by default 10 us every 3 s: it only holds its context, an idle notebook).
  Child Neighbour(const std::string& kernel_us = "10", const std::string& gap_us = "3000000") {
    Env plain = ContainerEnv("plain", "", "");
    plain.erase("LD_PRELOAD");
    return Start({COMPUTE_PROBE, "requests", "--kernel-us", kernel_us, "--per-request", "1",
                  "--gap-us", gap_us, "--seconds", "120", "--warmup-ms", "0"},
                 plain);
  }
  // A neighbour that computes 1 ms every 20 ms, already for 0.7 s when this returns.
  Child ComputingNeighbour() {
    Child busy = Neighbour("1000", "20000");
    timespec start{0, 700 * 1000000L};
    nanosleep(&start, nullptr);
    return busy;
  }
  // `args` of the probe at 40 % with power probes, in a user and PID namespace of its own
  // whose NVML process list holds only its own processes (FAKEGPU_LIST_OWN_PIDNS), next to a
  // ComputingNeighbour outside it.
  Result InAContainerNextToAComputingNeighbour(const std::string& container,
                                               const std::vector<std::string>& args) {
    Child busy = ComputingNeighbour();
    std::vector<std::string> argv{"/usr/bin/unshare", "-Urpf", COMPUTE_PROBE};
    argv.insert(argv.end(), args.begin(), args.end());
    Env e = PowerEnv(container, "40", "1");
    e["LIBCUDA_LOG_LEVEL"] = "3";
    e["FAKEGPU_LIST_OWN_PIDNS"] = "1";
    Result held = RunProcess(argv, e, 60);
    Stop(&busy);
    return held;
  }
  static void Stop(Child* c) {
    kill(c->pid, SIGTERM);
    c->Wait();
  }
  // The unlimited baseline of a power-bound loop, on a card of its own (the same model): its
  // work shows in NVML's per-process samples of the shared card for a second after it ends.
  Result UnlimitedPowerBound(const std::vector<std::string>& args, const std::string& container) {
    Env e = PowerEnv(container, "", "1");
    e["FAKEGPU_STATE"] = dir_ + "/solo.state";
    return Probe(args, e);
  }
  Result Probe(const std::vector<std::string>& args, const Env& env) {
    std::vector<std::string> argv{COMPUTE_PROBE};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = RunProcess(argv, env, 60);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r;
  }
  std::future<Result> ProbeAsync(std::vector<std::string> args, Env env) {
    return std::async(std::launch::async, [this, args, env] { return Probe(args, env); });
  }
  // The container's accounting-file busy counter against the GPU time the probe ran (ms):
  // within 15 % when every launch was counted.
  void ExpectBusyCounterHolds(const std::string& container, const Result& r) {
    auto snap = accounting::ReadAccountingFile(dir_ + "/" + container + ".cache");
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    const accounting::AccountingDevice* d = snap->Find(kUuid0);
    ASSERT_NE(d, nullptr);
    double busy_ms = static_cast<double>(d->busy_ns_total) / 1e6;
    double gpu_ms = atof(r.Get("gpu_us").c_str()) / 1e3;
    EXPECT_GT(gpu_ms, 100) << r.out;
    EXPECT_GT(busy_ms, 0.85 * gpu_ms) << r.out;
    EXPECT_LT(busy_ms, 1.15 * gpu_ms) << r.out;
  }
  std::string dir_;
};

// 4 ms kernels, up to 16 in flight (long kernels and a deep queue keep the fake GPU fed
// when the test machine is short of CPU), 2 s measured after 0.4 s.
const std::vector<std::string> kLoop = {"loop",      "--kernel-us", "4000",        "--sync", "16",
                                        "--seconds", "2",           "--warmup-ms", "400"};

class ComputeShareTest : public ComputeTest, public ::testing::WithParamInterface<int> {};

TEST_P(ComputeShareTest, OneProcessConvergesToItsShare) {
  Result r = Probe(kLoop, ContainerEnv("a", std::to_string(GetParam())));
  EXPECT_NEAR(Share(r), GetParam(), 8) << r.out;
}
INSTANTIATE_TEST_SUITE_P(Limits, ComputeShareTest, ::testing::Values(30, 60));

TEST_F(ComputeTest, UnlimitedProcessUsesTheWholeGpu) {
  Result r = Probe(kLoop, ContainerEnv("a", ""));
  EXPECT_GT(Share(r), 85) << r.out;
}

TEST_F(ComputeTest, TwoProcessesOfOneContainerShareOneLimit) {
  auto a = ProbeAsync(kLoop, ContainerEnv("shared", "40"));
  auto b = ProbeAsync(kLoop, ContainerEnv("shared", "40"));
  Result ra = a.get(), rb = b.get();
  printf("shares %.1f + %.1f\n", Share(ra), Share(rb));
  EXPECT_NEAR(Share(ra) + Share(rb), 40, 8) << ra.out << rb.out;
  // Neither starves: the last process admitted yields to a waiting one (kYieldNs). Without
  // that, about one run in five gave 3.7 / 36.6 or 7.8 / 32.2.
  EXPECT_GT(Share(ra), 12) << "both processes make progress: " << ra.out << rb.out;
  EXPECT_GT(Share(rb), 12) << ra.out << rb.out;
}

TEST_F(ComputeTest, TwoContainersAtThirtyAndSeventyGetThoseShares) {
  // Together they ask for the whole GPU: each one's events also span the other's kernels,
  // which the limiter must not charge to it.
  auto a = ProbeAsync(kLoop, ContainerEnv("a", "30"));
  auto b = ProbeAsync(kLoop, ContainerEnv("b", "70"));
  Result ra = a.get(), rb = b.get();
  EXPECT_NEAR(Share(ra), 30, 8) << ra.out << rb.out;
  EXPECT_NEAR(Share(rb), 70, 8) << ra.out << rb.out;
}

TEST_F(ComputeTest, SharingContainersTakeTurnsInsteadOfSwitchingAtEveryKernel) {
  // A context switch costs the fake GPU 200 us here (a real H200 loses about 0.1 ms per
  // switch). Containers at 30 and 70 % with 1 ms kernels, first interleaving freely, then
  // taking turns (the default): turns must cut the switches and keep the shares.
  const std::vector<std::string> loop = {"loop",      "--kernel-us", "1000",        "--sync", "4",
                                         "--seconds", "1.5",         "--warmup-ms", "300"};
  auto run = [&](const std::string& tag, const char* turns, Result* a, Result* b) {
    auto env = [&](const std::string& container, const std::string& limit) {
      Env e = ContainerEnv(tag + container, limit);
      e["FAKEGPU_CONTEXT_SWITCH_US"] = "200";
      e["FAKEGPU_STATE"] = dir_ + "/" + tag + ".state";
      e["HAMI_COMPUTE_BOARD_DIR"] = dir_ + "/" + tag + "-board";
      e["HAMI_COMPUTE_TURNS"] = turns;
      return e;
    };
    auto fa = ProbeAsync(loop, env("a", "30"));
    auto fb = ProbeAsync(loop, env("b", "70"));
    *a = fa.get();
    *b = fb.get();
    return std::max(atoll(a->Get("context_switches").c_str()),
                    atoll(b->Get("context_switches").c_str()));
  };
  Result a_free, b_free, a_turns, b_turns;
  long long free_switches = run("free", "0", &a_free, &b_free);
  long long turn_switches = run("turns", "1", &a_turns, &b_turns);
  printf("context switches: interleaved %lld (shares %s / %s), turns %lld (shares %s / %s)\n",
         free_switches, a_free.Get("share_pct").c_str(), b_free.Get("share_pct").c_str(),
         turn_switches, a_turns.Get("share_pct").c_str(), b_turns.Get("share_pct").c_str());
  EXPECT_GT(free_switches, 100) << "interleaved 1 ms kernels switch often: " << a_free.out;
  EXPECT_LT(turn_switches * 2, free_switches) << a_turns.out << b_turns.out;
  EXPECT_NEAR(Share(a_turns), 30, 8) << a_turns.out << b_turns.out;
  EXPECT_NEAR(Share(b_turns), 70, 8) << a_turns.out << b_turns.out;
}

class ComputePathTest : public ComputeTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(ComputePathTest, EveryLaunchPathIsThrottled) {
  std::string path = GetParam();
  std::vector<std::string> args = {"loop", "--kernel-us", "2000", "--sync", "16", "--seconds",
                                   "1.2",  "--warmup-ms", "300",  "--path", path};
  if (path.rfind("graph", 0) == 0) {
    args[2] = "500";  // a graph of 4 x 500 us
  }
  if (path == "ptsz" || path == "graph_ptsz") {
    args.push_back("--stream");
    args.push_back("new");
  }
  Result r = Probe(args, ContainerEnv("a", "30"));
  EXPECT_NEAR(Share(r), 30, 8) << r.out;
}
INSTANTIATE_TEST_SUITE_P(AllPaths, ComputePathTest,
                         ::testing::Values("kernel", "ptsz", "ex", "ex_ptsz", "coop", "coop_ptsz",
                                           "graph", "graph_ptsz", "launch", "grid", "grid_async"));

// cuLaunchCooperativeKernelMultiDevice (deprecated) launches on several devices at once, which
// the limiter cannot admit in the caller's context: under a limit it is refused with
// CUDA_ERROR_NOT_SUPPORTED (it ran unlimited before); without one it passes through.
TEST_F(ComputeTest, MultiDeviceCooperativeLaunchIsRefusedUnderALimit) {
  std::vector<std::string> args = {"loop", "--kernel-us", "2000",        "--sync",
                                   "4",    "--seconds",   "0.3",         "--warmup-ms",
                                   "50",   "--path",      "multi_device"};
  std::vector<std::string> argv{COMPUTE_PROBE};
  argv.insert(argv.end(), args.begin(), args.end());
  Result limited = RunProcess(argv, ContainerEnv("a", "30"), 60);
  EXPECT_EQ(limited.exit_code, 3) << limited.out << limited.err;
  EXPECT_EQ(limited.Get("error"), "801") << "CUDA_ERROR_NOT_SUPPORTED " << limited.out;
  EXPECT_NE(limited.err.find("cuLaunchCooperativeKernelMultiDevice refused"), std::string::npos)
      << limited.err;
  Result free = Probe(args, ContainerEnv("n", ""));
  EXPECT_GT(atof(free.Get("iters").c_str()), 0) << "every launch went through: " << free.out;
}

// A tenant does not get out of its share by how it uses contexts. Each case ran unlimited
// (99.8 % of the GPU at 30) before the limiter followed contexts through their lifetimes:
//  - contexts 40: one launch in each of 39 contexts, then the loop in a 40th. The limiter
//    tracked 8 per process; the others' launches were not limited. Now it tracks 32, and a
//    context beyond them takes the place of another after that one's launches are charged.
//  - ctx-churn 300: 300 contexts created, used once and destroyed, then the loop in a new one
//    at the same address. The limiter found its state for the old one there, with dead events,
//    and started it over; after 100 restarts it gave up and let the context run unlimited. Now
//    cuCtxDestroy frees the state, and
//  - primary-restarts 300: the primary context released to nothing and retained 300 times (the
//    same handle, its events dead each time) is started over as often as that happens.
TEST_F(ComputeTest, ContextChurnDoesNotLiftTheLimit) {
  const std::vector<std::vector<std::string>> cases = {
      {"--contexts", "40"}, {"--ctx-churn", "300"}, {"--primary-restarts", "300"}};
  for (const char* pace : {"0", "1"}) {  // per-launch accounting; pace mode
    for (const auto& extra : cases) {
      std::vector<std::string> args = {"loop",      "--kernel-us", "2000",        "--sync", "12",
                                       "--seconds", "1",           "--warmup-ms", "300"};
      args.insert(args.end(), extra.begin(), extra.end());
      // No power probe: its 200 ms unthrottled would fall into the short window.
      Result r = Probe(args, ShapeEnv(std::string("p") + pace, "30",
                                      {{"HAMI_COMPUTE_PACE", pace}, {"HAMI_COMPUTE_STATS", "1"}}));
      printf("%s %s at 30 %%, pace %s: %.1f %% of the GPU\n", extra[0].c_str(), extra[1].c_str(),
             pace, Share(r));
      EXPECT_NEAR(Share(r), 30, 8) << extra[0] << " pace " << pace << r.out << r.err;
      if (extra[0] == "--contexts") {
        EXPECT_NE(r.err.find("ctx_evictions=8 "), std::string::npos) << "40 = 32 + 8" << r.err;
      }
      if (extra[0] == "--primary-restarts") {
        EXPECT_EQ(r.err.find("ctx_restarts=0 "), std::string::npos) << "events died" << r.err;
      }
    }
  }
}

// A server that takes a new stream per request and destroys it after, or a new thread with its
// per-thread default stream: the limiter's table of streams (64 per context) frees a destroyed
// stream's entry and an exited thread's, so it never fills up (a full table made every new
// stream's first launch scan it all and take another stream's place).
TEST_F(ComputeTest, DestroyedStreamsLeaveTheStreamTable) {
  std::vector<std::string> args = {"loop", "--kernel-us", "500", "--sync",         "4", "--seconds",
                                   "1",    "--warmup-ms", "200", "--stream-churn", "1"};
  Result r =
      Probe(args, ShapeEnv("s", "40", {{"HAMI_COMPUTE_STATS", "1"}, {"HAMI_COMPUTE_PACE", "0"}}));
  EXPECT_GT(atof(r.Get("iters").c_str()), 4 * 100)
      << "more streams than the table holds: " << r.out;
  EXPECT_NE(r.err.find("stream_table_full=0\n"), std::string::npos) << r.err;
  EXPECT_NEAR(Share(r), 40, 8) << r.out;
  // A thread per batch launching on its per-thread default stream (no destroy call): each
  // thread's slot goes at its exit.
  std::vector<std::string> threads = {
      "loop", "--kernel-us",     "500", "--sync", "4",   "--seconds", "1", "--warmup-ms",
      "200",  "--batch-threads", "1",   "--path", "ptsz"};
  Result t = Probe(threads,
                   ShapeEnv("t", "40", {{"HAMI_COMPUTE_STATS", "1"}, {"HAMI_COMPUTE_PACE", "0"}}));
  EXPECT_GT(atof(t.Get("iters").c_str()), 4 * 100)
      << "more threads than the table holds: " << t.out;
  EXPECT_NE(t.err.find("stream_table_full=0\n"), std::string::npos) << t.err;
  EXPECT_NEAR(Share(t), 40, 8) << t.out;
}

TEST_F(ComputeTest, LaunchBoundLoopIsLimitedInThroughput) {
  // 300 us kernels, a synchronize after each and 100 us of the application's own CPU work (as
  // a Python loop would do): host time is a large part of the loop. At 30 % the loop must run
  // at 30 % of its unlimited rate, not at the rate a busy-time limiter (300 us of GPU per
  // iteration) would allow, which leaves the GPU busy well under 30 % of the time.
  std::vector<std::string> loop = {"loop", "--kernel-us", "300", "--sync",      "1",  "--host-us",
                                   "100",  "--seconds",   "1.5", "--warmup-ms", "300"};
  Result unlimited = Probe(loop, ContainerEnv("n", ""));
  Result r = Probe(loop, ContainerEnv("a", "30"));
  double pct = 100 * Rate(r) / Rate(unlimited);
  printf("launch-bound loop at 30 %%: %.1f %% of unlimited throughput\n", pct);
  EXPECT_NEAR(pct, 30, 5) << r.out << unlimited.out;
  EXPECT_LT(Share(r), 26) << "GPU busy share must be below the limit: host time counts. " << r.out;
}

TEST_F(ComputeTest, TightLoopWithoutStartEventsKeepsTheShare) {
  // 100 us kernels, synchronize each: the application spends well under 250 us between
  // launches, so the limiter measures from the previous end event alone (no start event).
  // Its accounting must still hold the share (the fake's host gaps are a few us here).
  Result r =
      Probe({"loop", "--kernel-us", "100", "--sync", "1", "--seconds", "1.5", "--warmup-ms", "300"},
            ContainerEnv("a", "30"));
  EXPECT_NEAR(Share(r), 28, 6) << r.out;
}

TEST_F(ComputeTest, PowerBoundWorkIsHeldToItsShareOfUnlimitedThroughput) {
  // A power-capped card (the fake's model): kernels run 1.25x slower while the card is busy
  // more than 75 % of the time, so unlimited the loop does 1 / 1.25 of the nominal work per
  // second, and at a 40 % time share it would run at full speed and get 50 % of that. The
  // limiter's probes learn the slowdown and charge it: 40 % of the unlimited throughput.
  // share_pct counts nominal kernel time, i.e. work done.
  auto env = [&](const std::string& limit, const char* power) {
    return PowerEnv(std::string("p") + power, limit, power);
  };
  Result unlimited = Probe(kLoop, env("", "1"));
  Result held = Probe(kLoop, env("40", "1"));
  Result time_share = Probe(kLoop, env("40", "0"));
  double u = Share(unlimited);
  printf("nominal work share: unlimited %.1f, 40 %% with probes %.1f, without %.1f\n", u,
         Share(held), Share(time_share));
  EXPECT_NEAR(u, 80, 6) << "the fake's power model slows a saturated card: " << unlimited.out;
  EXPECT_NEAR(100 * Share(held) / u, 40, 5) << held.out << held.err << unlimited.out;
  EXPECT_GT(100 * Share(time_share) / u, 46) << "a plain time share runs above: " << time_share.out;
}

TEST_F(ComputeTest, PowerBoundLaunchesEachSynchronisedAreHeldToTheirShare) {
  // The same power-capped card, but every launch is synchronised before the next (a CUDA graph
  // of matmuls replayed and synchronised each iteration, PyTorch's graph case): each one is
  // queued on an idle stream. Probe samples were taken from queued launches only (an idle
  // launch's span also holds its submission), so such work was never corrected and ran at its
  // time share: 57 % of unlimited at 50 % on the H100. Launches long enough that the
  // submission is noise (4 ms here, 6.5 ms the graph) are samples too.
  std::vector<std::string> each = {"loop",      "--kernel-us", "4000",        "--sync", "1",
                                   "--seconds", "1.5",         "--warmup-ms", "400"};
  Result unlimited = Probe(each, PowerEnv("q", "", "1"));
  Result held = Probe(each, PowerEnv("q", "40", "1"));
  double u = Share(unlimited);
  printf("synchronised launches, nominal work share: unlimited %.1f, 40 %% with probes %.1f\n", u,
         Share(held));
  ASSERT_NEAR(u, 80, 6) << "the fake's power model slows a saturated card: " << unlimited.out;
  EXPECT_NEAR(100 * Share(held) / u, 40, 5) << held.out << held.err << unlimited.out;
}

// Power probes next to a process that only holds a context (an idle notebook, a server
// between requests: the common case on a shared node). NVML lists it, so "alone on the card"
// by the process list kept the probes off, and power-bound work ran at its time share (57 %
// of unlimited at 50 % for a CUDA graph of matmuls on the H100). NVML's per-process
// utilisation shows that it does not compute: the probes run and the work is held to its
// share of its unlimited throughput. Without that view (a driver or device without
// per-process utilisation, FAKEGPU_PROCESS_SAMPLE_MS=0) the process list decides, as before.
TEST_F(ComputeTest, PowerProbesRunNextToAProcessThatOnlyHoldsAContext) {
  ListEveryContext();
  Child idle = Neighbour();
  Result unlimited = UnlimitedPowerBound(kLoop, "i");  // meanwhile the neighbour starts
  Result held = Probe(kLoop, PowerEnv("i", "40", "1"));
  Env no_view = PowerEnv("i", "40", "1");
  no_view["FAKEGPU_PROCESS_SAMPLE_MS"] = "0";
  Result listed = Probe(kLoop, no_view);
  Stop(&idle);
  double u = Share(unlimited);
  printf(
      "next to an idle context: nominal work share unlimited %.1f, 40 %% %.1f (%ld probes), "
      "by the process list alone %.1f (%ld probes)\n",
      u, Share(held), Stat(held, "probes"), Share(listed), Stat(listed, "probes"));
  ASSERT_NEAR(u, 80, 6) << "the fake's power model slows a saturated card: " << unlimited.out;
  EXPECT_GE(Stat(held, "probes"), 1) << held.err;
  EXPECT_EQ(Stat(held, "probes_discarded"), 0) << held.err;
  EXPECT_NE(held.err.find("hami-compute-power key="), std::string::npos)
      << "a confirmed reference: " << held.err;
  EXPECT_NEAR(100 * Share(held) / u, 40, 5) << held.out << held.err << unlimited.out;
  EXPECT_EQ(Stat(listed, "probes"), 0) << listed.err;
  EXPECT_GT(100 * Share(listed) / u, 46) << "a plain time share runs above: " << listed.out;
}

// The process's PID as NVML knows it tells its own samples from a neighbour's. In a PID
// namespace of its own a process learns it at its first context creation (the one PID that
// joins NVML's process list across it, memory_context.cc; a limited process always has the
// accounting file whose lock that needs): there too the probes run next to an idle context.
// (/proc stays the host's, so the fake reports host PIDs as some real drivers do.) Where it
// stays unknown (a forked child, two containers creating contexts at the same instant) the
// process list decides, as without per-process utilisation (the test above).
TEST_F(ComputeTest, PowerProbesRunNextToAnIdleContextInAPidNamespaceOfItsOwn) {
  if (system("unshare -Urpf true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no unprivileged user/PID namespaces here";
  ListEveryContext();
  Child idle = Neighbour();
  Result unlimited = UnlimitedPowerBound(kLoop, "n");  // meanwhile the neighbour starts
  std::vector<std::string> argv{"/usr/bin/unshare", "-Urpf", COMPUTE_PROBE};
  argv.insert(argv.end(), kLoop.begin(), kLoop.end());
  Env e = PowerEnv("n", "40", "1");
  e["LIBCUDA_LOG_LEVEL"] = "3";
  Result held = RunProcess(argv, e, 60);
  Stop(&idle);
  ASSERT_EQ(held.exit_code, 0) << held.out << held.err;
  double u = Share(unlimited);
  printf(
      "own PID namespace, next to an idle context: nominal work share unlimited %.1f, 40 %% "
      "%.1f (%ld probes)\n",
      u, Share(held), Stat(held, "probes"));
  ASSERT_NEAR(u, 80, 6) << unlimited.out;
  EXPECT_NE(held.err.find("to the driver"), std::string::npos) << "its PID learned: " << held.err;
  EXPECT_GE(Stat(held, "probes"), 1) << held.err;
  EXPECT_NEAR(100 * Share(held) / u, 40, 5) << held.out << held.err;
}

// Next to a process that computes (here 1 ms every 20 ms, too little for the contention check
// to see it in the card's utilisation), no probe: its work would be in the probe's samples.
TEST_F(ComputeTest, NoPowerProbeNextToANeighbourThatComputes) {
  ListEveryContext();
  Child busy = ComputingNeighbour();
  Env e = PowerEnv("c", "40", "1");
  e["LIBCUDA_LOG_LEVEL"] = "3";
  Result held = Probe(kLoop, e);
  Stop(&busy);
  EXPECT_EQ(Stat(held, "probes"), 0) << held.err;
  EXPECT_NE(held.err.find("power probe put off"), std::string::npos) << held.err;
}

// The same neighbour seen from a container (a PID namespace of its own), where NVML's process
// list holds only the container's own processes (FAKEGPU_LIST_OWN_PIDNS): NVML's per-process
// utilisation, which covers every process on the card, shows two PIDs with SM time, and no
// probe runs. Before, a list without others was enough: a probe ran.
TEST_F(ComputeTest, NoPowerProbeInAContainerNextToANeighbourItsProcessListDoesNotShow) {
  if (system("unshare -Urpf true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no unprivileged user/PID namespaces here";
  Result held = InAContainerNextToAComputingNeighbour("u", kLoop);
  ASSERT_EQ(held.exit_code, 0) << held.out << held.err;
  EXPECT_EQ(Stat(held, "probes"), 0) << held.err;
  EXPECT_NE(held.err.find("power probe put off"), std::string::npos) << held.err;
}

// The same container, where NVML's name for our PID was never learned (contexts hold no
// memory here, so no PID joins the process list at the context creation: as on a driver that
// lists a process late). One PID with SM time in the last second's samples was taken for
// ours: at the first check (50 ms in, our own work not in the samples yet) and after each of
// this loop's 1.6 s of host work, a probe ran next to the neighbour, unthrottled (here probe
// 1 at the first check, discarded after). Ours cannot be told from another's: no probe.
TEST_F(ComputeTest, NoPowerProbeNextToANeighbourWhenOurPidIsUnknown) {
  if (system("unshare -Urpf true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no unprivileged user/PID namespaces here";
  std::ofstream(dir_ + "/gpus.conf") << "uuid=" << kUuid0 << " name=NVIDIA H100 mem=16g ctxmem=0\n";
  Result held = InAContainerNextToAComputingNeighbour(
      "w", {"loop", "--kernel-us", "4000", "--sync", "16", "--host-us", "1600000", "--seconds", "9",
            "--warmup-ms", "0"});
  ASSERT_EQ(held.exit_code, 0) << held.out << held.err;
  ASSERT_EQ(held.err.find("to the driver"), std::string::npos) << "PID learned: " << held.err;
  size_t asked = 0;
  for (size_t at = 0; (at = held.err.find("power probe put off", at)) != std::string::npos; ++at)
    ++asked;
  EXPECT_GE(asked, 2u) << "asked again after 5 s: " << held.err;
  EXPECT_EQ(Stat(held, "probes"), 0) << held.err;
}

// A neighbour that starts computing during a probe (here 1 ms every 20 ms from the probe's
// start on) voids its samples: NVML's per-process samples of the probe's time, read a sample
// period after its end, show its work, and the probe is discarded (no reference).
TEST_F(ComputeTest, APowerProbeANeighbourComputedDuringIsDiscarded) {
  ListEveryContext();
  Env e = PowerEnv("v", "40", "1");
  e["HAMI_COMPUTE_PROBE_MS"] = "1000";
  e["LIBCUDA_LOG_LEVEL"] = "3";
  std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", COMPUTE_PROBE};
  argv.insert(argv.end(), kLoop.begin(), kLoop.end());
  Child held = Start(argv, e);
  std::string out, line;
  bool probing = false;
  while (!probing && !(line = held.ReadLine(30000)).empty()) {
    out += line + "\n";
    probing = line.find("power probe 1 at") != std::string::npos;
  }
  ASSERT_TRUE(probing) << out;
  Child busy = Neighbour("1000", "20000");
  while (!(line = held.ReadLine(30000)).empty()) out += line + "\n";
  Result r = held.Wait();
  Stop(&busy);
  out += r.out;
  EXPECT_EQ(r.exit_code, 0) << out;
  EXPECT_NE(out.find("power probe 1 discarded"), std::string::npos) << out;
  EXPECT_NE(out.find("probes_discarded=1"), std::string::npos) << out;
  EXPECT_EQ(out.find("hami-compute-power key="), std::string::npos) << "no reference: " << out;
}

// Several streams overlapping (FAKEGPU_STREAM_OVERLAP: one process's kernels on different
// streams run concurrently, as on a GPU): two streams of 1 ms kernels, unlimited, do about
// twice the work of one. The container holds the GPU for the union of its streams' time, so
// at 40 % it must keep 40 % of its unlimited throughput. Charging each stream's time (the
// sum) and admitting launches one at a time serialised the streams: about 22 %.
TEST_F(ComputeTest, OverlappingStreamsAreChargedTheirUnionAndKeepTheShare) {
  std::vector<std::string> two = {"loop", "--kernel-us", "1000", "--sync",      "8",  "--streams",
                                  "2",    "--seconds",   "2",    "--warmup-ms", "400"};
  auto env = [&](const std::string& limit) {
    return ShapeEnv("s", limit, {{"FAKEGPU_STREAM_OVERLAP", "1"}});
  };
  Result unlimited = Probe(two, env(""));
  ASSERT_GT(Share(unlimited), 150) << "the streams overlap: " << unlimited.out;
  for (const char* pace : {"1", "0"}) {  // pace mode alone on the card; per-launch accounting
    Env e = env("40");
    e["HAMI_COMPUTE_PACE"] = pace;
    Result held = Probe(two, e);
    double pct = 100 * Rate(held) / Rate(unlimited);
    printf("two overlapping streams at 40 %%, pace %s: %.1f %% of unlimited throughput\n", pace,
           pct);
    EXPECT_NEAR(pct, 40, 7) << "pace " << pace << held.out << unlimited.out;
  }
}

// Copies on their own stream (input prefetch), loops bound by their copies (on the fake's copy
// engine at 25 GB/s), in pace mode (alone on the card):
// - 50 MiB (2.1 ms) before every 100 us kernel, a synchronize after each: the copies wait for
//   the stretch like launches and their stream is drained with it. Without that the copy
//   queued just before a stretch ended ran on through the pause after it: 52 % at 40 %.
// - 12.5 MiB (0.52 ms) before every kernel, a synchronize every 8: the time spent waiting in
//   the synchronize is the loop running, not a pause. Taken for a pause (the closing launch
//   came late), it was not charged: 69 % at 40 %.
// (The H100's `streams` workload, whose 64 MiB copies were neither, ran at 102 % at 90 %.)
// The same with 2D and 3D copies (cuMemcpy2DAsync, cuMemcpy3DAsync), which ran on through
// the pauses before they passed the gate too.
TEST_F(ComputeTest, CopyBoundLoopsKeepTheirShareInPaceMode) {
  auto env = [&](const std::string& limit) {
    return ShapeEnv("c", limit, {{"HAMI_COMPUTE_STATS", "1"}});
  };
  struct Case {
    const char *kib, *sync, *dims;
  };
  for (auto [kib, sync, dims] : {Case{"51200", "1", "1"}, Case{"12800", "8", "1"},
                                 Case{"51200", "1", "2"}, Case{"12800", "8", "3"}}) {
    std::vector<std::string> copies = {
        "loop",   "--kernel-us", "100",       "--copy-kib", kib,           "--copy-dims", dims,
        "--sync", sync,          "--seconds", "2",          "--warmup-ms", "400"};
    Result unlimited = Probe(copies, env(""));
    ASSERT_LT(Share(unlimited), 40) << "copy-bound: the SMs idle. " << unlimited.out;
    Result held = Probe(copies, env("40"));
    double pct = 100 * Rate(held) / Rate(unlimited);
    printf("%sD copies of %s KiB, sync every %s, at 40 %%: %.1f %% of unlimited throughput\n", dims,
           kib, sync, pct);
    EXPECT_NEAR(pct, 40, 7) << dims << "D " << kib << held.out << held.err << unlimited.out;
    EXPECT_NE(held.err.find("pace_copies="), std::string::npos) << held.err;
    EXPECT_EQ(held.err.find("pace_copies=0 "), std::string::npos)
        << "copies pass the gate: " << held.err;
  }
}

// The other asynchronous copies and memsets pass the same gate: peer copies (flat and 3D),
// copies into arrays, 16-bit and 2D memsets. The loop of the first case above (50 MiB before
// every 100 us kernel, a synchronize after each), each op moving the same bytes on the fake's
// copy engine, so one unlimited run is the reference for all. Not held, an op's copies ran
// on through the pauses (about 52 % at 40 %, as the flat copy did before it was held).
// The five run one after another in one container: each process clears its presence stamp
// at exit, or the next one took it for a neighbour and spent its first second in per-launch
// accounting, which does not hold copies (60-65 % at 40 % for all but the first).
TEST_F(ComputeTest, EveryAsyncCopyAndMemsetWaitsForTheStretchInPaceMode) {
  auto args = [](const char* op) {
    return std::vector<std::string>{
        "loop",      "--kernel-us", "100",         "--copy-kib", "51200",     "--sync", "1",
        "--seconds", "2",           "--warmup-ms", "400",        "--copy-op", op};
  };
  auto env = [&](const std::string& limit) {
    return ShapeEnv("o", limit, {{"HAMI_COMPUTE_STATS", "1"}});
  };
  Result unlimited = Probe(args("copy"), env(""));
  ASSERT_LT(Share(unlimited), 40) << "copy-bound: the SMs idle. " << unlimited.out;
  // The faster of two unlimited runs, one before and one after the held ones: a reference
  // slowed by a busy host (CI's two cores also building) made a held loop read 75 %.
  double reference = Rate(unlimited);
  std::vector<std::pair<const char*, Result>> held_runs;
  for (const char* op : {"memset16", "peer", "peer3d", "htoa", "memset2d"})
    held_runs.emplace_back(op, Probe(args(op), env("40")));
  reference = std::max(reference, Rate(Probe(args("copy"), env(""))));
  for (const auto& [op, held] : held_runs) {
    double pct = 100 * Rate(held) / reference;
    printf("%s of 50 MiB, sync every 1, at 40 %%: %.1f %% of unlimited throughput\n", op, pct);
    EXPECT_NEAR(pct, 40, 7) << op << held.out << held.err << unlimited.out;
    EXPECT_NE(held.err.find("pace_copies="), std::string::npos) << op << held.err;
    EXPECT_EQ(held.err.find("pace_copies=0 "), std::string::npos)
        << op << " passes the gate: " << held.err;
  }
}

// Many short kernels with host gaps, no synchronize between them (a framework's launch loop:
// each launch follows some host work, so the GPU idles between kernels): 40 us kernels, 60 us
// of host work before each launch (plus the fake's own launch cost), a synchronize every
// 2000 (the fake's synchronize wakes up late on a loaded machine: an idle gap).
// The loop is host-bound: its kernels alone would let it run far above its share. The
// limiter's host-time windows charge the host time per launch that the kernels do not cover,
// so at 30 % the loop runs at 30 % of its unlimited rate.
TEST_F(ComputeTest, ShortKernelsWithHostGapsKeepTheShareOfThroughput) {
  std::vector<std::string> gaps = {"loop", "--kernel-us", "40", "--launch-gap-us", "60", "--sync",
                                   "2000", "--seconds",   "2",  "--warmup-ms",     "400"};
  auto env = [&](const std::string& limit) { return ShapeEnv("g", limit); };
  Result unlimited = Probe(gaps, env(""));
  // Host gaps past the limiter's 250 us bound are idle time by design; a machine that
  // starves the loop that long cannot show this case.
  // An iteration is about 60 + 10 us of host time: a loop much slower than that is being
  // preempted for longer than the gaps it is meant to show.
  if (Rate(unlimited) < 10000) GTEST_SKIP() << "host too loaded: " << unlimited.out;
  // 40 us kernels every ~61 us: the GPU idles about a third of the time.
  ASSERT_LT(Share(unlimited), 75) << "host-bound: the GPU idles between kernels. " << unlimited.out;
  for (const char* pace : {"1", "0"}) {  // pace mode alone on the card; per-launch accounting
    Env e = env("30");
    e["HAMI_COMPUTE_PACE"] = pace;
    e["HAMI_COMPUTE_STATS"] = "1";
    Result held = Probe(gaps, e);
    double pct = 100 * Rate(held) / Rate(unlimited);
    printf("short kernels with host gaps at 30 %%, pace %s: %.1f %% of unlimited throughput\n",
           pace, pct);
    EXPECT_NEAR(pct, 30, 7) << "pace " << pace << held.out << unlimited.out;
    if (*pace == '1') {  // the counters: each sampled launch finds the last kernel done
      long n = Stat(held, "pace_samples"), idle = Stat(held, "pace_idle_samples");
      EXPECT_GT(n, 100) << held.err;
      EXPECT_GT(idle, n / 2) << held.err;
      // ... in the stretches' first 5 ms too (a part of them: 5 of each 20 ms).
      long early = Stat(held, "pace_early_samples");
      EXPECT_GT(early, n / 8) << held.err;
      EXPECT_LT(early, n / 2) << held.err;
      EXPECT_GT(Stat(held, "pace_early_idle_samples"), early / 2) << held.err;
    }
  }
}

// A GPU-bound training loop of short and long kernels (20 or 980 us at random, 150 us of host
// work before each launch, a synchronise every 200): its host runs ahead, so when a stretch
// ends up to 30 ms of work are still queued. Each stretch's estimate of its GPU work (its
// launches times a running mean of the sampled kernels) is off either way, and the
// queued tail was charged only as far as that estimate reached: 54.8 % of unlimited throughput
// at 50 and 77.9 % at 70 (a GPT training step on an H100: 53.5 / 75.5). With
// HAMI_COMPUTE_PACE_TAIL=1 the GPU's busy share learned over stretches decides how much of the
// tail counts; with 2 (the default since the nineteenth session) the estimates' overshoots
// are carried to later stretches' tails.
TEST_F(ComputeTest, AGpuBoundLoopOfMixedKernelsIsChargedItsWholeQueue) {
  std::vector<std::string> mixed = {
      "loop", "--kernel-us", "20", "--mix-us",    "980", "--launch-gap-us", "150", "--sync",
      "200",  "--seconds",   "2",  "--warmup-ms", "400"};
  auto env = [&](const std::string& limit, const char* tail) {
    // Stretches of 23 ms at 70 (HAMI_COMPUTE_PACE_MS=16, the pause's floor): each ends while
    // the host is still queueing work. The default's 56 ms ends in the synchronise that drains
    // the queue every 100 ms of GPU work, so no tail is left to charge (still at its share).
    return ShapeEnv("q", limit,
                    {{"HAMI_COMPUTE_STATS", "1"},
                     {"HAMI_COMPUTE_PACE_TAIL", tail},
                     {"HAMI_COMPUTE_PACE_MS", "16"}});
  };
  Result unlimited = Probe(mixed, env("", "0"));
  for (const char* tail : {"1", "2"}) {
    Result held = Probe(mixed, env("70", tail));
    double pct = 100 * Rate(held) / Rate(unlimited);
    printf("GPU-bound loop of mixed kernels at 70 %%, tail rule %s: %.1f %% of unlimited\n", tail,
           pct);
    // Rule 2 within 3 (71.1-71.9 here, where rule 0 gave 73.9-77.1 in the same runs).
    EXPECT_NEAR(pct, 70, *tail == '2' ? 3 : 4) << tail << held.out << held.err << unlimited.out;
    EXPECT_EQ(held.err.find("pace_drain_ms=0.0 "), std::string::npos)
        << "the stretches end with work queued: " << held.err;
    // The counters: its host runs ahead, so the sampled launches find work queued.
    long n = Stat(held, "pace_samples"), idle = Stat(held, "pace_idle_samples");
    EXPECT_GT(n, 100) << held.err;
    EXPECT_GE(idle, 0) << held.err;
    EXPECT_LT(idle, n / 5) << held.err;
    // Rule 2 charged tails from the carried overshoot; rule 1 carries nothing.
    if (*tail == '2') {
      EXPECT_GT(Stat(held, "pace_tail_carried_ms"), 0) << held.err;
    } else {
      EXPECT_EQ(Stat(held, "pace_tail_carried_ms"), 0) << held.err;
    }
  }
}

// A training step's shape: 10 ms of kernels, a synchronise, then host work before the next
// launch (4 ms, the GPU idle meanwhile). In pace mode a stretch usually ends while the loop
// waits in that synchronise; its host work then ran into the pause. Taken for a pause (the
// closing launch came more than 2 ms late) it was free: 35.6 % of unlimited throughput at 30
// (37.4 with 8 ms). Pace mode learns the loop's host gaps inside its stretches and charges
// them. A loop that really pauses (100 ms after each step, like a server between requests) is
// still not charged for its pauses: it uses less than its share and runs at its own pace.
TEST_F(ComputeTest, HostWorkAfterASynchroniseIsChargedAndPausesAreNot) {
  auto loop = [](const char* host_us) {
    return std::vector<std::string>{"loop",  "--kernel-us", "500", "--sync",      "20", "--host-us",
                                    host_us, "--seconds",   "2",   "--warmup-ms", "400"};
  };
  auto env = [&](const std::string& limit) { return ShapeEnv("h", limit); };
  for (const char* host : {"4000", "8000"}) {
    Result unlimited = Probe(loop(host), env(""));
    Result held = Probe(loop(host), env("30"));
    double pct = 100 * Rate(held) / Rate(unlimited);
    printf("%s us of host work after each synchronise, at 30 %%: %.1f %% of unlimited\n", host,
           pct);
    EXPECT_NEAR(pct, 30, 4) << host << held.out << unlimited.out;
  }
  Result unlimited = Probe(loop("100000"), env(""));
  Result held = Probe(loop("100000"), env("30"));
  EXPECT_GT(100 * Rate(held) / Rate(unlimited), 85) << held.out << unlimited.out;
}

// A loop that restarts slowly after each pause: a token-by-token decoder (a kernel, a
// synchronise, host work) whose first kernel after an idle card takes 2 ms longer (the fake's
// FAKEGPU_WAKE_US; on the H100 host and GPU woken from the pause lose about 1 ms of the loop's
// pace per stretch). Charged the whole stretch it got 27.1-27.4 % of unlimited at 30; pace
// mode learns the loss from the loop's launches in the stretch's first 5 ms against the rest
// and does not charge it. A loop whose stretches start with a burst (the step above, its
// queue refilled) shows no such loss and gets no credit: that test holds it to its share.
TEST_F(ComputeTest, ALoopThatRestartsSlowlyAfterEachPauseKeepsItsShare) {
  std::vector<std::string> decode = {"loop", "--kernel-us", "50", "--sync",      "1",  "--host-us",
                                     "200",  "--seconds",   "2",  "--warmup-ms", "400"};
  auto env = [&](const std::string& limit) {
    return ShapeEnv("w", limit, {{"FAKEGPU_WAKE_US", "2000"}});
  };
  Result unlimited = Probe(decode, env(""));
  Result held = Probe(decode, env("30"));
  double pct = 100 * Rate(held) / Rate(unlimited);
  printf("a loop that loses 2 ms after each pause, at 30 %%: %.1f %% of unlimited\n", pct);
  EXPECT_NEAR(pct, 30, 2) << held.out << held.err << unlimited.out;
}

// Pace mode (docs/compute-limiter.md, section 1b): alone on the card under `force`, the loop
// runs untouched in stretches (most launches unmeasured) and the stretches are charged; a
// second process of the same container switches both back to per-launch accounting.
TEST_F(ComputeTest, PaceModeRunsStretchesAloneAndStepsAsideForASecondProcess) {
  std::vector<std::string> gaps = {"loop", "--kernel-us", "20",  "--launch-gap-us", "20", "--sync",
                                   "16",   "--seconds",   "1.5", "--warmup-ms",     "300"};
  Env e = ContainerEnv("pace", "50");
  e["HAMI_COMPUTE_STATS"] = "1";
  e["HAMI_COMPUTE_PACE_MS"] = "5";  // many stretches in the window
  e["HAMI_COMPUTE_POWER"] = "0";
  Result alone = Probe(gaps, e);
  auto count = [](const std::string& err, const char* key) {
    size_t at = err.find(key);
    return at == std::string::npos ? -1L : atol(err.c_str() + at + strlen(key));
  };
  long iters = atol(alone.Get("iters").c_str());
  EXPECT_GT(count(alone.err, "pace_stretches="), 50) << alone.err;
  EXPECT_GT(count(alone.err, "unmeasured="), iters / 2)
      << "stretches run unmeasured: " << alone.err;
  // (Its throughput share is checked on the loops above; this host-bound loop's unlimited rate
  // swings with the test machine's load.) The GPU is never held above the limit.
  EXPECT_LT(Share(alone), 50 + 8) << alone.out;
  // Two processes of the container: per-launch accounting (measured launches) in both.
  auto a = ProbeAsync(kLoop, e);
  auto b = ProbeAsync(kLoop, e);
  Result ra = a.get(), rb = b.get();
  EXPECT_NEAR(Share(ra) + Share(rb), 50, 10) << ra.out << rb.out;
  EXPECT_GT(count(ra.err, "mode=start launches=") + count(ra.err, "mode=busy launches="), 20)
      << "a second process turns per-launch accounting on: " << ra.err;
}

// Policy default alone on the card must not slow a launch-bound loop: launches go unmeasured
// except about one per millisecond (docs/compute-limiter.md, section 1).
TEST_F(ComputeTest, DefaultPolicyAloneCostsALaunchBoundLoopNothing) {
  std::vector<std::string> gaps = {"loop", "--kernel-us", "20",  "--launch-gap-us", "20", "--sync",
                                   "16",   "--seconds",   "1.5", "--warmup-ms",     "300"};
  Env e = ContainerEnv("d", "50", "default");
  e["HAMI_COMPUTE_STATS"] = "1";
  Result alone = Probe(gaps, e);
  Result native = Probe(gaps, ContainerEnv("n", ""));
  long unmeasured = 0;
  size_t at = alone.err.find("unmeasured=");
  if (at != std::string::npos) unmeasured = atol(alone.err.c_str() + at + 11);
  long iters = atol(alone.Get("iters").c_str());
  EXPECT_GT(unmeasured, iters / 2) << "most launches skip the measurement: " << alone.err;
  EXPECT_GT(Rate(alone), 0.85 * Rate(native)) << alone.out << native.out;
}

TEST_F(ComputeTest, DisablePolicyNeverThrottles) {
  Result r = Probe(kLoop, ContainerEnv("a", "30", "disable"));
  EXPECT_GT(Share(r), 85) << r.out;
}

TEST_F(ComputeTest, DefaultPolicyThrottlesOnlyUnderContention) {
  Result alone = Probe(kLoop, ContainerEnv("a", "30", "default"));
  EXPECT_GT(Share(alone), 85) << "alone on the GPU: not limited. " << alone.out;

  // Another container on the same GPU: both limited to their shares.
  auto a = ProbeAsync(kLoop, ContainerEnv("a", "30", "default"));
  auto b = ProbeAsync(kLoop, ContainerEnv("b", "50", "default"));
  Result ra = a.get(), rb = b.get();
  EXPECT_NEAR(Share(ra), 30, 8) << ra.out << rb.out;
  EXPECT_NEAR(Share(rb), 50, 10) << ra.out << rb.out;
}

TEST_F(ComputeTest, DefaultPolicyAloneCountsItsGpuTimeInTheAccountingFile) {
  // Unthrottled, launches are counted rather than measured: each thread adds their estimated
  // GPU time to the container's busy counter (the monitor's utilisation, the NVML comparison
  // of policy default) once per ms and at exit, not at every launch. The counter must still
  // hold the GPU time the process ran.
  Result r =
      Probe({"loop", "--kernel-us", "200", "--sync", "8", "--seconds", "1", "--warmup-ms", "0"},
            ContainerEnv("a", "50", "default"));
  EXPECT_GT(Share(r), 85) << "alone: not limited. " << r.out;
  ExpectBusyCounterHolds("a", r);
}

TEST_F(ComputeTest, ShortLivedThreadsCountTheirGpuTimeInTheAccountingFile) {
  // Each batch of 8 launches and its synchronise runs on a thread that exits at once: the
  // launches of one batch fall inside one flush period, so a thread that took its unflushed
  // count with it would leave the busy counter near zero.
  Result r = Probe({"loop", "--kernel-us", "200", "--sync", "8", "--batch-threads", "1",
                    "--seconds", "1", "--warmup-ms", "0"},
                   ContainerEnv("a", "50", "default"));
  ExpectBusyCounterHolds("a", r);
}

TEST_F(ComputeTest, DefaultPolicySeesANeighbourWithoutLibvgpuThroughNvml) {
  // The neighbour marks nothing anywhere (no libvgpu, no monitor); the GPU's utilisation
  // above the container's own busy time gives it away. Unthrottled, the container would get
  // half of the fake GPU next to a saturating neighbour.
  Env plain = ContainerEnv("plain", "", "");
  plain.erase("LD_PRELOAD");
  std::vector<std::string> longer = kLoop;
  longer[6] = "2.6";  // the neighbour outlasts the measured process
  auto n = ProbeAsync(longer, plain);
  Result r = Probe(kLoop, ContainerEnv("a", "30", "default"));
  n.get();
  EXPECT_NEAR(Share(r), 30, 8) << r.out;
}

// Policy default, the only one computing on the card, next to a process that holds a context
// but idles (a neighbour's idle notebook): a server's 800 ms bursts after 2 s pauses are not
// throttled. The NVML check compares the card's utilisation over its last sample period with
// the container's own busy time over the last checks. Checks happen at launches, so after a
// pause the oldest of them were seconds old: the container's share then read as its work
// spread over the pause while NVML showed its resumed work, and from the second check of a
// burst on the policy took its own work for someone else's (throttled for the rest of the
// burst, 1.5x slower). (The probe's pauses of a second or more were no pauses before:
// nanosleep refused a tv_nsec of 1e9 and up.)
TEST_F(ComputeTest, DefaultPolicyDoesNotThrottleABurstAfterAPause) {
  // Contexts hold memory, as on a real card: NVML lists the idle neighbour's process (without
  // it the policy takes the card for its own and never asks NVML).
  std::ofstream(dir_ + "/gpus.conf")
      << "uuid=" << kUuid0 << " name=NVIDIA H100 mem=16g ctxmem=64m\n"
      << "uuid=" << kUuid1 << " name=NVIDIA H100 mem=16g ctxmem=64m\n";
  Env plain = ContainerEnv("plain", "", "");
  plain.erase("LD_PRELOAD");
  auto idle = ProbeAsync({"requests", "--kernel-us", "10", "--per-request", "1", "--gap-us",
                          "3000000", "--seconds", "14", "--warmup-ms", "0"},
                         plain);
  // Each kernel waited for (launches, and so the policy's checks, all along the burst).
  const std::vector<std::string> bursts = {
      "requests", "--kernel-us", "2000",      "--per-request", "400",         "--sync", "1",
      "--gap-us", "2000000",     "--seconds", "4.5",           "--warmup-ms", "1200"};
  Result free = Probe(bursts, ContainerEnv("n", ""));
  Env d_env = ContainerEnv("d", "50", "default");
  d_env["LIBCUDA_LOG_LEVEL"] = "3";  // logs its contention switches
  Result d = Probe(bursts, d_env);
  idle.get();
  const double p50_free = atof(free.Get("p50_us").c_str());
  const double p50_d = atof(d.Get("p50_us").c_str());
  printf(
      "800 ms bursts after 2 s pauses, default policy at 50 %%: p50 %.0f ms, unlimited %.0f ms\n",
      p50_d / 1e3, p50_free / 1e3);
  EXPECT_GT(p50_free, 700000) << free.out;
  EXPECT_LT(p50_d, 1.15 * p50_free) << d.out << d.err << free.out;
  EXPECT_EQ(d.err.find("contended=1"), std::string::npos) << d.err;
}

// The node agent changes a running slice's compute share by rewriting its limits file
// (docs/limits-file.md, "Changing the compute share"): one process, its share changed between
// windows (the file is looked at every 0.5 s; 0.8 s of warm-up before each window). A file
// that no longer parses changes nothing: the share stays, it is not lifted.
TEST_F(ComputeTest, ARunningProcessFollowsItsLimitsFile) {
  const std::string file = dir_ + "/vgpu.limits";
  std::ofstream(file) << "CUDA_DEVICE_SM_LIMIT=30\n";
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  Env e = ContainerEnv("f", "", "force");
  e["HAMI_LIMITS_FILE"] = file;
  e["HAMI_COMPUTE_POWER"] = "0";
  e["LIBCUDA_LOG_LEVEL"] = "3";
  e["HAMI_COMPUTE_STATS"] = "1";  // the pace counters of each share, at its change
  Result r = Probe({"loop", "--kernel-us", "1000", "--seconds", "0.8", "--warmup-ms", "800",
                    "--phase-limits", file + ":30,70,-1,0,30"},
                   e);
  std::vector<double> shares;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    size_t at = line.find("share_pct=");
    if (at != std::string::npos) shares.push_back(atof(line.c_str() + at + 10));
  }
  ASSERT_EQ(shares.size(), 5u) << r.out << r.err;
  printf("shares at 30, 70, 70 (broken file), unlimited, 30: %.1f %.1f %.1f %.1f %.1f\n", shares[0],
         shares[1], shares[2], shares[3], shares[4]);
  EXPECT_NEAR(shares[0], 30, 5) << r.out;
  EXPECT_NEAR(shares[1], 70, 7) << r.out;
  EXPECT_NEAR(shares[2], 70, 7) << r.out << r.err;
  EXPECT_GT(shares[3], 80) << r.out;  // unlimited: the whole fake GPU, less host load (>70+7)
  EXPECT_NEAR(shares[4], 30, 5) << r.out;
  EXPECT_NE(r.err.find("the compute share stays as it was"), std::string::npos) << r.err;
  // The counters of the stretches run at 30 %, then those at 70 % (through the broken file),
  // each printed when its share ended and started over: the 30 % period paused longer.
  auto pace = [&](const std::string& share, const char* key) {
    size_t at = r.err.find("hami-compute-stats share=" + share + "% pace_stretches=");
    if (at == std::string::npos) return -1.0;
    size_t k = r.err.find(key, at);
    return k == std::string::npos ? -1.0 : atof(r.err.c_str() + k + strlen(key));
  };
  double wait30 = pace("30", "pace_wait_ms="), ran30 = pace("30", "pace_ran_ms=");
  double wait70 = pace("70", "pace_wait_ms="), ran70 = pace("70", "pace_ran_ms=");
  ASSERT_GT(ran30, 0) << r.err;
  ASSERT_GT(ran70, 0) << r.err;
  EXPECT_GT(wait30 / ran30, 1.5) << "30 %: about 2.3 ms paused per ms run. " << r.err;
  EXPECT_LT(wait70 / ran70, 0.8) << "70 %: about 0.43 ms paused per ms run. " << r.err;
  // Every share's launches and the GPU span of its sampled ones, the unlimited one too: the
  // fake's 1 ms kernels measure about 1 ms at 30 % and unlimited alike.
  auto period = [&](const std::string& share, const char* key) {
    size_t at = r.err.find("hami-compute-stats share=" + share + "% launches=");
    if (at == std::string::npos) return -1.0;
    size_t k = r.err.find(key, at);
    return k == std::string::npos ? -1.0 : atof(r.err.c_str() + k + strlen(key));
  };
  for (const char* share : {"0", "30"}) {
    EXPECT_GT(period(share, "launches="), 100) << share << " %: " << r.err;
    double nb = period(share, "sampled_busy="), ns = period(share, "sampled_start=");
    ASSERT_GT(nb + ns, 0) << share << " %: " << r.err;
    double span =
        (nb * period(share, "span_busy_us=") + ns * period(share, "span_start_us=")) / (nb + ns);
    EXPECT_NEAR(span, 1000, 250) << share << " %: " << r.err;
  }
}

TEST_F(ComputeTest, DefaultPolicyFollowsTheMonitorsContentionFile) {
  mkdir((dir_ + "/contention").c_str(), 0755);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long now_ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
  std::ofstream(dir_ + "/contention/" + std::string(kUuid0))
      << "# written by hami-vgpu-monitor\nALLOCATED_CONTAINERS=2\nACTIVE_CONTAINERS=2\n"
      << "ACTIVE_HIGH_PRIORITY=0\nMIN_ACTIVE_PRIORITY=1\nUPDATED_UNIX_MS=" << now_ms + 60000
      << "\n";
  Result r = Probe(kLoop, ContainerEnv("a", "30", "default"));
  EXPECT_NEAR(Share(r), 30, 8) << r.out;
}

TEST_F(ComputeTest, HighPriorityKeepsItsLatencyNextToLowPriorityWork) {
  // Requests of 4 x 2 ms every ~8 ms; the neighbour saturates with 500 us kernels queued 16
  // deep. Without priority the requests wait behind the neighbour's queue.
  std::vector<std::string> req = {"requests", "--kernel-us", "2000", "--per-request",
                                  "4",        "--gap-us",    "8000", "--seconds",
                                  "2",        "--warmup-ms", "300"};
  std::vector<std::string> low = {"loop",      "--kernel-us", "500",         "--sync", "16",
                                  "--seconds", "2.2",         "--warmup-ms", "200"};
  Env hi = ContainerEnv("hi", "", "");
  hi["CUDA_TASK_PRIORITY"] = "0";
  Env lo = ContainerEnv("lo", "", "");
  lo["CUDA_TASK_PRIORITY"] = "1";

  Result solo = Probe(req, hi);
  auto h = ProbeAsync(req, hi);
  auto l = ProbeAsync(low, lo);
  Result with_low = h.get(), low_r = l.get();
  // Control: same neighbour without a priority (libvgpu does not interpose its launches).
  Env plain = ContainerEnv("plain", "", "");
  auto h2 = ProbeAsync(req, hi);
  auto l2 = ProbeAsync(low, plain);
  Result with_plain = h2.get();
  l2.get();

  double solo_p90 = static_cast<double>(solo.GetInt("p90_us"));
  ASSERT_GT(solo_p90, 7000) << solo.out;
  EXPECT_LT(with_low.GetInt("p90_us"), solo_p90 * 1.25)
      << "solo " << solo.out << "with low-priority neighbour " << with_low.out;
  // Control, same pair of processes, same machine load: the neighbour's queue hurts.
  EXPECT_GT(with_plain.GetInt("p50_us"), with_low.GetInt("p50_us") * 1.2)
      << "control: an unprioritised neighbour should hurt. " << with_plain.out << with_low.out;
  // The neighbour still gets the GPU between requests (about half of it).
  EXPECT_GT(Share(low_r), 20) << low_r.out;
}

TEST_F(ComputeTest, MonitorsContentionFileAloneMakesLowPriorityKeepItsQueueShort) {
  // Kubernetes case: containers do not share a board directory, only the monitor's file
  // says a priority-0 container is active. The low-priority neighbour then keeps one launch
  // in flight, so requests wait for at most one of its kernels instead of its queue.
  std::vector<std::string> req = {"requests", "--kernel-us", "2000", "--per-request",
                                  "4",        "--gap-us",    "8000", "--seconds",
                                  "2",        "--warmup-ms", "300"};
  std::vector<std::string> low = {"loop",      "--kernel-us", "500",         "--sync", "16",
                                  "--seconds", "2.2",         "--warmup-ms", "200"};
  mkdir((dir_ + "/contention").c_str(), 0755);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long now_ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
  std::ofstream(dir_ + "/contention/" + std::string(kUuid0))
      << "ALLOCATED_CONTAINERS=2\nACTIVE_CONTAINERS=2\nACTIVE_HIGH_PRIORITY=1\n"
      << "MIN_ACTIVE_PRIORITY=0\nUPDATED_UNIX_MS=" << now_ms + 60000 << "\n";
  Env hi = ContainerEnv("hi", "", "");
  hi["CUDA_TASK_PRIORITY"] = "0";
  hi["HAMI_COMPUTE_BOARD_DIR"] = dir_ + "/board-hi";
  Env lo = ContainerEnv("lo", "", "");
  lo["CUDA_TASK_PRIORITY"] = "1";
  lo["HAMI_COMPUTE_BOARD_DIR"] = dir_ + "/board-lo";

  Result solo = Probe(req, hi);
  auto h = ProbeAsync(req, hi);
  auto l = ProbeAsync(low, lo);
  Result with_low = h.get(), low_r = l.get();
  double solo_p90 = static_cast<double>(solo.GetInt("p90_us"));
  ASSERT_GT(solo_p90, 7000) << solo.out;
  EXPECT_LT(with_low.GetInt("p90_us"), solo_p90 * 1.3)
      << "solo " << solo.out << "with low-priority neighbour " << with_low.out;
  EXPECT_GT(Share(low_r), 20) << low_r.out;
}

}  // namespace
}  // namespace hami::testing
