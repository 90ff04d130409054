// PodCtx (pod_context.h).
#include "sched/pod_context.h"

#include <algorithm>
#include <cctype>

namespace hami::sched::internal {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

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

}  // namespace hami::sched::internal
