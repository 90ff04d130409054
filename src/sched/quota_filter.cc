#include "sched/quota_filter.h"

#include <algorithm>
#include <vector>

namespace hami::sched {
namespace {

bool Limited(const QuotaScope& q) { return q.book != nullptr && q.book->Limited(q.owner); }

// The memory of every card of `node` when they are all equal, else 0.
int64_t UniformMemory(const ClusterState& state, std::string_view node) {
  const NodeInfo* n = state.FindNode(node);
  if (n == nullptr || n->gpus.empty()) return 0;
  int64_t mem = n->gpus.front().memory_mib;
  for (const GpuInfo& g : n->gpus)
    if (g.memory_mib != mem) return 0;
  return mem;
}

// What the pod would hold on `node`: from the request when the node's cards all have the same
// memory `uniform_mem` (the percentage converts the same on each), else from the placement the
// engine would choose there. nullopt when it cannot be placed (the engine said it fits, so this
// is a bug).
std::optional<QuotaAmount> AskOnNode(const Engine& engine, const ClusterState& state,
                                     const PodRequest& pod, const ResolvedPod& resolved,
                                     std::string_view node, int64_t uniform_mem) {
  if (uniform_mem > 0) return RequestQuotaUsage(resolved, uniform_mem);
  auto placement = engine.Place(state, pod, node);
  if (!placement.ok()) return std::nullopt;
  return PlacementQuotaUsage(*placement);
}

// kube-scheduler's form, reasons by count then enum order; kQuota with its named reason.
void Summarise(FilterSummary& sum, const PodOptions& options, const std::string& quota_reason) {
  sum.message = std::to_string(sum.fitting) + "/" + std::to_string(sum.total) + " nodes fit";
  std::vector<int> order;
  for (int i = 1; i < kReasonCount; ++i)
    if (sum.counts[i] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return sum.counts[a] > sum.counts[b]; });
  for (size_t k = 0; k < order.size(); ++k) {
    auto r = static_cast<Reason>(order[k]);
    sum.message += k == 0 ? ": " : ", ";
    sum.message += std::to_string(sum.counts[order[k]]) + " " +
                   (r == Reason::kQuota ? quota_reason : DescribeReason(r, options));
  }
}

// Every candidate refused for the quota (the pod's ask does not depend on the node).
FilterResult AllRefused(const ClusterState& state,
                        std::optional<std::span<const std::string>> candidates,
                        const PodOptions& options, const std::string& reason) {
  FilterResult out;
  auto refuse = [&](std::string_view name) {
    NodeVerdict v;
    v.node = name;
    v.reason = Reason::kQuota;
    out.nodes.push_back(v);
  };
  if (candidates) {
    for (const std::string& name : *candidates) refuse(name);
  } else {
    for (const std::string& name : state.NodeNames()) refuse(state.FindNode(name)->name);
  }
  out.summary.total = static_cast<int32_t>(out.nodes.size());
  out.summary.counts[static_cast<int>(Reason::kQuota)] = out.summary.total;
  Summarise(out.summary, options, reason);
  return out;
}

// A decision refused on every node for the quota: only the summary, no per-node verdicts.
Decision RefusedEverywhere(const ClusterState& state,
                           std::optional<std::span<const std::string>> candidates,
                           const PodOptions& options, const std::string& reason) {
  Decision d;
  d.summary.total = static_cast<int32_t>(candidates ? candidates->size() : state.node_count());
  d.summary.counts[static_cast<int>(Reason::kQuota)] = d.summary.total;
  Summarise(d.summary, options, reason);
  return d;
}

}  // namespace

StatusOr<FilterResult> FilterUnderQuota(const Engine& engine, const ClusterState& state,
                                        const PodRequest& pod,
                                        std::optional<std::span<const std::string>> candidates,
                                        const QuotaScope& quota, std::string* quota_reason) {
  if (quota_reason != nullptr) quota_reason->clear();
  auto r = Resolve(pod, engine.config());
  if (!r.ok()) return r.status();
  if (!Limited(quota) || !r->UsesGpu()) return engine.FilterResolved(state, *r, candidates);
  if (!UsageDependsOnCard(*r)) {
    // The common case: one check for the whole call, nothing per node.
    Status st = quota.book->Check(quota.owner, RequestQuotaUsage(*r, 0));
    if (st.ok()) return engine.FilterResolved(state, *r, candidates);
    if (quota_reason != nullptr) *quota_reason = st.message();
    return AllRefused(state, candidates, r->options, st.message());
  }
  FilterResult out = engine.FilterResolved(state, *r, candidates);
  // Per fitting node: limits and usage looked up once, the verdict of the last card size
  // reused (clusters have few card sizes), the message built once.
  const QuotaLimits limits = quota.book->Limits(quota.owner);
  const QuotaAmount used = quota.book->Used(quota.owner);
  std::string reason;
  int64_t last_mem = -1;
  bool last_ok = true;
  for (NodeVerdict& v : out.nodes) {
    if (!v.fits()) continue;
    bool ok;
    int64_t mem = UniformMemory(state, v.node);
    if (mem > 0 && mem == last_mem) {
      ok = last_ok;
    } else {
      auto ask = AskOnNode(engine, state, pod, *r, v.node, mem);
      if (!ask) continue;
      ok = WithinQuota(limits, used, *ask);
      if (!ok && reason.empty()) reason = quota.book->Check(quota.owner, *ask).message();
      if (mem > 0) last_mem = mem, last_ok = ok;
    }
    if (ok) continue;
    v.reason = Reason::kQuota;
    v.score = 0;
    v.extender_score = 0;
    --out.summary.fitting;
    ++out.summary.counts[static_cast<int>(Reason::kQuota)];
  }
  if (!reason.empty()) Summarise(out.summary, r->options, reason);
  if (quota_reason != nullptr) *quota_reason = reason;
  return out;
}

StatusOr<Decision> ScheduleUnderQuota(const Engine& engine, const ClusterState& state,
                                      const PodRequest& pod,
                                      std::optional<std::span<const std::string>> candidates,
                                      const QuotaScope& quota) {
  auto r = Resolve(pod, engine.config());
  if (!r.ok()) return r.status();
  if (!Limited(quota) || !r->UsesGpu()) return engine.ScheduleResolved(state, *r, candidates);
  if (!UsageDependsOnCard(*r)) {
    Status st = quota.book->Check(quota.owner, RequestQuotaUsage(*r, 0));
    if (st.ok()) return engine.ScheduleResolved(state, *r, candidates);
    return RefusedEverywhere(state, candidates, r->options, st.message());
  }
  // What the pod holds depends on the cards, but never less than on a card of no memory: when
  // that is over the quota (cores, cards, fixed MiB), so is every node.
  if (Status st = quota.book->Check(quota.owner, RequestQuotaUsage(*r, 0)); !st.ok()) {
    return RefusedEverywhere(state, candidates, r->options, st.message());
  }
  // Most often the engine's best node is within the
  // quota: one check there. Otherwise the best node among those that are.
  Decision first = engine.ScheduleResolved(state, *r, candidates);
  if (!first.scheduled || quota.book->Check(quota.owner, PlacementQuotaUsage(first.placement)).ok())
    return first;
  auto f = FilterUnderQuota(engine, state, pod, candidates, quota);
  if (!f.ok()) return f.status();
  Decision d;
  d.summary = f->summary;
  const NodeVerdict* best = nullptr;
  for (const NodeVerdict& v : f->nodes) {
    if (!v.fits()) continue;
    if (best == nullptr || v.score > best->score ||
        (v.score == best->score && v.node < best->node)) {
      best = &v;
    }
  }
  if (best == nullptr) return d;
  auto placement = engine.Place(state, pod, best->node);
  if (!placement.ok()) {
    d.summary.message =
        "internal: node " + std::string(best->node) + " fit but could not be placed";
    return d;
  }
  d.scheduled = true;
  d.node = std::string(best->node);
  d.placement = std::move(*placement);
  d.score = best->score;
  d.extender_score = best->extender_score;
  return d;
}

Status CheckPlacementQuota(const QuotaScope& quota, const PodPlacement& placement) {
  if (!Limited(quota)) return Status::Ok();
  return quota.book->Check(quota.owner, PlacementQuotaUsage(placement));
}

}  // namespace hami::sched
