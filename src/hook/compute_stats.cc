// The compute limiter's counters (HAMI_COMPUTE_STATS=1, docs/compute-limiter.md,
// "Configuration"): on stderr at exit, and per share when the limits file changes it.
#include <stdio.h>

#include "compute_internal.h"

namespace hami::vgpu {
namespace climit {

namespace {
// The pace-mode counters on stderr, after `label` (e.g. "share=30% ", or "").
void PrintPaceCounters(const char* label) {
  if (g_stats.pace.stretches)
    fprintf(stderr,
            "hami-compute-stats %space_stretches=%llu pace_charged_ms=%.1f pace_wait_ms=%.1f "
            "pace_drain_ms=%.1f pace_tail_uncharged_ms=%.1f pace_copies=%llu "
            "pace_restart_credit_ms=%.1f pace_ran_ms=%.1f pace_est_ms=%.1f pace_samples=%llu "
            "pace_idle_samples=%llu pace_tail_carried_ms=%.1f pace_early_samples=%llu "
            "pace_early_idle_samples=%llu\n",
            label, static_cast<unsigned long long>(g_stats.pace.stretches),
            g_stats.pace.charged_ns / 1e6, g_stats.pace.wait_ns / 1e6, g_stats.pace.drain_ns / 1e6,
            g_stats.pace.tail_free_ns / 1e6, static_cast<unsigned long long>(g_stats.pace.copies),
            g_stats.pace.restart_ns / 1e6, g_stats.pace.ran_ns / 1e6, g_stats.pace.est_ns / 1e6,
            static_cast<unsigned long long>(g_stats.pace.samples),
            static_cast<unsigned long long>(g_stats.pace.idle_samples),
            g_stats.pace.carried_ns / 1e6,
            static_cast<unsigned long long>(g_stats.pace.early_samples),
            static_cast<unsigned long long>(g_stats.pace.early_idle_samples));
  if (g_stats.pace.bin_n[0]) {
    fprintf(stderr, "hami-compute-stats %space_launches_per_ms=", label);
    for (int k = 0; k < kPaceBins && g_stats.pace.bin_n[k]; ++k)
      fprintf(
          stderr, "%s%.1f", k ? "," : "",
          static_cast<double>(g_stats.pace.bin[k]) / static_cast<double>(g_stats.pace.bin_n[k]));
    fprintf(stderr, "\n");
  }
}

// The launch counters when the current share began (PacePeriodStats).
struct PeriodBase {
  uint64_t fast, n[3], span[3];
} g_period;

}  // namespace

void PacePeriodStats(uint32_t share_pct) {
  char label[32];
  snprintf(label, sizeof(label), "share=%u%% ", share_pct);
  // Every share, limited or not: the launches and the measured GPU span of the sampled ones
  // (queued behind others, and on an idle stream), to compare the loop's kernels in pace
  // mode's stretches with the same loop's unlimited.
  uint64_t n[3], span[3];
  for (int m = 0; m < 3; ++m) {
    n[m] = g_stats.n[m] - g_period.n[m];
    span[m] = g_stats.span[m] - g_period.span[m];
  }
  fprintf(stderr,
          "hami-compute-stats %slaunches=%llu sampled_busy=%llu span_busy_us=%.2f "
          "sampled_start=%llu span_start_us=%.2f\n",
          label, static_cast<unsigned long long>(g_stats.fast - g_period.fast + n[0] + n[1] + n[2]),
          static_cast<unsigned long long>(n[kBusy]), n[kBusy] ? span[kBusy] / 1e3 / n[kBusy] : 0.0,
          static_cast<unsigned long long>(n[kStart]),
          n[kStart] ? span[kStart] / 1e3 / n[kStart] : 0.0);
  g_period.fast = g_stats.fast;
  for (int m = 0; m < 3; ++m) {
    g_period.n[m] = g_stats.n[m];
    g_period.span[m] = g_stats.span[m];
  }
  PrintPaceCounters(label);
  g_stats.pace = Stats::Pace{};
}

}  // namespace climit

namespace {

using namespace climit;  // NOLINT: the counters are the limiter's

__attribute__((destructor)) void PrintStats() {
  if (!Cfg().stats) return;
  static const char* names[2] = {"busy", "start"};
  for (int m = 0; m < 2; ++m) {
    uint64_t n = g_stats.n[m];
    if (!n) continue;
    fprintf(stderr,
            "hami-compute-stats mode=%s launches=%llu charge_us=%.2f span_us=%.2f "
            "excl_us=%.2f\n",
            names[m], static_cast<unsigned long long>(n), g_stats.charge[m] / 1e3 / n,
            g_stats.span[m] / 1e3 / n, g_stats.excl[m] / 1e3 / n);
  }
  fprintf(stderr,
          "hami-compute-stats waits=%llu wait_ms=%.1f turns=%llu turn_waits=%llu "
          "turn_wait_ms=%.1f\n",
          static_cast<unsigned long long>(g_stats.waits), g_stats.wait_ns / 1e6,
          static_cast<unsigned long long>(g_stats.turns_taken),
          static_cast<unsigned long long>(g_stats.turn_waits), g_stats.turn_wait_ns / 1e6);
  fprintf(stderr, "hami-compute-stats probes=%llu probes_discarded=%llu power_extra_ms=%.1f\n",
          static_cast<unsigned long long>(g_stats.probes),
          static_cast<unsigned long long>(g_stats.probes_discarded), g_stats.power_extra_ns / 1e6);
  fprintf(stderr,
          "hami-compute-stats ctx_restarts=%llu ctx_evictions=%llu stream_table_full=%llu\n",
          static_cast<unsigned long long>(g_stats.ctx_restarts),
          static_cast<unsigned long long>(g_stats.ctx_evictions),
          static_cast<unsigned long long>(g_stats.stream_table_full));
  PrintPaceCounters("");
  uint64_t charged = g_stats.charge[0] + g_stats.charge[1] + g_stats.host_extra_ns;
  fprintf(stderr,
          "hami-compute-stats unmeasured=%llu overlap_ms=%.1f host_ms=%.1f host_extra_ms=%.1f "
          "charged_ms=%.1f wall_ms=%.1f\n",
          static_cast<unsigned long long>(g_stats.fast), g_stats.overlap_ns / 1e6,
          g_stats.host_ns / 1e6, g_stats.host_extra_ns / 1e6, charged / 1e6,
          (Mono() - g_stats.t_init) / 1e6);
  for (CtxState* c : g_ctx) {
    if (!c) continue;
    int shown = 0;
    c->power.ForEachProbed([&](uint64_t key, uint64_t normal, uint64_t ref, uint32_t n) {
      if (shown++ < 8)
        fprintf(stderr, "hami-compute-power key=%llx normal_us=%.2f ref_us=%.2f samples=%u\n",
                static_cast<unsigned long long>(key), normal / 1e3, ref / 1e3, n);
    });
  }
}

}  // namespace

}  // namespace hami::vgpu
