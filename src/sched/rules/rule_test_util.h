// Builders for the rule tables (tests only): a GPU slot, its usage and a resolved container.
#pragma once

#include <cstdint>

#include "sched/engine.h"

namespace hami::sched::rules::testing {

inline internal::GpuSlot Slot(int64_t mem = 10000, int32_t cores = 100, int32_t split = 10,
                              int32_t numa = 0, int32_t index = 0) {
  internal::GpuSlot g;
  g.memory_mib = mem;
  g.cores = cores;
  g.split_count = split;
  g.numa = numa;
  g.index = index;
  g.inv_split = 1.0f / static_cast<float>(split);
  g.inv_cores = 1.0f / static_cast<float>(cores);
  g.inv_mem = 1.0 / static_cast<double>(mem);
  return g;
}

inline GpuUsage Use(int64_t mem = 0, int32_t cores = 0, int32_t slices = 0, int32_t exclusive = 0) {
  return GpuUsage{mem, cores, slices, exclusive};
}

inline ResolvedContainer Req(int64_t mem, int32_t cores = 0, int32_t percent = 0,
                             int32_t count = 1) {
  ResolvedContainer r;
  r.count = count;
  r.memory_mib = mem;
  r.memory_percent = percent;
  r.cores = cores;
  return r;
}

}  // namespace hami::sched::rules::testing
