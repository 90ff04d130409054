// The packing benchmark's request traces and capacity bound, shared by sched_bench (the engine)
// and packing_sim (scoring rules without the engine). Header-only; docs/scheduling.md,
// "Packing", explains the mixes and the bound.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace hami::sched::packing {

inline constexpr int64_t kGpuMem = 81920;  // 80 GiB
inline constexpr int32_t kSplit = 10;

// Two request mixes (docs/scheduling.md):
// uniform: 1 GPU 70 %, 2 GPUs 20 %, 4 GPUs 10 %; memory 5..80 GiB uniform in 1 GiB steps;
//   cores 0 (best effort) 30 %, otherwise 10..100 in steps of 10 (100 = exclusive card).
// small: inference-style slices: 1 GPU 80 %, 2 GPUs 15 %, 4 GPUs 5 %; memory 4, 8, 10, 16,
//   20, 24 or 40 GiB (weights 20, 25, 15, 15, 10, 10, 5), 5 % whole cards (80 GiB, cores 100);
//   cores 0 40 %, otherwise 10, 20, 25, 30 or 50.
enum class Trace { kUniform, kSmall };
inline const char* TraceName(Trace t) { return t == Trace::kUniform ? "uniform" : "small"; }
struct TraceItem {
  int count;
  int64_t mem;
  int cores;
};
inline TraceItem NextItem(std::mt19937& rng, Trace kind) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  TraceItem t;
  if (kind == Trace::kUniform) {
    int r = pick(10);
    t.count = r < 7 ? 1 : r < 9 ? 2 : 4;
    t.mem = 1024LL * (5 + pick(76));
    t.cores = pick(10) < 3 ? 0 : 10 * (1 + pick(10));
    return t;
  }
  int r = pick(20);
  t.count = r < 16 ? 1 : r < 19 ? 2 : 4;
  if (pick(20) == 0) {
    t.mem = kGpuMem;
    t.cores = 100;
    return t;
  }
  static constexpr int kMem[] = {4, 8, 10, 16, 20, 24, 40};
  static constexpr int kWeight[] = {20, 25, 15, 15, 10, 10, 5};
  int w = pick(100), k = 0;
  while (w >= kWeight[k]) w -= kWeight[k++];
  t.mem = 1024LL * kMem[k];
  static constexpr int kCores[] = {10, 20, 25, 30, 50};
  t.cores = pick(10) < 4 ? 0 : kCores[pick(5)];
  return t;
}
// Martello-Toth bound L2: a lower bound on the number of bins of capacity `cap` that items of
// the given sizes need. For every threshold a <= cap/2: items larger than cap-a each need a bin
// of their own and so do items in (cap/2, cap-a] (no two of those share a bin); items in
// [a, cap/2] fit only in the room the latter leave, or in further bins.
inline int64_t BinsLowerBound(std::vector<int64_t> sizes, int64_t cap) {
  std::sort(sizes.begin(), sizes.end());
  std::vector<int64_t> thresholds = {0};
  for (int64_t v : sizes)
    if (v <= cap / 2 && v != thresholds.back()) thresholds.push_back(v);
  int64_t best = 0;
  for (int64_t a : thresholds) {
    int64_t j1 = 0, j2 = 0, j2_sum = 0, j3_sum = 0;
    for (int64_t v : sizes) {
      if (v > cap - a) {
        ++j1;
      } else if (v * 2 > cap) {
        ++j2;
        j2_sum += v;
      } else if (v >= a) {
        j3_sum += v;
      }
    }
    int64_t rest = j3_sum - (j2 * cap - j2_sum);
    int64_t extra = rest > 0 ? (rest + cap - 1) / cap : 0;
    best = std::max(best, j1 + j2 + extra);
  }
  return best;
}

// Slices in the longest prefix of `trace` for which `fits(prefix length)` holds, given that
// it holds for the empty prefix and, once false, stays false for longer ones (binary search).
template <class Fits>
int64_t LongestPrefixSlices(const std::vector<TraceItem>& trace, Fits fits) {
  size_t lo = 0, hi = trace.size();  // fits(lo) holds
  while (lo < hi) {
    size_t mid = (lo + hi + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  int64_t slices = 0;
  for (size_t i = 0; i < lo; ++i) slices += trace[i].count;
  return slices;
}

// Capacity bound: the longest trace prefix (in slices) that could be placed at all, by any
// scheduler that knew the whole trace in advance. Necessary conditions, each a relaxation
// (GPUs are pooled across nodes, a request's GPUs need not be distinct): the GPU slices fit
// the cards by memory (an exclusive slice counts as a full card) and by cores, each checked
// with the L2 bin bound, and by slot count (split 10 per card). Feasibility only gets harder
// as the prefix grows, so a binary search finds the longest prefix.
inline int64_t CapacityBound(const std::vector<TraceItem>& trace, int64_t gpus) {
  auto feasible = [&](size_t n) {
    std::vector<int64_t> mem, cores;
    int64_t slices = 0;
    for (size_t i = 0; i < n; ++i) {
      for (int k = 0; k < trace[i].count; ++k) {
        mem.push_back(trace[i].cores >= 100 ? kGpuMem : trace[i].mem);
        cores.push_back(trace[i].cores);
      }
      slices += trace[i].count;
    }
    return slices <= gpus * kSplit && BinsLowerBound(mem, kGpuMem) <= gpus &&
           BinsLowerBound(cores, 100) <= gpus;
  };
  return LongestPrefixSlices(trace, feasible);
}

}  // namespace hami::sched::packing
