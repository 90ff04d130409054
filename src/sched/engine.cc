// Engine (engine.h): filter, score and schedule over a ClusterState.
//
// The engine is the loop over candidate nodes; the rules live in rules/ (one file per rule, each
// with its reasons and table tests; rules/chain.h orders them), scoring in rules/score.h, the
// placement of a pod's containers in place_pod.cc. The common pod (one container with GPUs,
// memory in MiB, no NUMA binding) takes a faster path (fast_fit.h) that only counts fitting
// GPUs; GPUs are chosen only on the node finally picked.
#include "sched/engine.h"

#include <algorithm>

#include "sched/fast_fit.h"
#include "sched/place_pod.h"
#include "sched/pod_context.h"
#include "sched/rules/score.h"

namespace hami::sched {
namespace {

using internal::EvaluateNode;
using internal::MakeCtx;
using internal::NodeEntry;
using internal::PlacePod;
using internal::PodCtx;
using internal::Scratch;
using rules::Added;

inline int64_t Score(const NodeEntry& n, const Added& a, const PodCtx& ctx) {
  return rules::NodeScore(n, a, ctx.norm, ctx.pod->node_policy, ctx.best_fit);
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
            v.score = Score(*n, a, ctx);
            v.extender_score = rules::ExtenderScore(v.score);
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
          if (why == Reason::kFits) score = Score(*n, a, ctx);
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
  d.extender_score = rules::ExtenderScore(best_score);
  if (!ctx.needs_gpu) {
    d.placement = internal::EmptyPlacement(pod);
    return d;
  }
  Added a;
  Reason why = PlacePod(*best, ctx, s, &a);
  if (why != Reason::kFits) {  // cannot happen: the fast path agrees with the general one
    d.scheduled = false;
    d.summary.message = "internal: node " + d.node + " fit but could not be placed";
    return d;
  }
  d.placement = internal::BuildPlacement(*best, pod, s);
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
      out.placements[i] = internal::EmptyPlacement(*r);
      continue;
    }
    const NodeEntry* n = state.Entry(out.nodes[i].node);
    Added a;
    if (n != nullptr && PlacePod(*n, ctx, s, &a) == Reason::kFits)
      out.placements[i] = internal::BuildPlacement(*n, *r, s);
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
  if (!ctx.needs_gpu) return internal::EmptyPlacement(*r);
  Added a;
  Reason why = PlacePod(*n, ctx, s, &a);
  if (why != Reason::kFits)
    return ResourceExhausted("node " + std::string(node) + ": " + DescribeReason(why, r->options) +
                             " (" + ReasonName(why) + ")");
  return internal::BuildPlacement(*n, *r, s);
}

}  // namespace hami::sched
