// Rule "Numa" (numa.h).
#include "sched/rules/numa.h"

namespace hami::sched::rules {

Reason ChooseNuma(const std::vector<internal::GpuSlot>& gpus, std::span<const int> fitting,
                  std::span<const double> pref, int count, int* numa_out) {
  bool found = false;
  int best_numa = 0;
  double best_sum = 0;
  for (int i : fitting) {
    int numa = gpus[i].numa;
    int taken = 0;
    double sum = 0;
    for (int j : fitting) {
      if (gpus[j].numa != numa) continue;
      sum += pref[j];
      if (++taken == count) break;
    }
    if (taken < count) continue;
    if (!found || sum > best_sum || (sum == best_sum && numa < best_numa)) {
      found = true;
      best_numa = numa;
      best_sum = sum;
    }
  }
  if (!found) return Reason::kNuma;
  *numa_out = best_numa;
  return Reason::kFits;
}

}  // namespace hami::sched::rules
