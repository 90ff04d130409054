#include "webui/model.h"

#include <algorithm>
#include <map>
#include <set>

namespace hami::webui {
namespace {

// A slice is "throttled" when it runs at (90 % of) its compute limit: the limiter is holding
// it back, so it would go faster with a bigger share.
constexpr double kThrottleFraction = 0.9;

void DeriveUtil(Snapshot& s, const Snapshot* previous) {
  if (previous == nullptr) return;
  const double dt_ns = static_cast<double>(s.taken_unix_ms - previous->taken_unix_ms) * 1e6;
  if (dt_ns <= 0) return;
  for (auto& w : s.workloads) {
    auto it = previous->workload_by_id.find(w.id);
    if (it == previous->workload_by_id.end()) continue;
    const WorkloadRow& pw = previous->workloads[it->second];
    for (auto& sl : w.slices) {
      if (sl.util >= 0 || sl.busy_ns < 0) continue;
      for (const auto& ps : pw.slices) {
        if (ps.uuid != sl.uuid || ps.busy_ns < 0 || ps.busy_ns > sl.busy_ns) continue;
        sl.util = std::min(1.0, static_cast<double>(sl.busy_ns - ps.busy_ns) / dt_ns);
      }
    }
  }
}

void IndexAndSum(Snapshot& s) {
  s.gpu_by_uuid.clear();
  s.workload_by_id.clear();
  for (size_t i = 0; i < s.gpus.size(); ++i) s.gpu_by_uuid[s.gpus[i].uuid] = i;
  for (size_t i = 0; i < s.workloads.size(); ++i) s.workload_by_id[s.workloads[i].id] = i;
  s.gpu_workloads.assign(s.gpus.size(), {});
  std::vector<int64_t> used(s.gpus.size(), 0);
  std::vector<double> util(s.gpus.size(), 0);
  std::vector<bool> known(s.gpus.size(), false);
  for (size_t w = 0; w < s.workloads.size(); ++w) {
    WorkloadRow& wl = s.workloads[w];
    wl.throttled = false;
    for (const auto& sl : wl.slices) {
      if (sl.cores > 0 && sl.cores < 100 && sl.util >= kThrottleFraction * sl.cores / 100.0) {
        wl.throttled = true;
      }
      auto it = s.gpu_by_uuid.find(sl.uuid);
      if (it == s.gpu_by_uuid.end()) continue;
      auto& list = s.gpu_workloads[it->second];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
      if (sl.used_mib >= 0) {
        used[it->second] += sl.used_mib;
        known[it->second] = true;
      }
      if (sl.util >= 0) util[it->second] += sl.util;
    }
  }
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    GpuRow& g = s.gpus[i];
    if (g.used_mib < 0 && known[i]) g.used_mib = used[i];
    if (g.util < 0 && known[i]) g.util = std::min(1.0, util[i]);
  }
}

void BuildNodes(Snapshot& s) {
  std::map<std::string, NodeRow> nodes;
  std::map<std::string, std::set<std::string>> types;
  for (const auto& g : s.gpus) {
    NodeRow& n = nodes[g.node];
    n.name = g.node;
    n.gpus++;
    n.healthy_gpus += g.healthy ? 1 : 0;
    n.idle_gpus += (g.slices == 0 && g.healthy) ? 1 : 0;
    n.memory_mib += g.memory_mib;
    n.allocated_mib += g.allocated_mib;
    n.cores += 100;
    n.allocated_cores += g.allocated_cores;
    n.slices += g.slices;
    if (g.used_mib >= 0) {
      n.used_mib += g.used_mib;
      n.usage_known = true;
    }
    if (g.util >= 0) n.util_sum += g.util;
    types[g.node].insert(g.type);
  }
  for (const auto& w : s.workloads) {
    auto it = nodes.find(w.node);
    if (it != nodes.end()) it->second.workloads++;
  }
  s.nodes.clear();
  s.node_by_name.clear();
  for (auto& [name, n] : nodes) {
    n.types.assign(types[name].begin(), types[name].end());
    s.node_by_name[name] = s.nodes.size();
    s.nodes.push_back(std::move(n));
  }
}

}  // namespace

void Finish(Snapshot& s, const Snapshot* previous) {
  DeriveUtil(s, previous);
  IndexAndSum(s);
  BuildNodes(s);
  std::set<std::string> types, namespaces;
  for (const auto& g : s.gpus) types.insert(g.type);
  for (const auto& w : s.workloads) namespaces.insert(w.ns);
  for (const auto& p : s.pending) namespaces.insert(p.ns);
  for (const auto& q : s.quotas) namespaces.insert(q.ns);
  s.types.assign(types.begin(), types.end());
  s.namespaces.assign(namespaces.begin(), namespaces.end());
}

}  // namespace hami::webui
