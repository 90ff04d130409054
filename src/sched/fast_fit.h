// The fast path for the common pod (PodCtx::single: one container with GPUs, no NUMA binding):
// counts fitting GPUs through the same rule chain, using node aggregates first, and chooses no
// GPU (the engine places the pod only on the node finally picked). Inline: it runs once per
// candidate node in the engine's loop. Internal to the engine.
#pragma once

#include <algorithm>
#include <utility>

#include "sched/place_pod.h"
#include "sched/rules/chain.h"
#include "sched/rules/gpu_count.h"

namespace hami::sched::internal {

// In best-fit mode it also keeps the `count` best fit keys for the node score.
inline Reason FitSingle(const NodeEntry& n, const PodCtx& ctx, Scratch& s, rules::Added* added) {
  const ResolvedContainer& r = *ctx.single;
  const size_t ng = n.gpus.size();
  if (Reason why = rules::CheckGpuCount(ng, r.count); why != Reason::kFits) return why;
  // Percentages are the same MiB on every GPU of a uniform node (EvaluateNode checks).
  const int64_t need =
      r.memory_mib > 0 ? r.memory_mib : n.uniform_memory_mib * r.memory_percent / 100;
  added->mem = need * r.count;
  added->cores = static_cast<int64_t>(r.cores) * r.count;
  added->slots = r.count;
  if (!ctx.has_static_filters && !r.exclusive() && n.available_gpus > 0) {
    // Every available GPU reaches the Memory rule, every other one fails earlier: the node's
    // best GPU decides the Memory and Cores rules for all of them.
    if (n.max_free_mem < need) return Reason::kInsufficientMemory;
    if (r.cores > 0 ? n.max_free_cores < r.cores : n.max_free_cores <= 0)
      return Reason::kInsufficientCores;
  }
  int fit = 0;
  Reason worst = Reason::kFits;
  if (ctx.best_fit) {
    // The `count` best fits, as PlacePod chooses them: (key, GPU index) ascending, equal
    // pairs in scan order, kept sorted by insertion; the sum runs in the same order, so both
    // paths give the same score.
    const size_t k = static_cast<size_t>(r.count);
    s.best.clear();
    for (size_t i = 0; i < ng; ++i) {
      const auto& g = n.gpus[i];
      Reason why = rules::SelectorCheck(n, i, ctx);
      if (why == Reason::kFits) why = rules::CapacityCheck(g, g.usage, r);
      if (why != Reason::kFits) {
        worst = std::max(worst, why);
        continue;
      }
      ++fit;
      std::pair<double, int> v{rules::FitKey(g, g.usage, r), g.index};
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
    Reason why = rules::SelectorCheck(n, i, ctx);
    if (why == Reason::kFits) why = rules::CapacityCheck(g, g.usage, r);
    if (why == Reason::kFits) {
      if (++fit == r.count) return Reason::kFits;
    } else {
      worst = std::max(worst, why);
    }
  }
  return worst;
}

// The pod on one node: the fast path where it applies, else the general one.
inline Reason EvaluateNode(const NodeEntry& n, const PodCtx& ctx, Scratch& s, rules::Added* added) {
  if (ctx.single != nullptr && (ctx.single->memory_mib > 0 || n.uniform_memory_mib > 0))
    return FitSingle(n, ctx, s, added);
  return PlacePod(n, ctx, s, added);
}

}  // namespace hami::sched::internal
