// What one evaluation of a pod against nodes needs, prepared once per engine call (PodCtx), and
// the scratch buffers reused across the nodes of that call. Internal to the engine.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sched/engine.h"
#include "sched/rules/score.h"

namespace hami::sched::internal {

struct PodCtx {
  explicit PodCtx(const ResolvedPod& p) : pod(&p), norm(p.weights) {}
  const ResolvedPod* pod;
  rules::Norm norm;
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

PodCtx MakeCtx(const ResolvedPod& pod);

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

}  // namespace hami::sched::internal
