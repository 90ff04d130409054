// The general placement path (place_pod.h).
#include "sched/place_pod.h"

#include <algorithm>

#include "sched/rules/chain.h"
#include "sched/rules/gpu_count.h"
#include "sched/rules/numa.h"

namespace hami::sched::internal {
namespace {

// Places one container on the scratch usage `base`; appends the chosen GPU positions to
// s.chosen. Returns kFits or why not.
Reason PlaceContainer(const NodeEntry& n, const std::vector<GpuUsage>& base,
                      const ResolvedContainer& r, const PodCtx& ctx, Scratch& s) {
  const size_t ng = n.gpus.size();
  if (Reason why = rules::CheckGpuCount(ng, r.count); why != Reason::kFits) return why;
  s.fitting.clear();
  Reason worst = Reason::kFits;
  for (size_t i = 0; i < ng; ++i) {
    Reason why = s.static_reason[i];
    if (why == Reason::kFits) why = rules::CapacityCheck(n.gpus[i], base[i], r);
    if (why != Reason::kFits) {
      worst = std::max(worst, why);
      continue;
    }
    s.fitting.push_back(static_cast<int>(i));
    s.pref[i] = rules::GpuPref(n.gpus[i], base[i], r, ctx.pod->gpu_policy, ctx.norm);
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
  int best_numa = 0;
  if (Reason why = rules::ChooseNuma(n.gpus, s.fitting, s.pref, r.count, &best_numa);
      why != Reason::kFits)
    return why;
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
  u.used_mem_mib += rules::NeedMem(g, r);
  u.used_cores += r.cores;
  u.used_slices += 1;
  u.exclusive += r.exclusive() ? 1 : 0;
}

// Selector rules once per GPU into s.static_reason; s.app and s.init_max reset. Returns the
// node's reason when no GPU passes them (or the node fails GpuCount).
Reason PrepareNode(const NodeEntry& n, const PodCtx& ctx, Scratch& s) {
  const size_t ng = n.gpus.size();
  bool any_static_ok = false;
  Reason worst_static = Reason::kFits;
  for (size_t i = 0; i < ng; ++i) {
    s.static_reason[i] = rules::SelectorCheck(n, i, ctx);
    if (s.static_reason[i] == Reason::kFits) {
      any_static_ok = true;
    } else {
      worst_static = std::max(worst_static, s.static_reason[i]);
    }
    s.app[i] = n.gpus[i].usage;
    s.init_max[i] = GpuUsage{};
  }
  if (Reason why = rules::CheckGpuCount(ng, ctx.max_count); why != Reason::kFits) return why;
  if (!any_static_ok) return worst_static;
  return Reason::kFits;
}

}  // namespace

Reason PlacePod(const NodeEntry& n, const PodCtx& ctx, Scratch& s, rules::Added* added) {
  const size_t ng = n.gpus.size();
  s.Reserve(ng);
  s.chosen.clear();
  s.leftover = 0;
  if (Reason why = PrepareNode(n, ctx, s); why != Reason::kFits) return why;
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
  rules::Added a;
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
        devs.push_back(DeviceAlloc{n.info.gpus[i].uuid, n.info.gpus[i].type,
                                   rules::NeedMem(n.gpus[i], r), r.cores});
      }
      p.containers.push_back(std::move(devs));
    }
  }
  return p;
}

PodPlacement EmptyPlacement(const ResolvedPod& pod) {
  PodPlacement p;
  p.num_init = static_cast<int32_t>(pod.init_containers.size());
  p.containers.resize(pod.init_containers.size() + pod.containers.size());
  return p;
}

}  // namespace hami::sched::internal
