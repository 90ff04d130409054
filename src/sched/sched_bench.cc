// sched_bench: decision latency and packing quality of the scheduling engine.
// Prints markdown tables (docs/scheduling.md explains the method). Not a test.
//
//   sched_bench [--nodes 5000] [--gpus 8] [--slices 40000] [--decisions 2000]
//               [--pack-nodes 100,1000,5000] [--pack-seeds 10,10,3] [--seed 1]
//               [--quotas 500] [--tables latency,quota,packing]
// Packing runs once per cluster size of --pack-nodes, with the matching --pack-seeds entry
// (one value applies to every size).
// SCHED_BENCH_DEBUG=1 prints, per packing run, the pod that was rejected first and why.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sched/engine.h"
#include "sched/packing_trace.h"
#include "sched/quota_filter.h"

namespace hami::sched {
namespace {

using Clock = std::chrono::steady_clock;

using packing::CapacityBound;
using packing::kGpuMem;
using packing::kSplit;
using packing::LongestPrefixSlices;
using packing::NextItem;
using packing::Trace;
using packing::TraceItem;
using packing::TraceName;

struct Options {
  int nodes = 5000;
  int gpus = 8;
  int slices = 40000;
  int decisions = 2000;
  int pack_nodes = 100;
  int pack_seeds = 10;
  uint32_t seed = 1;
  int quotas = 500;                                   // namespaces with a quota in the quota table
  bool latency = true, quota = true, packing = true;  // --tables
};

NodeInfo MakeNode(int n, int gpus) {
  NodeInfo node;
  char name[32];
  std::snprintf(name, sizeof name, "gpu-node-%05d", n);
  node.name = name;
  for (int g = 0; g < gpus; ++g) {
    GpuInfo gpu;
    char uuid[48];
    std::snprintf(uuid, sizeof uuid, "GPU-%08x-%04x", n, g);
    gpu.uuid = uuid;
    gpu.index = g;
    gpu.type = "NVIDIA-NVIDIA H100 80GB HBM3";
    gpu.memory_mib = kGpuMem;
    gpu.cores = 100;
    gpu.split_count = kSplit;
    gpu.numa = g < gpus / 2 ? 0 : 1;
    node.gpus.push_back(std::move(gpu));
  }
  return node;
}

PodRequest ToPod(const TraceItem& t) {
  PodRequest p;
  ContainerRequest c;
  c.gpu_count = t.count;
  c.memory_mib = t.mem;
  c.cores = t.cores;
  p.containers = {c};
  return p;
}

double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double Percentile(std::vector<double>& v, double q) {
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

// 40,000 slices spread over random GPUs: 1..8 GiB, 0..30 % cores, one GPU per pod mostly.
// `on_pod` (optional) sees every pod recorded.
void Populate(ClusterState& s, const std::vector<NodeInfo>& nodes, int slices, uint32_t seed,
              const std::function<void(const std::string&, const PodPlacement&)>& on_pod = {}) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  int placed = 0, pod = 0;
  while (placed < slices) {
    const NodeInfo& n = nodes[pick(static_cast<int>(nodes.size()))];
    int count = pick(4) == 0 ? 2 : 1;
    int first = pick(static_cast<int>(n.gpus.size()) - 1);
    PodPlacement p;
    ContainerDevices devs;
    for (int k = 0; k < count && placed < slices; ++k, ++placed) {
      const GpuInfo& g = n.gpus[first + k];
      devs.push_back(DeviceAlloc{g.uuid, g.type, 1024LL * (1 + pick(8)), pick(31)});
    }
    p.containers = {devs};
    std::string uid = "pod-" + std::to_string(pod++);
    Status st = s.AddPlacement(uid, n.name, p);
    if (!st.ok()) std::abort();
    if (on_pod) on_pod(uid, p);
  }
}

struct Mode {
  const char* call;
  NodePolicy np;
  GpuPolicy gp;
};

// One row of the latency table: o.decisions decisions of mode `m` against `state`.
void LatencyRow(const Options& o, ClusterState& state, const std::vector<std::string>& names,
                const Mode& m) {
  SchedulerConfig cfg;
  cfg.node_policy = m.np;
  cfg.gpu_policy = m.gp;
  Engine engine(cfg);
  std::mt19937 rng(o.seed + 7);
  std::vector<double> us, cpu;
  int fit = 0;
  for (int i = 0; i < o.decisions; ++i) {
    PodRequest pod = ToPod(NextItem(rng, Trace::kUniform));
    const bool general = std::strcmp(m.call, "Schedule, general path") == 0;
    if (general || std::strcmp(m.call, "Schedule, memory %") == 0) {
      // Memory as a percentage (fast path on uniform nodes); with an init container every
      // node runs the full placement (general path).
      ContainerRequest& c = pod.containers[0];
      c.memory_percent = static_cast<int32_t>(100 * *c.memory_mib / kGpuMem);
      c.memory_mib.reset();
      ContainerRequest init;
      init.gpu_count = 1;
      init.memory_mib = 2048;
      if (general) pod.init_containers = {init};
    }
    auto start = Clock::now();
    double cpu_start = ThreadCpuUs();
    bool ok = false;
    if (std::strcmp(m.call, "Filter(5000 names)") == 0) {
      auto f = engine.Filter(state, pod, names);
      ok = f.ok() && f->summary.fitting > 0;
    } else if (std::strcmp(m.call, "Schedule(5000 names)") == 0) {
      auto d = engine.Schedule(state, pod, names);
      ok = d.ok() && d->scheduled;
    } else {
      auto d = engine.Schedule(state, pod);
      ok = d.ok() && d->scheduled;
      if (ok && std::strcmp(m.call, "Schedule+Add+Remove") == 0) {
        if (!state.AddPlacement("bench", d->node, d->placement).ok()) std::abort();
        if (!state.RemovePlacement("bench").ok()) std::abort();
      }
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    cpu.push_back(ThreadCpuUs() - cpu_start);
    fit += ok;
  }
  double p50 = Percentile(us, 0.50), p99 = Percentile(us, 0.99), mx = us.back();
  double c50 = Percentile(cpu, 0.50), c99 = Percentile(cpu, 0.99);
  std::printf("| %s | %s | %s | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f |\n", m.call,
              PolicyName(m.np), PolicyName(m.gp), o.decisions, fit, p50, p99, mx, c50, c99);
}

void LatencyTable(const Options& o) {
  std::vector<NodeInfo> nodes;
  for (int n = 0; n < o.nodes; ++n) nodes.push_back(MakeNode(n, o.gpus));
  ClusterState state;
  auto t0 = Clock::now();
  for (const auto& n : nodes)
    if (!state.AddNode(n).ok()) std::abort();
  auto t1 = Clock::now();
  Populate(state, nodes, o.slices, o.seed);
  auto t2 = Clock::now();
  std::vector<std::string> names = state.NodeNames();
  std::printf(
      "State: %d nodes x %d GPUs (80 GiB, split %d), %d placed slices, %zu pods; "
      "AddNode all %.1f ms, AddPlacement all %.1f ms (%.2f us each)\n\n",
      o.nodes, o.gpus, kSplit, o.slices, state.placement_count(),
      std::chrono::duration<double, std::milli>(t1 - t0).count(),
      std::chrono::duration<double, std::milli>(t2 - t1).count(),
      std::chrono::duration<double, std::micro>(t2 - t1).count() / o.slices);

  std::printf(
      "| call | node policy | GPU policy | decisions | fit | p50 us | p99 us | max us | "
      "CPU p50 us | CPU p99 us |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  const Mode modes[] = {
      {"Schedule(all nodes)", NodePolicy::kBinpack, GpuPolicy::kBinpack},
      {"Schedule(all nodes)", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Schedule(all nodes)", NodePolicy::kSpread, GpuPolicy::kBinpack},
      {"Schedule(all nodes)", NodePolicy::kSpread, GpuPolicy::kSpread},
      {"Schedule(5000 names)", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Filter(5000 names)", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Schedule+Add+Remove", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Schedule, memory %", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Schedule, general path", NodePolicy::kBinpack, GpuPolicy::kBinpack},
      {"Schedule, general path", NodePolicy::kBinpack, GpuPolicy::kSpread},
      {"Schedule, general path", NodePolicy::kSpread, GpuPolicy::kBinpack},
  };
  for (const Mode& m : modes) LatencyRow(o, state, names, m);
  std::printf("\n");
}

// Quota limits per namespace, from its usage. roomy: never binding, so every decision runs the
// engine in full plus the quota work; tight: 0..64 GiB, 0..200 % and 0..4 GPUs above the usage,
// so some pods are refused.
void SetQuotaLimits(int quotas, std::mt19937& ns_rng, QuotaBook* roomy, QuotaBook* tight) {
  for (int i = 0; i < quotas; ++i) {
    std::string ns = "ns-" + std::to_string(static_cast<uint32_t>(i));
    QuotaAmount used = roomy->Used(ns);
    roomy->SetLimits(ns, "gpu-quota",
                     {used.memory_mib + (1 << 30), used.cores + 100000, used.cards + 10000});
    tight->SetLimits(ns, "gpu-quota",
                     {used.memory_mib + static_cast<int64_t>(ns_rng() % 65) * 1024,
                      used.cores + static_cast<int64_t>(ns_rng() % 201),
                      used.cards + static_cast<int64_t>(ns_rng() % 5)});
  }
}

// The two rows (without, with quotas) of one quota-table case.
void PrintQuotaRows(const char* call, const char* label, std::vector<double> (&us)[2],
                    std::vector<double> (&cpu)[2], const int (&fit)[2]) {
  double p99[2], c99[2];
  for (int with = 0; with < 2; ++with) {
    double p50 = Percentile(us[with], 0.50), c50 = Percentile(cpu[with], 0.50);
    p99[with] = Percentile(us[with], 0.99);
    c99[with] = Percentile(cpu[with], 0.99);
    std::printf("| %s | %s | %d | %.0f | %.0f | %.0f | %.0f | ", call, with ? label : "none",
                fit[with], p50, p99[with], c50, c99[with]);
    if (with) {
      std::printf("%.3f, %.3f |\n", p99[1] / p99[0], c99[1] / c99[0]);
    } else {
      std::printf("- |\n");
    }
  }
}

// Decision latency with quotas in force: every placed pod belongs to one of `quotas`
// namespaces, each with a ceiling on memory, cores and cards; each decision's pod comes from a
// random one of them. Per decision the call runs once without quotas and once under them
// (alternating which goes first), so both columns see the same machine load.
void QuotaLatencyTable(const Options& o) {
  std::vector<NodeInfo> nodes;
  for (int n = 0; n < o.nodes; ++n) nodes.push_back(MakeNode(n, o.gpus));
  ClusterState state;
  for (const auto& n : nodes)
    if (!state.AddNode(n).ok()) std::abort();
  std::mt19937 ns_rng(o.seed + 3);
  auto ns_name = [](uint32_t i) { return "ns-" + std::to_string(i); };
  QuotaBook roomy, tight;
  Populate(state, nodes, o.slices, o.seed, [&](const std::string& uid, const PodPlacement& p) {
    std::string ns = ns_name(ns_rng() % static_cast<uint32_t>(o.quotas));
    roomy.AddUsage(uid, ns, PlacementQuotaUsage(p));
    tight.AddUsage(uid, ns, PlacementQuotaUsage(p));
  });
  SetQuotaLimits(o.quotas, ns_rng, &roomy, &tight);
  std::vector<std::string> names = state.NodeNames();
  std::printf(
      "Quotas: %d namespaces with a quota (memory, cores, cards), %zu pods counted against "
      "them; same state as above. Each row: %d decisions, each timed without and with quotas "
      "in the same loop iteration.\n\n",
      o.quotas, roomy.usage_count(), o.decisions);
  std::printf(
      "| call | quotas | fit | p50 us | p99 us | CPU p50 us | CPU p99 us | p99 with/without "
      "(wall, CPU) |\n|---|---|---|---|---|---|---|---|\n");
  enum class Kind { kSchedule, kPercent, kFilter };
  struct Row {
    const char* call;
    Kind kind;
    const QuotaBook* book;
    const char* label;
  };
  const Row rows[] = {
      {"Schedule(all nodes)", Kind::kSchedule, &roomy, "roomy"},
      {"Schedule(all nodes)", Kind::kSchedule, &tight, "tight"},
      {"Schedule, memory %", Kind::kPercent, &roomy, "roomy"},
      {"Schedule, memory %", Kind::kPercent, &tight, "tight"},
      {"Filter(5000 names)", Kind::kFilter, &roomy, "roomy"},
  };
  Engine engine;  // binpack nodes, spread GPUs: the defaults
  for (const Row& row : rows) {
    std::mt19937 rng(o.seed + 7);
    std::vector<double> us[2], cpu[2];
    int fit[2] = {0, 0};
    for (int i = 0; i < o.decisions; ++i) {
      PodRequest pod = ToPod(NextItem(rng, Trace::kUniform));
      if (row.kind == Kind::kPercent) {
        ContainerRequest& c = pod.containers[0];
        c.memory_percent = static_cast<int32_t>(100 * *c.memory_mib / kGpuMem);
        c.memory_mib.reset();
      }
      std::string ns = ns_name(rng() % static_cast<uint32_t>(o.quotas));
      for (int k = 0; k < 2; ++k) {
        int with = (i + k) % 2;  // alternate which variant runs first
        QuotaScope scope{with ? row.book : nullptr, ns};
        auto start = Clock::now();
        double cpu_start = ThreadCpuUs();
        bool ok = false;
        if (row.kind == Kind::kFilter) {
          auto f = FilterUnderQuota(engine, state, pod, names, scope);
          ok = f.ok() && f->summary.fitting > 0;
        } else {
          auto d = ScheduleUnderQuota(engine, state, pod, std::nullopt, scope);
          ok = d.ok() && d->scheduled;
        }
        us[with].push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        cpu[with].push_back(ThreadCpuUs() - cpu_start);
        fit[with] += ok;
      }
    }
    PrintQuotaRows(row.call, row.label, us, cpu, fit);
  }
  std::printf("\n");
}

// Offline first-fit-decreasing of the prefix's slices into the pooled cards (by memory, then
// cores); the longest prefix it packs is achievable offline (ignoring node grouping).
int64_t OfflineFfd(const std::vector<TraceItem>& trace, int64_t gpus) {
  auto packs = [&](size_t n) {
    std::vector<std::pair<int64_t, int>> items;
    for (size_t i = 0; i < n; ++i)
      for (int k = 0; k < trace[i].count; ++k)
        items.push_back({trace[i].cores >= 100 ? kGpuMem : trace[i].mem, trace[i].cores});
    std::sort(items.begin(), items.end(), std::greater<>());
    std::vector<int64_t> mem(gpus, 0);
    std::vector<int> cores(gpus, 0), slots(gpus, 0);
    for (auto [m, c] : items) {
      bool ok = false;
      for (int64_t g = 0; g < gpus && !ok; ++g) {
        if (mem[g] + m <= kGpuMem && cores[g] + c <= 100 && slots[g] < kSplit) {
          mem[g] += m;
          cores[g] += c;
          ++slots[g];
          ok = true;
        }
      }
      if (!ok) return false;
    }
    return true;
  };
  return LongestPrefixSlices(trace, packs);
}

void PackingTable(const Options& o, Trace kind) {
  const int64_t gpus = static_cast<int64_t>(o.pack_nodes) * o.gpus;
  std::printf(
      "Packing, trace `%s`: %d nodes x %d GPUs (80 GiB, split %d), seeds 1..%d. Slices "
      "placed before the first rejection, as a share of the capacity bound; the offline "
      "FFD row packs the same prefixes knowing the whole trace.\n\n",
      TraceName(kind), o.pack_nodes, o.gpus, kSplit, o.pack_seeds);
  std::printf(
      "| node policy | GPU policy | mean placed/bound | min | max | memory used at first "
      "rejection |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::vector<std::vector<TraceItem>> traces;
  std::vector<int64_t> bounds;
  for (int seed = 1; seed <= o.pack_seeds; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<TraceItem> trace;
    for (int i = 0; i < 20 * static_cast<int>(gpus); ++i) trace.push_back(NextItem(rng, kind));
    bounds.push_back(CapacityBound(trace, gpus));
    traces.push_back(std::move(trace));
  }
  const std::pair<NodePolicy, GpuPolicy> combos[] = {
      {NodePolicy::kBinpack, GpuPolicy::kBinpack},
      {NodePolicy::kBinpack, GpuPolicy::kSpread},
      {NodePolicy::kSpread, GpuPolicy::kBinpack},
      {NodePolicy::kSpread, GpuPolicy::kSpread},
  };
  for (auto [np, gp] : combos) {
    SchedulerConfig cfg;
    cfg.node_policy = np;
    cfg.gpu_policy = gp;
    Engine engine(cfg);
    double sum = 0, lo = 1e9, hi = 0, memsum = 0;
    for (size_t t = 0; t < traces.size(); ++t) {
      const auto& trace = traces[t];
      ClusterState s;
      for (int n = 0; n < o.pack_nodes; ++n)
        if (!s.AddNode(MakeNode(n, o.gpus)).ok()) std::abort();
      int64_t placed = 0, mem = 0;
      for (size_t i = 0; i < trace.size(); ++i) {
        auto d = engine.Schedule(s, ToPod(trace[i]));
        if (!d.ok()) std::abort();
        if (!d->scheduled) {
          if (std::getenv("SCHED_BENCH_DEBUG"))
            std::fprintf(stderr, "%s/%s seed %zu: rejected #%zu (%d x %ld MiB, %d cores): %s\n",
                         PolicyName(np), PolicyName(gp), t + 1, i, trace[i].count,
                         static_cast<long>(trace[i].mem), trace[i].cores,
                         d->summary.message.c_str());
          break;
        }
        if (!s.AddPlacement("p" + std::to_string(i), d->node, d->placement).ok()) std::abort();
        placed += trace[i].count;
        mem += trace[i].count * trace[i].mem;
      }
      double ratio = static_cast<double>(placed) / static_cast<double>(bounds[t]);
      sum += ratio;
      lo = std::min(lo, ratio);
      hi = std::max(hi, ratio);
      memsum += static_cast<double>(mem) / static_cast<double>(gpus * kGpuMem);
    }
    std::printf("| %s | %s | %.1f %% | %.1f %% | %.1f %% | %.1f %% |\n", PolicyName(np),
                PolicyName(gp), 100 * sum / o.pack_seeds, 100 * lo, 100 * hi,
                100 * memsum / o.pack_seeds);
  }
  double sum = 0, lo = 1e9, hi = 0;
  for (size_t t = 0; t < traces.size(); ++t) {
    double ratio =
        static_cast<double>(OfflineFfd(traces[t], gpus)) / static_cast<double>(bounds[t]);
    sum += ratio;
    lo = std::min(lo, ratio);
    hi = std::max(hi, ratio);
  }
  std::printf("| offline FFD (reference) | - | %.1f %% | %.1f %% | %.1f %% | - |\n\n",
              100 * sum / o.pack_seeds, 100 * lo, 100 * hi);
}

}  // namespace
}  // namespace hami::sched

// "100,1000" -> {100, 1000}; false on anything but counts 1..10000000 separated by commas.
bool ParseCounts(const char* text, std::vector<int>* out) {
  out->clear();
  std::string s = text;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || item[0] == '-' || v < 1 || v > 10'000'000) return false;
    out->push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out->empty();
}

// "latency,quota" -> only those tables; false on an unknown or empty item.
bool ParseTables(const char* text, hami::sched::Options* o) {
  o->latency = o->quota = o->packing = false;
  std::string s = text;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item == "latency") {
      o->latency = true;
    } else if (item == "quota") {
      o->quota = true;
    } else if (item == "packing") {
      o->packing = true;
    } else {
      return false;
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

int main(int argc, char** argv) {
  hami::sched::Options o;
  std::vector<int> pack_nodes = {100, 1000, 5000}, pack_seeds = {10, 10, 3};
  if (argc % 2 == 0) {
    std::fprintf(stderr, "flag %s has no value\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--tables") {
      if (!ParseTables(argv[i + 1], &o)) {
        std::fprintf(stderr, "--tables: '%s' is not a comma list of latency, quota, packing\n",
                     argv[i + 1]);
        return 2;
      }
      continue;
    }
    if (k == "--pack-nodes" || k == "--pack-seeds") {
      if (!ParseCounts(argv[i + 1], k == "--pack-nodes" ? &pack_nodes : &pack_seeds)) {
        std::fprintf(stderr, "%s: '%s' is not a comma list of counts 1..10000000\n", argv[i],
                     argv[i + 1]);
        return 2;
      }
      continue;
    }
    char* end = nullptr;
    long v = std::strtol(argv[i + 1], &end, 10);
    if (*argv[i + 1] == '\0' || *end != '\0' || v < 1 || v > 10'000'000) {
      std::fprintf(stderr, "%s: '%s' is not a count 1..10000000\n", argv[i], argv[i + 1]);
      return 2;
    }
    int n = static_cast<int>(v);
    if (k == "--nodes") {
      o.nodes = n;
    } else if (k == "--gpus") {
      o.gpus = n;
    } else if (k == "--slices") {
      o.slices = n;
    } else if (k == "--decisions") {
      o.decisions = n;
    } else if (k == "--seed") {
      o.seed = static_cast<uint32_t>(n);
    } else if (k == "--quotas") {
      o.quotas = n;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (o.gpus < 2 || o.gpus > 64) {
    std::fprintf(stderr, "--gpus must be 2..64\n");
    return 2;
  }
  if (pack_seeds.size() != 1 && pack_seeds.size() != pack_nodes.size()) {
    std::fprintf(stderr, "--pack-seeds needs one value or one per --pack-nodes size\n");
    return 2;
  }
  if (o.latency) hami::sched::LatencyTable(o);
  if (o.quota) hami::sched::QuotaLatencyTable(o);
  for (size_t i = 0; o.packing && i < pack_nodes.size(); ++i) {
    o.pack_nodes = pack_nodes[i];
    o.pack_seeds = pack_seeds.size() == 1 ? pack_seeds[0] : pack_seeds[i];
    hami::sched::PackingTable(o, hami::sched::packing::Trace::kUniform);
    hami::sched::PackingTable(o, hami::sched::packing::Trace::kSmall);
  }
  return 0;
}
