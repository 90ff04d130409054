// Scoring (the engine's "score" step, after every filter rule passed): which GPUs a container
// prefers and how a node ranks for the pod. See docs/scheduling.md, "Score, choice of node and
// GPUs". Inline: evaluated per GPU and per node on the decision's hot path.
#pragma once

#include <cstdint>

#include "sched/engine.h"
#include "sched/rules/memory.h"

namespace hami::sched::rules {

inline constexpr int64_t kScoreMax = 1'000'000;

// Weights normalised once per call: utilisation = ws*slots + wc*cores + wm*memory.
struct Norm {
  double slot, core, memory;
  explicit Norm(const ScoringWeights& w) {
    // In double: HAMi allows weights up to 2^31-1 each.
    double sum = double(w.slot) + double(w.core) + double(w.memory);
    slot = double(w.slot) / sum;
    core = double(w.core) / sum;
    memory = double(w.memory) / sum;
  }
};

// What a pod adds to a node.
struct Added {
  int64_t mem = 0, cores = 0, slots = 0;
  // Best-fit mode (binpack at both levels): sum of FitKey over the GPUs chosen, and their
  // number.
  double leftover = 0;
  int64_t gpus = 0;
};

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
inline double FitKey(const internal::GpuSlot& g, const GpuUsage& u, const ResolvedContainer& r) {
  double lm = static_cast<double>(g.memory_mib - u.used_mem_mib - NeedMem(g, r)) * g.inv_mem;
  if (lm < 0) lm = 0;
  if (r.exclusive()) return lm;
  double lc = static_cast<double>(g.cores - u.used_cores - r.cores) * g.inv_cores;
  return lm + kFitCoreWeight * (lc > lm ? lc : lm);
}

// GPU preference (higher first) after placing `r` on it: binpack takes the best fit
// (-FitKey), spread the least utilised card.
inline double GpuPref(const internal::GpuSlot& g, const GpuUsage& u, const ResolvedContainer& r,
                      GpuPolicy policy, const Norm& norm) {
  if (policy == GpuPolicy::kBinpack) return -FitKey(g, u, r);
  double util = Utilisation(norm, (u.used_slices + 1) * static_cast<double>(g.inv_split),
                            (u.used_cores + r.cores) * static_cast<double>(g.inv_cores),
                            static_cast<double>(u.used_mem_mib + NeedMem(g, r)) * g.inv_mem);
  return 1.0 - util;
}

// Share of the utilisation in the best-fit node score: the fit decides unless two nodes fit
// within about a thousandth of a card of each other.
inline constexpr double kFitTieWeight = 1e-3;

// The node's score 0..kScoreMax for the pod (higher is better): the weighted utilisation after
// the pod (binpack) or its complement (spread); with `best_fit` (binpack at both levels) how
// tightly the chosen GPUs fit, the utilisation breaking near-ties.
inline int64_t NodeScore(const internal::NodeEntry& n, const Added& a, const Norm& norm,
                         NodePolicy policy, bool best_fit) {
  // A node without capacity in a dimension counts as full there (it has no GPU; unused).
  auto frac = [](int64_t used, int64_t total, double inv) {
    return total > 0 ? static_cast<double>(used) * inv : 1.0;
  };
  double util = Utilisation(norm, frac(n.used_slots + a.slots, n.total_slots, n.inv_total_slots),
                            frac(n.used_cores + a.cores, n.total_cores, n.inv_total_cores),
                            frac(n.used_mem + a.mem, n.total_mem, n.inv_total_mem));
  double s = policy == NodePolicy::kBinpack ? util : 1.0 - util;
  if (best_fit && a.gpus > 0) {
    // Best fit first (1 = every chosen GPU left exactly full), utilisation breaks near-ties.
    double fit = 1.0 - a.leftover / (kFitKeyMax * static_cast<double>(a.gpus));
    fit = fit < 0 ? 0 : fit > 1 ? 1 : fit;
    s = (1.0 - kFitTieWeight) * fit + kFitTieWeight * util;
  }
  return static_cast<int64_t>(s * kScoreMax + 0.5);
}

// kube-scheduler's extender scale 0..10.
inline int32_t ExtenderScore(int64_t score) {
  return static_cast<int32_t>((score * 10 + kScoreMax / 2) / kScoreMax);
}

}  // namespace hami::sched::rules
