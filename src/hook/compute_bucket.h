// The compute limiter's arithmetic, apart from any driver call so it can be tested alone: the
// container-wide token bucket (one 64-bit "debt clock" in the accounting file that every
// process of the container updates with atomics) and the charge of one measured launch.
#pragma once

#include <stdint.h>

namespace hami::vgpu {

// The bucket is kept in GCRA form: `clock` is the CLOCK_MONOTONIC instant at which the
// container will have paid for all GPU time charged so far. Charging g ns of GPU time at a
// share of L percent advances it by g * 100 / L. A launch is admitted while the clock is not
// ahead of now, so over any window busy / wall converges to L. An idle container may bank at
// most `burst_ns` of wall time (the clock never lags now by more), which bounds a burst to
// burst_ns * L / 100 of GPU time.
struct BucketParams {
  uint32_t limit_pct;  // 1..99
  uint64_t burst_ns;
  // A launch is admitted while the clock is at most this far ahead of now (0 for a single
  // stream). Kernels queued on several streams at once overlap on the GPU and are charged
  // their union; admitting them one scaled charge apart would serialise them instead. The
  // long-run share does not depend on it (GCRA's tolerance only allows a burst).
  uint64_t tolerance_ns = 0;
};

// Wall time that g ns of GPU time costs at `limit_pct` (g * 100 / limit).
uint64_t ScaledCharge(uint64_t gpu_ns, uint32_t limit_pct);

// Tries to admit a launch at `now`. When the clock is not ahead of now, pre-charges `est_ns`
// of GPU time and returns 0; otherwise returns the ns to wait before trying again. Safe for
// concurrent callers in several processes (CAS on *clock).
uint64_t BucketAdmit(uint64_t* clock, uint64_t now, uint64_t est_ns, const BucketParams& p);

// Applies the difference between measured and pre-charged GPU time (either sign).
void BucketCorrect(uint64_t* clock, int64_t delta_gpu_ns, uint32_t limit_pct);

// Host-time accounting (docs/compute-limiter.md, section 1). A launch loop holds the GPU for
// whichever is slower per iteration, its kernels or its host side (Python, framework
// dispatch, synchronise): a GPU that idles between short kernels while the host prepares the
// next is not free for anyone else at that time scale. The application's host time for one
// launch is measured from the previous launch on the same stream by the same thread
// (`prev_t`, when it entered the limiter) to this one (`now`), less the limiter's own time on
// the previous launch (`prev_lim`). A loop that synchronises after each launch spends the
// previous launch's GPU time (`gpu_est`, its expected span) waiting inside that gap: only what
// exceeds it is the application's own pause, and when that is max_gap_ns or more the gap is
// idle time: 0 (not charged). Otherwise the whole gap counts, so such a loop costs its kernel
// plus its host time, the pace it has alone on the card.
uint64_t AppHostTime(uint64_t now, uint64_t prev_t, uint64_t prev_lim, uint64_t max_gap_ns,
                     uint64_t gpu_est = 0);

// Over a window of launches, the host time that their GPU time did not cover: charged on top
// of the GPU time, so the window costs max(host, gpu).
inline uint64_t WindowExtra(uint64_t host_ns, uint64_t gpu_ns) {
  return host_ns > gpu_ns ? host_ns - gpu_ns : 0;
}

// Exponentially weighted estimate of the next launch's GPU time (weight 1/8 to the sample).
uint64_t UpdateEstimate(uint64_t est_ns, uint64_t sample_ns);

// A pace-mode stretch (docs/compute-limiter.md, section 1b), CLOCK_MONOTONIC instants.
struct PaceStretch {
  uint64_t on_start, on_end;  // the stretch as opened
  uint64_t last;              // its last launch (or copy)
  uint64_t sum_est;           // its launches' estimated GPU time
  uint64_t now;               // the launch that closes it
  uint64_t done;              // its queued work was seen finished (0: nothing was queued)
  uint64_t copies_done;       // ... that of the streams that only copied (0: none queued)
  uint32_t gpu_pm;  // the GPU's busy share of recent stretches, per mille (PaceLearnGpu); 0: unused
};
// A GPU busy for this share of a stretch (per mille) or more counts as busy all along: the
// estimates are that far off (PaceLearnGpu).
inline constexpr uint32_t kPaceGpuBusyPm = 900;
// Where the charge of a stretch ends (it starts at on_start). The application ran until `now`,
// unless `now` came more than late_ns after the stretch and its estimated GPU work: it paused,
// and only those count. Work still queued at `now` counts as far as the stretch's estimated
// GPU work reaches (`gpu_pm` 0), or as far as the GPU's busy share of the loop's stretches
// (`gpu_pm`, 90 % and more taken for all of it; HAMI_COMPUTE_PACE_TAIL=1) reaches into the
// time from on_start to `done`: a loop whose GPU ran behind its host is charged until its
// queue ran dry; one whose GPU idled for part of the stretch would, unthrottled, have run
// that tail while its host went on. Copies have no estimate: they count until they finished.
//
// `carry` (HAMI_COMPUTE_PACE_TAIL=2, with `gpu_pm` 0): the estimate's overshoot kept across
// stretches. Where a stretch's estimated work reaches past the time its work really ended
// (`done`, else `now`), the excess is added to *carry (at most four times the stretch's length);
// where it falls short of a queue that ran on after the host window, up to *carry of that tail
// counts too and is taken from it. The charge still never passes `done`. One stretch's
// estimate is off either way, and a charge that stops where the work finished drops the
// overshoots while keeping the shortfalls: a GPU-bound loop was charged less than its queue.
uint64_t PaceChargeEnd(const PaceStretch& s, uint64_t late_ns, uint64_t* carry = nullptr);
// How late after a stretch the next launch may come and the time until it still count as the
// application running: the longest host gap between its launches seen inside recent stretches
// (`learned_ns`, where it ran unthrottled), with a quarter more for jitter, at least `min_ns`
// and at most `max_ns` (the stretch's length: no longer gap can be seen inside one). A loop
// that works on the host for 4 ms after each synchronise is charged those 4 ms; a launch later
// than that comes after a pause, which is not.
uint64_t PaceLateNs(uint64_t learned_ns, uint64_t min_ns, uint64_t max_ns);
// The learned host gap after a stretch whose longest gap between launches was `stretch_ns`:
// a longer one is taken at once, a shorter one lowers it by an eighth per stretch.
uint64_t PaceLearnGap(uint64_t learned_ns, uint64_t stretch_ns);
// The loop's pace lost at the start of a stretch, signed (a loop woken from a pause may run
// its first ms slower than it runs on): the time the `n_early` launches of the first
// `early_ns` would have taken at the pace of the `n_late` launches of the rest of the stretch
// (`len_ns` in all), less `early_ns`, negated. False (nothing learned) when the stretch is
// shorter than three times `early_ns` or its rest held fewer than 32 launches.
bool PaceRestartLoss(uint64_t n_early, uint64_t n_late, uint64_t early_ns, uint64_t len_ns,
                     int64_t* loss_ns);
// The learned restart loss after a stretch that lost `loss_ns` (weight 1/8), and the credit
// it gives a stretch's charge: the learned loss when positive, at most `max_ns`. Averaged
// over stretches, a loop that resumes with a burst (a queue refilled, a step launched right
// after its synchronise) shows a negative loss and gets nothing.
int64_t PaceLearnRestart(int64_t learned_ns, int64_t loss_ns);
uint64_t PaceRestartCredit(int64_t learned_ns, uint64_t max_ns);

// The length of a pace-mode stretch at `limit_pct`: `at50_ns` scaled by the share (limit / 50,
// taken as 25 below 25 %), so that the time a loop loses at each stretch's start (its GPU idle
// until the host is ahead again: 1-2 ms a stretch for a GPT training step on an H100) costs
// about the same points of the share at every limit; longer where that leaves a pause shorter
// than `off_ns`; at most `max_ns`. Unlimited (0, 100 and above): `at50_ns`, at most `max_ns`.
uint64_t PaceStretchLen(uint64_t at50_ns, uint64_t off_ns, uint32_t limit_pct, uint64_t max_ns);
// The GPU's busy share of a loop's stretches, per mille, learned over stretches (weight 1/8;
// 0: none yet): a stretch's launches' estimated GPU time `est_ns` over the time from its start
// to when its work finished (or to its closing launch), at most 4000. One stretch's estimate
// is the count of its launches times a running mean of sampled kernels: a training step's mix
// of short and long kernels makes it off either way, and the tail it leaves uncharged
// when it falls short is never made up when it overshoots (the charge stops at `done`): an H100
// ran a GPU-bound training loop 3-7 % above its share that way. The mean over stretches holds
// on the fake driver; used with HAMI_COMPUTE_PACE_TAIL=1 only: on an H100 it charged a small GPT
// training loop about 3 points under its share at 50 (docs/BENCHMARKS.md, seventeenth session).
uint32_t PaceLearnGpu(uint32_t learned_pm, uint64_t est_ns, uint64_t span_ns);

}  // namespace hami::vgpu

namespace hami::vgpu {

// Recent minimum run time per launch signature (function and shape, or graph). When several
// containers share a GPU, an event pair around a kernel also spans the time the kernel waited
// behind, or was preempted by, another container's work; the recent minimum of the same
// launch is its own run time. Fixed size, no allocation; a full neighbourhood replaces its
// home entry.
class SoloTimes {
 public:
  static constexpr int kSize = 1024;
  static constexpr uint32_t kMinSamples = 4;
  static constexpr uint32_t kRotate = 32;  // samples per minimum window (two windows kept)

  void Add(uint64_t sig, uint64_t ns);
  // Recent minimum, or 0 when the signature has fewer than kMinSamples samples.
  uint64_t Baseline(uint64_t sig) const;

 private:
  struct Entry {
    uint64_t sig;
    uint64_t min_cur, min_prev;
    uint32_t n, used;
  };
  Entry e_[kSize];
};

// Power-bound work (docs/compute-limiter.md, "Power-bound work alone on the card"): a card
// at its power cap lowers its clock, so work that keeps it at full duty runs slower than the
// same work at a partial share. What the limiter holds is the share of the work's unlimited
// throughput, so a launch is charged what it takes at full duty. That time is learned by
// probes: short stretches at full duty alone on the card; their settled part (after the card
// has reacted) gives each launch signature's reference time. Per signature: `normal`, an
// average of the charges measured alone outside probes, the samples of the last probe, and the
// mean of the last confirmed probe before it. A probe is confirmed (or discarded) only after
// it ends, once NVML can tell whether another process computed during it: until then its
// samples are not charged, the previous reference is; once confirmed, they are, including
// samples of its launches that complete later.
class PowerRefs {
 public:
  static constexpr int kSize = 1024;
  static constexpr uint32_t kMinProbeSamples = 3;
  static constexpr double kMinRatio = 1.03;  // below: no correction (measurement noise)
  // Beyond this the reference describes other work, not the same work at a lower clock (a
  // card at its power cap runs up to 1.22x slower, H200 bf16 matmuls): no correction.
  static constexpr double kMaxRatio = 1.4;

  // A charge measured alone on the card, outside a probe.
  void Normal(uint64_t sig, uint64_t ns);
  // A charge measured in the settled part of probe number `probe` (1, 2, ...). The first one
  // of a new probe keeps the last probe's mean, when that was confirmed, as the reference.
  void Probe(uint64_t sig, uint64_t ns, uint32_t probe);
  // Probe `probe` was alone on the card: its samples are the reference of every signature it
  // has at least kMinProbeSamples of (the others keep theirs).
  void Confirm(uint32_t probe);
  // Forgets the samples of probe `probe` (another process computed during it); the references
  // stay.
  void Discard(uint32_t probe);
  // The charge for a launch measured at `ns` alone on the card: when the reference found this
  // signature slower at full duty (reference r, normal n, r / n >= kMinRatio), ns raised to r
  // but by no more than the factor r / n (none beyond kMaxRatio), so a launch that is short
  // for another reason (less data) is not charged the full reference; ns otherwise.
  uint64_t Correct(uint64_t sig, uint64_t ns) const;
  // f(sig, normal, reference, samples) for every signature with a reference (diagnostics).
  template <class F>
  void ForEachProbed(F f) const {
    for (const Entry& e : e_) {
      uint32_t n = 0;
      uint64_t r = e.used ? Reference(e, &n) : 0;
      if (r) f(e.sig, e.normal, r, n);
    }
  }

 private:
  struct Entry {
    uint64_t sig;
    uint64_t normal;     // 1/8-weighted average
    uint64_t probe_sum;  // charges of probe `probe_id`
    uint64_t ref;        // mean of the last confirmed probe before it (0: none)
    uint32_t probe_n, probe_id, ref_n, used;
  };
  // The reference of an entry (0: none) and its samples.
  uint64_t Reference(const Entry& e, uint32_t* n) const;
  Entry e_[kSize];
  uint32_t confirmed_ = 0;  // the last probe confirmed
};

}  // namespace hami::vgpu
