// Engine (engine.h): filter, score and schedule over a ClusterState.
//
// Per node: the pod-wide GPU filters (health, mode, type, UUID) are checked first, then each
// container is placed greedily in pod order on a scratch copy of the node's usage: init
// containers each against the node as it is (they run one at a time, before the app
// containers), app containers one after the other. A container takes the `count` fitting GPUs
// the GPU policy prefers (binpack: the best fit, FitKey; spread: the least utilised). The node
// score is the weighted utilisation of the node after the pod, except with binpack at both
// levels, where it is how tightly the pod's GPUs fit (utilisation breaks near-ties).
// The common pod (one container with GPUs, memory in MiB, no NUMA binding) takes a faster
// path that only counts fitting GPUs; GPUs are chosen only on the node finally picked.
#include "sched/engine.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace hami::sched {
namespace {

constexpr int64_t kScoreMax = 1'000'000;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const char* ReasonName(Reason r) {
  switch (r) {
    case Reason::kFits:
      return "Fits";
    case Reason::kNodeUnknown:
      return "NodeUnknown";
    case Reason::kNoGpu:
      return "NoGPU";
    case Reason::kTooFewGpus:
      return "TooFewGPUs";
    case Reason::kUnhealthy:
      return "GPUUnhealthy";
    case Reason::kModeMismatch:
      return "VGPUModeMismatch";
    case Reason::kTypeNotIncluded:
      return "GPUTypeNotIncluded";
    case Reason::kTypeExcluded:
      return "GPUTypeExcluded";
    case Reason::kUuidNotIncluded:
      return "GPUUUIDNotIncluded";
    case Reason::kUuidExcluded:
      return "GPUUUIDExcluded";
    case Reason::kCardExclusive:
      return "CardExclusive";
    case Reason::kCardInUse:
      return "CardInUse";
    case Reason::kNoFreeSlot:
      return "NoFreeSlot";
    case Reason::kInsufficientMemory:
      return "InsufficientGPUMemory";
    case Reason::kInsufficientCores:
      return "InsufficientGPUCores";
    case Reason::kNuma:
      return "NUMA";
    case Reason::kQuota:
      return "QuotaExceeded";
  }
  return "Unknown";
}

const char* ReasonText(Reason r) {
  switch (r) {
    case Reason::kFits:
      return "fits";
    case Reason::kNodeUnknown:
      return "node not registered (no GPU annotation)";
    case Reason::kNoGpu:
      return "no GPU on node";
    case Reason::kTooFewGpus:
      return "fewer GPUs than requested";
    case Reason::kUnhealthy:
      return "GPU unhealthy";
    case Reason::kModeMismatch:
      return "no GPU in requested vgpu-mode";
    case Reason::kTypeNotIncluded:
      return "no GPU of requested type";
    case Reason::kTypeExcluded:
      return "GPU type excluded";
    case Reason::kUuidNotIncluded:
      return "no GPU with requested UUID";
    case Reason::kUuidExcluded:
      return "GPU UUID excluded";
    case Reason::kCardExclusive:
      return "GPU used exclusively";
    case Reason::kCardInUse:
      return "no empty GPU for exclusive use";
    case Reason::kNoFreeSlot:
      return "no free GPU slot";
    case Reason::kInsufficientMemory:
      return "insufficient GPU memory";
    case Reason::kInsufficientCores:
      return "insufficient GPU cores";
    case Reason::kNuma:
      return "not enough GPUs on one NUMA node";
    case Reason::kQuota:
      return "GPU quota exceeded";
  }
  return "unknown";
}

std::string DescribeReason(Reason r, const PodOptions& o) {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? " or " : "") + v[i];
    return out;
  };
  switch (r) {
    case Reason::kTypeNotIncluded:
      return "no GPU of type " + join(o.use_types);
    case Reason::kTypeExcluded:
      return "only GPUs of excluded type " + join(o.nouse_types);
    case Reason::kModeMismatch:
      return std::string("no GPU in vgpu-mode ") + (o.mode ? VgpuModeName(*o.mode) : "?");
    default:
      return ReasonText(r);
  }
}

namespace {

using internal::GpuSlot;
using internal::NodeEntry;

struct Added {
  int64_t mem = 0, cores = 0, slots = 0;
  // Best-fit mode (PodCtx::best_fit): sum of FitKey over the GPUs chosen, and their number.
  double leftover = 0;
  int64_t gpus = 0;
};

// Weights normalised once per call: utilisation = ws*slots + wc*cores + wm*memory.
struct Norm {
  double slot, core, memory;
  explicit Norm(const ScoringWeights& w) {
    double sum = w.slot + w.core + w.memory;
    slot = w.slot / sum;
    core = w.core / sum;
    memory = w.memory / sum;
  }
};

// What one evaluation of a pod against nodes needs, prepared once per call.
struct PodCtx {
  explicit PodCtx(const ResolvedPod& p) : pod(&p), norm(p.weights) {}
  const ResolvedPod* pod;
  Norm norm;
  std::vector<std::string> use_types;    // lower case
  std::vector<std::string> nouse_types;  // lower case
  bool has_static_filters = false;
  bool needs_gpu = false;
  int max_count = 0;
  // Fast path: exactly one container uses GPUs, no NUMA binding; memory in MiB, or a
  // percentage on nodes whose GPUs all have the same memory.
  const ResolvedContainer* single = nullptr;
  // Binpack at both levels: the node score is how tightly the pod's GPUs fit (FitKey), the
  // utilisation only breaks near-ties (docs/scheduling.md, "Score, choice of node and GPUs").
  bool best_fit = false;
};

// Scratch buffers reused across the nodes of one call (no allocation per node).
struct Scratch {
  std::vector<GpuUsage> app;       // node usage + app containers placed so far
  std::vector<GpuUsage> init_max;  // per GPU, max over init containers
  std::vector<Reason> static_reason;
  std::vector<int> fitting;
  std::vector<double> pref;
  std::vector<int> chosen;                   // per container, `count` GPU positions, concatenated
  double leftover = 0;                       // best-fit mode: sum of FitKey over `chosen`
  std::vector<std::pair<double, int>> best;  // fast path, best-fit mode: (FitKey, GPU index)
  void Reserve(size_t gpus) {
    if (app.size() < gpus) {
      app.resize(gpus);
      init_max.resize(gpus);
      static_reason.resize(gpus);
      pref.resize(gpus);
    }
    fitting.reserve(gpus);
  }
};

PodCtx MakeCtx(const ResolvedPod& pod) {
  PodCtx c(pod);
  for (const auto& t : pod.options.use_types) c.use_types.push_back(Lower(t));
  for (const auto& t : pod.options.nouse_types) c.nouse_types.push_back(Lower(t));
  c.has_static_filters = !c.use_types.empty() || !c.nouse_types.empty() ||
                         !pod.options.use_uuids.empty() || !pod.options.nouse_uuids.empty() ||
                         pod.options.mode.has_value();
  int users = 0;
  const ResolvedContainer* last = nullptr;
  for (const auto* list : {&pod.init_containers, &pod.containers})
    for (const auto& r : *list)
      if (r.count > 0) {
        ++users;
        last = &r;
        c.max_count = std::max(c.max_count, r.count);
      }
  c.needs_gpu = users > 0;
  c.best_fit = pod.node_policy == NodePolicy::kBinpack && pod.gpu_policy == GpuPolicy::kBinpack;
  if (users == 1 && !pod.options.numa_bind) c.single = last;
  return c;
}

Reason StaticCheck(const NodeEntry& n, size_t i, const PodCtx& ctx) {
  const GpuSlot& g = n.gpus[i];
  const Reason health = g.healthy ? Reason::kFits : Reason::kUnhealthy;
  if (!ctx.has_static_filters) return health;
  const PodOptions& o = ctx.pod->options;
  if (o.mode && *o.mode != g.mode) return Reason::kModeMismatch;
  if (!ctx.use_types.empty()) {
    bool any = false;
    for (const auto& t : ctx.use_types)
      if (n.types_lower[i].find(t) != std::string::npos) any = true;
    if (!any) return Reason::kTypeNotIncluded;
  }
  for (const auto& t : ctx.nouse_types)
    if (n.types_lower[i].find(t) != std::string::npos) return Reason::kTypeExcluded;
  if (!o.use_uuids.empty() &&
      std::find(o.use_uuids.begin(), o.use_uuids.end(), n.info.gpus[i].uuid) == o.use_uuids.end())
    return Reason::kUuidNotIncluded;
  if (std::find(o.nouse_uuids.begin(), o.nouse_uuids.end(), n.info.gpus[i].uuid) !=
      o.nouse_uuids.end())
    return Reason::kUuidExcluded;
  return health;
}

inline int64_t NeedMem(const GpuSlot& g, const ResolvedContainer& r) {
  return r.memory_mib > 0 ? r.memory_mib : g.memory_mib * r.memory_percent / 100;
}

inline Reason DynamicCheck(const GpuSlot& g, const GpuUsage& u, const ResolvedContainer& r) {
  if (u.exclusive > 0) return Reason::kCardExclusive;
  if (r.exclusive() && u.used_slices > 0) return Reason::kCardInUse;
  if (u.used_slices >= g.split_count) return Reason::kNoFreeSlot;
  if (u.used_mem_mib + NeedMem(g, r) > g.memory_mib) return Reason::kInsufficientMemory;
  if (r.cores > 0 ? u.used_cores + r.cores > g.cores : u.used_cores >= g.cores)
    return Reason::kInsufficientCores;
  return Reason::kFits;
}

inline double Utilisation(const Norm& w, double slots, double cores, double mem) {
  double u = w.slot * slots + w.core * cores + w.memory * mem;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}

// How badly `r` fits a GPU it fits on (0 = perfectly, lower is better): what the card has
// left afterwards, memory first. With lm, lc the free memory and cores after the pod as
// fractions of the card: key = lm + 0.1 max(lm, lc). Leftover memory counts fully; leftover
// cores count a tenth, and only where they exceed the leftover memory, so among equal memory
// fits the card left with cores for the memory it still has is preferred over one that keeps
// cores no slice could use. (Equivalently lm + 0.1 lc + 0.1 max(0, lm - lc): memory left
// without cores to serve it is penalised.) An exclusive slice leaves only the memory it does
// not use.
inline constexpr double kFitCoreWeight = 0.1;
inline constexpr double kFitKeyMax = 1.0 + kFitCoreWeight;
inline double FitKey(const GpuSlot& g, const GpuUsage& u, const ResolvedContainer& r) {
  double lm = static_cast<double>(g.memory_mib - u.used_mem_mib - NeedMem(g, r)) * g.inv_mem;
  if (lm < 0) lm = 0;
  if (r.exclusive()) return lm;
  double lc = static_cast<double>(g.cores - u.used_cores - r.cores) * g.inv_cores;
  return lm + kFitCoreWeight * (lc > lm ? lc : lm);
}

// GPU preference (higher first) after placing `r` on it: binpack takes the best fit
// (-FitKey), spread the least utilised card.
inline double GpuPref(const GpuSlot& g, const GpuUsage& u, const ResolvedContainer& r,
                      const PodCtx& ctx) {
  if (ctx.pod->gpu_policy == GpuPolicy::kBinpack) return -FitKey(g, u, r);
  double util = Utilisation(ctx.norm, (u.used_slices + 1) * static_cast<double>(g.inv_split),
                            (u.used_cores + r.cores) * static_cast<double>(g.inv_cores),
                            static_cast<double>(u.used_mem_mib + NeedMem(g, r)) * g.inv_mem);
  return 1.0 - util;
}

// Share of the utilisation in the best-fit node score: the fit decides unless two nodes fit
// within about a thousandth of a card of each other.
inline constexpr double kFitTieWeight = 1e-3;

int64_t NodeScore(const NodeEntry& n, const Added& a, const PodCtx& ctx) {
  // A node without capacity in a dimension counts as full there (it has no GPU; unused).
  auto frac = [](int64_t used, int64_t total, double inv) {
    return total > 0 ? static_cast<double>(used) * inv : 1.0;
  };
  double util =
      Utilisation(ctx.norm, frac(n.used_slots + a.slots, n.total_slots, n.inv_total_slots),
                  frac(n.used_cores + a.cores, n.total_cores, n.inv_total_cores),
                  frac(n.used_mem + a.mem, n.total_mem, n.inv_total_mem));
  double s = ctx.pod->node_policy == NodePolicy::kBinpack ? util : 1.0 - util;
  if (ctx.best_fit && a.gpus > 0) {
    // Best fit first (1 = every chosen GPU left exactly full), utilisation breaks near-ties.
    double fit = 1.0 - a.leftover / (kFitKeyMax * static_cast<double>(a.gpus));
    fit = fit < 0 ? 0 : fit > 1 ? 1 : fit;
    s = (1.0 - kFitTieWeight) * fit + kFitTieWeight * util;
  }
  return static_cast<int64_t>(s * kScoreMax + 0.5);
}

// Places one container on the scratch usage `base`; appends the chosen GPU positions to
// s.chosen. Returns kFits or why not.
Reason PlaceContainer(const NodeEntry& n, const std::vector<GpuUsage>& base,
                      const ResolvedContainer& r, const PodCtx& ctx, Scratch& s) {
  const size_t ng = n.gpus.size();
  if (static_cast<size_t>(r.count) > ng) return Reason::kTooFewGpus;
  s.fitting.clear();
  Reason worst = Reason::kFits;
  for (size_t i = 0; i < ng; ++i) {
    Reason why = s.static_reason[i];
    if (why == Reason::kFits) why = DynamicCheck(n.gpus[i], base[i], r);
    if (why != Reason::kFits) {
      worst = std::max(worst, why);
      continue;
    }
    s.fitting.push_back(static_cast<int>(i));
    s.pref[i] = GpuPref(n.gpus[i], base[i], r, ctx);
  }
  if (s.fitting.size() < static_cast<size_t>(r.count)) return worst;
  auto better = [&](int a, int b) {
    if (s.pref[a] != s.pref[b]) return s.pref[a] > s.pref[b];
    return n.gpus[a].index != n.gpus[b].index ? n.gpus[a].index < n.gpus[b].index : a < b;
  };
  if (!ctx.pod->options.numa_bind) {
    // The `count` best by insertion into the front of `fitting` (count and GPUs are few).
    // Beyond position k, a GPU either is dropped or evicts the k-th.
    const size_t k = static_cast<size_t>(r.count);
    for (size_t i = 1; i < s.fitting.size(); ++i) {
      int v = s.fitting[i];
      size_t j = std::min(i, k);
      if (j == k) {
        if (!better(v, s.fitting[k - 1])) continue;
        --j;
      }
      while (j > 0 && better(v, s.fitting[j - 1])) {
        s.fitting[j] = s.fitting[j - 1];
        --j;
      }
      s.fitting[j] = v;
    }
    s.chosen.insert(s.chosen.end(), s.fitting.begin(), s.fitting.begin() + r.count);
    if (ctx.best_fit)
      for (size_t j = 0; j < k; ++j) s.leftover -= s.pref[s.fitting[j]];
    return Reason::kFits;
  }
  std::sort(s.fitting.begin(), s.fitting.end(), better);
  // NUMA binding: the NUMA node whose best `count` GPUs have the highest preference sum.
  bool found = false;
  int best_numa = 0;
  double best_sum = 0;
  for (int i : s.fitting) {
    int numa = n.gpus[i].numa;
    int taken = 0;
    double sum = 0;
    for (int j : s.fitting) {
      if (n.gpus[j].numa != numa) continue;
      sum += s.pref[j];
      if (++taken == r.count) break;
    }
    if (taken < r.count) continue;
    if (!found || sum > best_sum || (sum == best_sum && numa < best_numa)) {
      found = true;
      best_numa = numa;
      best_sum = sum;
    }
  }
  if (!found) return Reason::kNuma;
  int taken = 0;
  for (int j : s.fitting) {
    if (n.gpus[j].numa != best_numa) continue;
    s.chosen.push_back(j);
    if (ctx.best_fit) s.leftover -= s.pref[j];
    if (++taken == r.count) break;
  }
  return Reason::kFits;
}

inline void AddUsage(GpuUsage& u, const GpuSlot& g, const ResolvedContainer& r) {
  u.used_mem_mib += NeedMem(g, r);
  u.used_cores += r.cores;
  u.used_slices += 1;
  u.exclusive += r.exclusive() ? 1 : 0;
}

// The general path: the whole pod on node `n`. On success s.chosen holds every container's
// GPUs (init first) and *added the pod's usage of the node.
Reason PlacePod(const NodeEntry& n, const PodCtx& ctx, Scratch& s, Added* added) {
  const size_t ng = n.gpus.size();
  s.Reserve(ng);
  s.chosen.clear();
  s.leftover = 0;
  bool any_static_ok = false;
  Reason worst_static = Reason::kFits;
  for (size_t i = 0; i < ng; ++i) {
    s.static_reason[i] = ctx.has_static_filters ? StaticCheck(n, i, ctx)
                         : n.gpus[i].healthy    ? Reason::kFits
                                                : Reason::kUnhealthy;
    if (s.static_reason[i] == Reason::kFits) {
      any_static_ok = true;
    } else {
      worst_static = std::max(worst_static, s.static_reason[i]);
    }
    s.app[i] = n.gpus[i].usage;
    s.init_max[i] = GpuUsage{};
  }
  if (ng == 0) return Reason::kNoGpu;
  if (static_cast<size_t>(ctx.max_count) > ng) return Reason::kTooFewGpus;
  if (!any_static_ok) return worst_static;
  const ResolvedPod& pod = *ctx.pod;
  for (const ResolvedContainer& r : pod.init_containers) {
    if (r.count == 0) continue;
    size_t from = s.chosen.size();
    // Init containers see the node as it is: s.app holds no app container yet.
    Reason why = PlaceContainer(n, s.app, r, ctx, s);
    if (why != Reason::kFits) return why;
    for (size_t k = from; k < s.chosen.size(); ++k) {
      int i = s.chosen[k];
      GpuUsage one{};
      AddUsage(one, n.gpus[i], r);
      GpuUsage& m = s.init_max[i];
      m.used_mem_mib = std::max(m.used_mem_mib, one.used_mem_mib);
      m.used_cores = std::max(m.used_cores, one.used_cores);
      m.used_slices = std::max(m.used_slices, one.used_slices);
      m.exclusive = std::max(m.exclusive, one.exclusive);
    }
  }
  for (const ResolvedContainer& r : pod.containers) {
    if (r.count == 0) continue;
    size_t from = s.chosen.size();
    Reason why = PlaceContainer(n, s.app, r, ctx, s);
    if (why != Reason::kFits) return why;
    for (size_t k = from; k < s.chosen.size(); ++k)
      AddUsage(s.app[s.chosen[k]], n.gpus[s.chosen[k]], r);
  }
  Added a;
  for (size_t i = 0; i < ng; ++i) {
    const GpuUsage& base = n.gpus[i].usage;
    a.mem += std::max(s.app[i].used_mem_mib - base.used_mem_mib, s.init_max[i].used_mem_mib);
    a.cores += std::max<int64_t>(s.app[i].used_cores - base.used_cores, s.init_max[i].used_cores);
    a.slots +=
        std::max<int64_t>(s.app[i].used_slices - base.used_slices, s.init_max[i].used_slices);
  }
  a.leftover = s.leftover;
  a.gpus = static_cast<int64_t>(s.chosen.size());
  *added = a;
  return Reason::kFits;
}

// Fast path for PodCtx::single: counts fitting GPUs only, using node aggregates first (in
// best-fit mode it also keeps the `count` best fit keys for the node score).
Reason FitSingle(const NodeEntry& n, const PodCtx& ctx, Scratch& s, Added* added) {
  const ResolvedContainer& r = *ctx.single;
  const size_t ng = n.gpus.size();
  if (ng == 0) return Reason::kNoGpu;
  if (static_cast<size_t>(r.count) > ng) return Reason::kTooFewGpus;
  // Percentages are the same MiB on every GPU of a uniform node (EvaluateNode checks).
  const int64_t need =
      r.memory_mib > 0 ? r.memory_mib : n.uniform_memory_mib * r.memory_percent / 100;
  added->mem = need * r.count;
  added->cores = static_cast<int64_t>(r.cores) * r.count;
  added->slots = r.count;
  if (!ctx.has_static_filters && !r.exclusive() && n.available_gpus > 0) {
    // Every available GPU reaches the memory check, every other one fails earlier.
    if (n.max_free_mem < need) return Reason::kInsufficientMemory;
    if (r.cores > 0 ? n.max_free_cores < r.cores : n.max_free_cores <= 0)
      return Reason::kInsufficientCores;
  }
  int fit = 0;
  Reason worst = Reason::kFits;
  if (ctx.best_fit) {
    // The `count` best fits, as PlaceContainer chooses them: (key, GPU index) ascending, equal
    // pairs in scan order, kept sorted by insertion; the sum runs in the same order, so both
    // paths give the same score.
    const size_t k = static_cast<size_t>(r.count);
    s.best.clear();
    for (size_t i = 0; i < ng; ++i) {
      const auto& g = n.gpus[i];
      Reason why = StaticCheck(n, i, ctx);
      if (why == Reason::kFits) why = DynamicCheck(g, g.usage, r);
      if (why != Reason::kFits) {
        worst = std::max(worst, why);
        continue;
      }
      ++fit;
      std::pair<double, int> v{FitKey(g, g.usage, r), g.index};
      if (s.best.size() == k) {
        if (!(v < s.best.back())) continue;
        s.best.pop_back();
      }
      s.best.insert(std::upper_bound(s.best.begin(), s.best.end(), v), v);
    }
    if (fit < r.count) return worst;
    double sum = 0;
    for (const auto& b : s.best) sum += b.first;
    added->leftover = sum;
    added->gpus = r.count;
    return Reason::kFits;
  }
  for (size_t i = 0; i < ng; ++i) {
    const auto& g = n.gpus[i];
    Reason why = StaticCheck(n, i, ctx);
    if (why == Reason::kFits) why = DynamicCheck(g, g.usage, r);
    if (why == Reason::kFits) {
      if (++fit == r.count) return Reason::kFits;
    } else {
      worst = std::max(worst, why);
    }
  }
  return worst;
}

Reason EvaluateNode(const NodeEntry& n, const PodCtx& ctx, Scratch& s, Added* added) {
  if (ctx.single != nullptr && (ctx.single->memory_mib > 0 || n.uniform_memory_mib > 0))
    return FitSingle(n, ctx, s, added);
  return PlacePod(n, ctx, s, added);
}

void FinishSummary(FilterSummary& sum, const ResolvedPod& pod) {
  sum.message = std::to_string(sum.fitting) + "/" + std::to_string(sum.total) + " nodes fit";
  std::vector<int> order;
  for (int i = 1; i < kReasonCount; ++i)
    if (sum.counts[i] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return sum.counts[a] > sum.counts[b]; });
  for (size_t k = 0; k < order.size(); ++k) {
    sum.message += k == 0 ? ": " : ", ";
    sum.message += std::to_string(sum.counts[order[k]]) + " " +
                   DescribeReason(static_cast<Reason>(order[k]), pod.options);
  }
}

PodPlacement BuildPlacement(const NodeEntry& n, const ResolvedPod& pod, const Scratch& s) {
  PodPlacement p;
  p.num_init = static_cast<int32_t>(pod.init_containers.size());
  p.containers.reserve(pod.init_containers.size() + pod.containers.size());
  size_t k = 0;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const ResolvedContainer& r : *list) {
      ContainerDevices devs;
      for (int c = 0; c < r.count; ++c) {
        int i = s.chosen[k++];
        devs.push_back(
            DeviceAlloc{n.info.gpus[i].uuid, n.info.gpus[i].type, NeedMem(n.gpus[i], r), r.cores});
      }
      p.containers.push_back(std::move(devs));
    }
  }
  return p;
}

// Iterates the candidates (or every live node) calling fn(name, entry-or-null).
template <typename Lookup, typename Fn>
void ForEachCandidate(const std::vector<NodeEntry>& nodes,
                      std::optional<std::span<const std::string>> candidates, Lookup lookup,
                      Fn fn) {
  if (candidates) {
    for (const std::string& name : *candidates) fn(std::string_view(name), lookup(name));
  } else {
    for (const NodeEntry& n : nodes)
      if (n.live) fn(std::string_view(n.info.name), &n);
  }
}

}  // namespace

Engine::Engine(SchedulerConfig config) : config_(std::move(config)) {}

FilterResult Engine::FilterResolved(const ClusterState& state, const ResolvedPod& pod,
                                    std::optional<std::span<const std::string>> candidates) const {
  FilterResult out;
  PodCtx ctx = MakeCtx(pod);
  Scratch s;
  out.nodes.reserve(candidates ? candidates->size() : state.node_count());
  ForEachCandidate(
      state.nodes_, candidates, [&](std::string_view nm) { return state.Entry(nm); },
      [&](std::string_view name, const NodeEntry* n) {
        NodeVerdict v;
        v.node = name;
        if (!ctx.needs_gpu) {
          v.reason = Reason::kFits;
        } else if (n == nullptr) {
          v.reason = Reason::kNodeUnknown;
        } else {
          Added a;
          v.reason = EvaluateNode(*n, ctx, s, &a);
          if (v.fits()) {
            v.score = NodeScore(*n, a, ctx);
            v.extender_score = static_cast<int32_t>((v.score * 10 + kScoreMax / 2) / kScoreMax);
          }
        }
        ++out.summary.total;
        if (v.fits()) {
          ++out.summary.fitting;
        } else {
          ++out.summary.counts[static_cast<int>(v.reason)];
        }
        out.nodes.push_back(v);
      });
  FinishSummary(out.summary, pod);
  return out;
}

Decision Engine::ScheduleResolved(const ClusterState& state, const ResolvedPod& pod,
                                  std::optional<std::span<const std::string>> candidates) const {
  Decision d;
  PodCtx ctx = MakeCtx(pod);
  Scratch s;
  const NodeEntry* best = nullptr;
  std::string_view best_name;
  int64_t best_score = -1;
  ForEachCandidate(
      state.nodes_, candidates, [&](std::string_view nm) { return state.Entry(nm); },
      [&](std::string_view name, const NodeEntry* n) {
        ++d.summary.total;
        Reason why;
        int64_t score = 0;
        if (!ctx.needs_gpu) {
          why = Reason::kFits;
        } else if (n == nullptr) {
          why = Reason::kNodeUnknown;
        } else {
          Added a;
          why = EvaluateNode(*n, ctx, s, &a);
          if (why == Reason::kFits) score = NodeScore(*n, a, ctx);
        }
        if (why != Reason::kFits) {
          ++d.summary.counts[static_cast<int>(why)];
          return;
        }
        ++d.summary.fitting;
        if (score > best_score || (score == best_score && name < best_name)) {
          best = n;
          best_name = name;
          best_score = score;
        }
      });
  FinishSummary(d.summary, pod);
  if (best_score < 0) return d;
  d.scheduled = true;
  d.node = std::string(best_name);
  d.score = best_score;
  d.extender_score = static_cast<int32_t>((best_score * 10 + kScoreMax / 2) / kScoreMax);
  if (!ctx.needs_gpu) {
    d.placement.num_init = static_cast<int32_t>(pod.init_containers.size());
    d.placement.containers.resize(pod.init_containers.size() + pod.containers.size());
    return d;
  }
  Added a;
  Reason why = PlacePod(*best, ctx, s, &a);
  if (why != Reason::kFits) {  // cannot happen: the fast path agrees with the general one
    d.scheduled = false;
    d.summary.message = "internal: node " + d.node + " fit but could not be placed";
    return d;
  }
  d.placement = BuildPlacement(*best, pod, s);
  return d;
}

StatusOr<FilterResult> Engine::Filter(const ClusterState& state, const PodRequest& pod) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  return FilterResolved(state, *r, std::nullopt);
}

StatusOr<FilterResult> Engine::Filter(const ClusterState& state, const PodRequest& pod,
                                      std::span<const std::string> candidates) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  return FilterResolved(state, *r, candidates);
}

StatusOr<Decision> Engine::Schedule(const ClusterState& state, const PodRequest& pod) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  return ScheduleResolved(state, *r, std::nullopt);
}

StatusOr<Decision> Engine::Schedule(const ClusterState& state, const PodRequest& pod,
                                    std::span<const std::string> candidates) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  return ScheduleResolved(state, *r, candidates);
}

StatusOr<FilterResult> Engine::FilterWithPlacements(const ClusterState& state,
                                                    const PodRequest& pod,
                                                    std::span<const std::string> candidates) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  FilterResult out = FilterResolved(state, *r, candidates);
  PodCtx ctx = MakeCtx(*r);
  Scratch s;
  out.placements.resize(out.nodes.size());
  for (size_t i = 0; i < out.nodes.size(); ++i) {
    if (!out.nodes[i].fits()) continue;
    if (!ctx.needs_gpu) {
      PodPlacement p;
      p.num_init = static_cast<int32_t>(r->init_containers.size());
      p.containers.resize(r->init_containers.size() + r->containers.size());
      out.placements[i] = std::move(p);
      continue;
    }
    const NodeEntry* n = state.Entry(out.nodes[i].node);
    Added a;
    if (n != nullptr && PlacePod(*n, ctx, s, &a) == Reason::kFits)
      out.placements[i] = BuildPlacement(*n, *r, s);
  }
  return out;
}

StatusOr<PodPlacement> Engine::Place(const ClusterState& state, const PodRequest& pod,
                                     std::string_view node) const {
  auto r = Resolve(pod, config_);
  if (!r.ok()) return r.status();
  const NodeEntry* n = state.Entry(node);
  if (n == nullptr) return NotFound("node " + std::string(node) + " unknown");
  PodCtx ctx = MakeCtx(*r);
  Scratch s;
  if (!ctx.needs_gpu) {
    PodPlacement p;
    p.num_init = static_cast<int32_t>(r->init_containers.size());
    p.containers.resize(r->init_containers.size() + r->containers.size());
    return p;
  }
  Added a;
  Reason why = PlacePod(*n, ctx, s, &a);
  if (why != Reason::kFits)
    return ResourceExhausted("node " + std::string(node) + ": " + DescribeReason(why, r->options) +
                             " (" + ReasonName(why) + ")");
  return BuildPlacement(*n, *r, s);
}

}  // namespace hami::sched
