#include "compute_bucket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace hami::vgpu {
namespace {

constexpr uint64_t kMs = 1000000;

TEST(ComputeBucket, ScaledChargeDividesByTheShare) {
  EXPECT_EQ(ScaledCharge(1000, 50), 2000u);
  EXPECT_EQ(ScaledCharge(1000, 10), 10000u);
  EXPECT_EQ(ScaledCharge(1000, 100), 1000u);
  EXPECT_EQ(ScaledCharge(1000, 0), 1000u);
  EXPECT_EQ(ScaledCharge(~0ull / 50, 99),
            static_cast<uint64_t>(static_cast<unsigned __int128>(~0ull / 50) * 100 / 99));
}

TEST(ComputeBucket, AdmitsWhileTheClockIsNotAheadThenAsksToWait) {
  uint64_t clock = 0;
  BucketParams p{25, 0};
  EXPECT_EQ(BucketAdmit(&clock, 100 * kMs, 1 * kMs, p), 0u);
  EXPECT_EQ(clock, 104 * kMs);  // 1 ms of GPU at 25 % costs 4 ms of wall time
  EXPECT_EQ(BucketAdmit(&clock, 101 * kMs, 1 * kMs, p), 3 * kMs);
  EXPECT_EQ(clock, 104 * kMs) << "a refused launch charges nothing";
  EXPECT_EQ(BucketAdmit(&clock, 104 * kMs, 1 * kMs, p), 0u);
  EXPECT_EQ(clock, 108 * kMs);
}

TEST(ComputeBucket, IdleTimeBanksAtMostTheBurst) {
  uint64_t clock = 10 * kMs;
  BucketParams p{50, 20 * kMs};
  // A second of idleness: the clock restarts 20 ms behind now, not 990 ms.
  EXPECT_EQ(BucketAdmit(&clock, 1000 * kMs, 1 * kMs, p), 0u);
  EXPECT_EQ(clock, 982 * kMs);
  int admitted = 1;
  while (BucketAdmit(&clock, 1000 * kMs, 1 * kMs, p) == 0) ++admitted;
  EXPECT_EQ(admitted, 11);  // 20 ms banked at 50 % = 10 ms of GPU, plus the first
}

TEST(ComputeBucket, CorrectionsMoveTheClockBothWays) {
  uint64_t clock = 100 * kMs;
  BucketCorrect(&clock, 2 * kMs, 40);
  EXPECT_EQ(clock, 105 * kMs);
  BucketCorrect(&clock, -4 * static_cast<int64_t>(kMs), 40);
  EXPECT_EQ(clock, 95 * kMs);
  BucketCorrect(&clock, -1000 * static_cast<int64_t>(kMs), 40);
  EXPECT_EQ(clock, 0u) << "never wraps below zero";
}

TEST(ComputeBucket, LongRunShareEqualsTheLimit) {
  // Simulated loop: a 1 ms kernel whenever admitted, time advances to the admission instant.
  for (uint32_t limit : {10u, 30u, 50u, 70u, 90u}) {
    uint64_t clock = 0, now = 1000 * kMs, busy = 0;
    BucketParams p{limit, 20 * kMs};
    const uint64_t start = now;
    while (now - start < 10000 * kMs) {
      uint64_t w = BucketAdmit(&clock, now, 1 * kMs, p);
      if (w) {
        now += w;
        continue;
      }
      busy += kMs;
      now += kMs;  // the loop synchronises: next launch after this one ends
    }
    double share = 100.0 * static_cast<double>(busy) / static_cast<double>(now - start);
    EXPECT_NEAR(share, limit, 0.5) << "limit " << limit;
  }
}

TEST(ComputeBucket, ConcurrentAdmissionsNeverOvercommit) {
  uint64_t clock = 0;
  BucketParams p{50, 0};
  std::vector<std::thread> ts;
  std::atomic<int> admitted{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (BucketAdmit(&clock, 1000 * kMs, kMs, p) == 0) ++admitted;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted.load(), 1) << "one admission per instant: the rest must wait";
  EXPECT_EQ(clock, 1002 * kMs);
}

TEST(ComputeBucket, AppHostTimeLeavesOutTheLimiterAndIdlePeriods) {
  // Previous launch entered the limiter at 1000 us and spent 30 us in it (a sleep included);
  // this one enters at 1100 us: the application took 70 us.
  EXPECT_EQ(AppHostTime(1100000, 1000000, 30000, 250000), 70000u);
  EXPECT_EQ(AppHostTime(1100000, 0, 0, 250000), 0u) << "no previous launch";
  EXPECT_EQ(AppHostTime(1100000, 1000000, 200000, 250000), 0u) << "never negative";
  EXPECT_EQ(AppHostTime(5000000, 1000000, 30000, 250000), 0u) << "an idle period is not use";
  // A loop that synchronises after each 300 us kernel and then works 100 us on the host: the
  // 400 us gap is the kernel plus host time, not an idle period; the same gap after a 50 us
  // kernel holds a 350 us pause, which is.
  EXPECT_EQ(AppHostTime(1400000, 1000000, 0, 250000, 300000), 400000u);
  EXPECT_EQ(AppHostTime(1400000, 1000000, 0, 250000, 50000), 0u);
}

TEST(ComputeBucket, WindowCostsTheSlowerOfHostAndGpu) {
  EXPECT_EQ(WindowExtra(12000000, 20000000), 0u);        // GPU-bound: the kernels' time
  EXPECT_EQ(WindowExtra(20000000, 12000000), 8000000u);  // host-bound: the host's time
}

TEST(ComputeBucket, EstimateFollowsSamples) {
  uint64_t e = 0;
  e = UpdateEstimate(e, 800);
  EXPECT_EQ(e, 800u);
  for (int i = 0; i < 100; ++i) e = UpdateEstimate(e, 1600);
  EXPECT_NEAR(static_cast<double>(e), 1600, 20);
}

// A pace-mode stretch from 100 to 105 ms (docs/compute-limiter.md, section 1b), its tail charged
// by its own estimate (the default).
TEST(ComputeBucket, PaceChargeCountsTheHostWindowAndOnlyTheEstimatedTail) {
  const uint64_t t0 = 100 * kMs, late = 2 * kMs;
  PaceStretch s{t0, t0 + 5 * kMs, t0 + 5 * kMs, 0, t0 + 5 * kMs + kMs / 10, 0, 0, 0};
  // Host-bound (3 ms of GPU work in a 5 ms stretch): the 0.5 ms still queued at the closing
  // launch would have overlapped the host's next work: the charge is the host window.
  s.sum_est = 3 * kMs;
  s.done = s.now + kMs / 2;
  EXPECT_EQ(PaceChargeEnd(s, late), s.now);
  // GPU-bound (the queue ran behind all along: 6.5 ms of work): charged until it ran dry.
  s.sum_est = 6500 * kMs / 1000;
  s.done = t0 + 6400 * kMs / 1000;
  EXPECT_EQ(PaceChargeEnd(s, late), s.done);
  // The estimate reaches past the drain: no more than the drain.
  s.sum_est = 9 * kMs;
  EXPECT_EQ(PaceChargeEnd(s, late), s.done);
  // Between the two: as far as the estimated work reaches.
  s.sum_est = 5300 * kMs / 1000;
  EXPECT_EQ(PaceChargeEnd(s, late), t0 + s.sum_est);
  // Copies have no estimate: a copy-only stream counts until its copies finished.
  s.sum_est = 3 * kMs;
  s.done = s.copies_done = t0 + 7 * kMs;
  EXPECT_EQ(PaceChargeEnd(s, late), s.copies_done);
  // The closing launch came long after the stretch and its work: the application paused,
  // only the stretch counts (a stretch ended by its estimated work at 106 ms here).
  s.copies_done = 0;
  s.done = 0;
  s.sum_est = 6 * kMs;
  s.last = t0 + 4 * kMs;
  s.now = t0 + 50 * kMs;
  EXPECT_EQ(PaceChargeEnd(s, late), t0 + 6 * kMs);
  s.sum_est = 0;
  EXPECT_EQ(PaceChargeEnd(s, late), s.on_end);
}

// The same stretch with its tail charged by the GPU's busy share learned over stretches
// (HAMI_COMPUTE_PACE_TAIL=1); `gpu` sets it as one stretch with `est` of work would teach it.
TEST(ComputeBucket, PaceChargeByTheLearnedGpuShareCountsTheHostWindowAndTheBusyTail) {
  const uint64_t t0 = 100 * kMs, late = 2 * kMs;
  PaceStretch s{t0, t0 + 5 * kMs, t0 + 5 * kMs, 0, t0 + 5 * kMs + kMs / 10, 0, 0, 0};
  auto gpu = [&](uint64_t est) {
    s.sum_est = est;
    s.gpu_pm = PaceLearnGpu(0, est, (s.done > s.now ? s.done : s.now) - s.on_start);
  };
  s.done = s.now + kMs / 2;
  gpu(3 * kMs);  // host-bound: the host window
  EXPECT_EQ(PaceChargeEnd(s, late), s.now);
  s.done = t0 + 6400 * kMs / 1000;
  gpu(6500 * kMs / 1000);  // GPU-bound: until the queue ran dry
  EXPECT_EQ(PaceChargeEnd(s, late), s.done);
  // Between the two: as far as the GPU's share of the time reaches (5.3 of 6.4 ms: 83 %, over
  // the 90 % that counts as busy all along).
  gpu(5300 * kMs / 1000);
  EXPECT_NEAR(static_cast<double>(PaceChargeEnd(s, late)), t0 + 5300.0 / 0.9 * kMs / 1000,
              0.01 * kMs);
  s.done = s.copies_done = t0 + 7 * kMs;  // copies: until they finished
  gpu(3 * kMs);
  EXPECT_EQ(PaceChargeEnd(s, late), s.copies_done);
}

// One stretch's estimate is its launches times a running mean of sampled kernels: off
// either way for a mix of short and long kernels. By each stretch's own estimate (the default)
// the shortfalls leave tails uncharged and the overshoots do not make up for them (the charge
// stops where the work finished); by the GPU's busy share learned over stretches
// (HAMI_COMPUTE_PACE_TAIL=1) a GPU-bound loop's tail is charged whole.
TEST(ComputeBucket, PaceChargesAGpuBoundLoopsTailWhateverOneStretchEstimates) {
  const uint64_t t0 = 100 * kMs, late = 2 * kMs;
  uint32_t learned = 0;
  uint64_t charged = 0, busy = 0, by_own = 0;
  for (int i = 0; i < 64; ++i) {
    // GPU-bound: 20 ms of host launches, the queue drained 15 ms later, the GPU busy all along;
    // the estimate 25 % short or 25 % over, in turn.
    PaceStretch s{t0, t0 + 20 * kMs, t0 + 20 * kMs, 0, t0 + 20 * kMs, t0 + 35 * kMs, 0, 0};
    s.sum_est = (i % 2 ? 125 : 75) * 35 * kMs / 100;
    learned = PaceLearnGpu(learned, s.sum_est, s.done - s.on_start);
    s.gpu_pm = learned;
    if (i < 16) continue;
    charged += PaceChargeEnd(s, late) - t0;
    busy += s.done - t0;
    s.gpu_pm = 0;
    by_own += PaceChargeEnd(s, late) - t0;
  }
  EXPECT_EQ(charged, busy) << "a stretch's estimate falling short left its tail uncharged";
  EXPECT_NEAR(static_cast<double>(by_own) / static_cast<double>(busy), 0.875, 0.001)
      << "by its own estimate, half the stretches lose a quarter of their time";
  EXPECT_GT(learned, 950u);
  // The share learned: a first stretch is taken as it is, later ones by an eighth.
  EXPECT_EQ(PaceLearnGpu(0, 3 * kMs, 6 * kMs), 500u);
  EXPECT_EQ(PaceLearnGpu(500, 6 * kMs, 6 * kMs), 562u);
  EXPECT_EQ(PaceLearnGpu(500, 60 * kMs, 6 * kMs), 937u) << "one stretch counts at most 4000";
  EXPECT_EQ(PaceLearnGpu(500, 0, 0), 500u) << "no time: nothing learned";
}

// HAMI_COMPUTE_PACE_TAIL=2: the overshoots are kept and pay for later shortfalls, so the same
// GPU-bound loop is charged its whole queue from its second stretch on, while a host-bound
// loop (its GPU idle for part of each stretch, whatever the estimate's noise) still is not
// charged the tail that would have overlapped its host's next work.
TEST(ComputeBucket, PaceCarriesTheEstimatesOvershootToLaterTails) {
  const uint64_t t0 = 100 * kMs, late = 2 * kMs;
  uint64_t carry = 0, charged = 0, busy = 0;
  for (int i = 0; i < 64; ++i) {
    PaceStretch s{t0, t0 + 20 * kMs, t0 + 20 * kMs, 0, t0 + 20 * kMs, t0 + 35 * kMs, 0, 0};
    s.sum_est = (i % 2 ? 125 : 75) * 35 * kMs / 100;  // short first, then over, in turn
    uint64_t end = PaceChargeEnd(s, late, &carry);
    EXPECT_LE(end, s.done) << "never past the drain";
    if (i == 0) {
      EXPECT_EQ(end, t0 + s.sum_est) << "nothing carried yet: as far as it reaches";
    }
    if (i == 1) {
      EXPECT_EQ(carry, 35 * kMs / 4) << "the overshoot kept: 43.75 - 35 ms";
    }
    if (i < 2) continue;
    charged += end - t0;
    busy += s.done - t0;
  }
  EXPECT_EQ(charged, busy);
  // The carry holds at most four stretches' length: a run of overshoots does not bank seconds.
  PaceStretch big{t0, t0 + 20 * kMs, t0 + 20 * kMs, 200 * kMs, t0 + 20 * kMs, t0 + 25 * kMs, 0, 0};
  carry = 0;
  PaceChargeEnd(big, late, &carry);
  EXPECT_EQ(carry, 80 * kMs);
  // Work that had finished before the closing launch ended by then: an estimate past that
  // launch overshot it.
  big.done = 0;
  big.sum_est = 23 * kMs;
  carry = 0;
  EXPECT_EQ(PaceChargeEnd(big, late, &carry), big.now);
  EXPECT_EQ(carry, 3 * kMs);
  // Host-bound: 8-16 ms of GPU work in each 20 ms stretch, the last kernel 2 ms past the
  // closing launch. Nothing is carried, and no tail is charged.
  carry = 0;
  for (int i = 0; i < 16; ++i) {
    PaceStretch s{t0, t0 + 20 * kMs, t0 + 20 * kMs, 0, t0 + 20 * kMs, t0 + 22 * kMs, 0, 0};
    s.sum_est = (8 + i % 9) * kMs;
    EXPECT_EQ(PaceChargeEnd(s, late, &carry), s.now) << i;
  }
  EXPECT_EQ(carry, 0u);
}

// How late a closing launch may come and still be the application running (section 1b).
TEST(ComputeBucket, PaceLearnsTheLoopsHostGapsAndTakesLongerOnesForPauses) {
  const uint64_t min = 2 * kMs, on = 20 * kMs;
  EXPECT_EQ(PaceLateNs(0, min, on), min) << "nothing learned: the floor";
  EXPECT_EQ(PaceLateNs(4 * kMs, min, on), 5 * kMs) << "a 4 ms gap, a quarter more";
  EXPECT_EQ(PaceLateNs(30 * kMs, min, on), on) << "no gap longer than the stretch is seen";
  // A loop that computes 4 ms on the host after each synchronise: learned at once.
  uint64_t g = PaceLearnGap(0, 4 * kMs);
  EXPECT_EQ(g, 4 * kMs);
  // Stretches without such a gap lower it slowly (a loop whose synchronise falls in every
  // other stretch keeps most of it), a longer one raises it at once.
  g = PaceLearnGap(g, kMs / 10);
  EXPECT_EQ(g, 3500 * kMs / 1000);
  g = PaceLearnGap(g, 0);
  EXPECT_GT(g, 3 * kMs);
  EXPECT_EQ(PaceLearnGap(g, 6 * kMs), 6 * kMs);
  for (int i = 0; i < 64; ++i) g = PaceLearnGap(g, 0);
  EXPECT_LT(PaceLateNs(g, min, on), min + 1) << "a loop that stopped those gaps: the floor again";
  // Charged with the learned bound: a closing launch 4.5 ms after the synchronise that ended
  // the stretch's work counts as running; one 30 ms after it is a pause.
  const uint64_t t0 = 100 * kMs;
  PaceStretch s{t0, t0 + on, t0 + 21 * kMs, 0, t0 + 25500 * kMs / 1000, 0, 0, 0};
  EXPECT_EQ(PaceChargeEnd(s, PaceLateNs(4 * kMs, min, on)), s.now);
  EXPECT_EQ(PaceChargeEnd(s, min), s.last) << "before: the 4.5 ms were free";
  s.now = t0 + 51 * kMs;
  EXPECT_EQ(PaceChargeEnd(s, PaceLateNs(4 * kMs, min, on)), s.last);
}

TEST(ComputeBucket, PaceLearnsTheRestartLossOfALoopWokenFromAPause) {
  const uint64_t early = 5 * kMs, len = 20 * kMs;
  int64_t loss = 0;
  // 10 launches per ms all through: nothing lost.
  ASSERT_TRUE(PaceRestartLoss(50, 150, early, len, &loss));
  EXPECT_EQ(loss, 0);
  // 35 in the first 5 ms at 10 per ms after: 1.5 ms lost.
  ASSERT_TRUE(PaceRestartLoss(35, 150, early, len, &loss));
  EXPECT_EQ(loss, 1500 * static_cast<int64_t>(kMs) / 1000);
  // A burst at the start (a queue refilled): negative, bounded by the stretch.
  ASSERT_TRUE(PaceRestartLoss(100, 150, early, len, &loss));
  EXPECT_EQ(loss, -5 * static_cast<int64_t>(kMs));
  ASSERT_TRUE(PaceRestartLoss(100000, 150, early, len, &loss));
  EXPECT_EQ(loss, -static_cast<int64_t>(len));
  // Too little to tell: a short stretch, or few launches after the start.
  EXPECT_FALSE(PaceRestartLoss(35, 150, early, 14 * kMs, &loss));
  EXPECT_FALSE(PaceRestartLoss(2, 31, early, len, &loss));
  EXPECT_FALSE(PaceRestartLoss(2, 100, 0, len, &loss));

  // Learned over stretches: a steady loss of 1.5 ms is approached and credited (at most the
  // bound); a loop that alternates bursts and slow starts averages out and gets nothing.
  int64_t learned = 0;
  for (int i = 0; i < 64; ++i) learned = PaceLearnRestart(learned, 1500 * kMs / 1000);
  EXPECT_NEAR(static_cast<double>(PaceRestartCredit(learned, early / 2)), 1.5e6, 2e4);
  EXPECT_EQ(PaceRestartCredit(learned, kMs), kMs) << "bounded";
  int64_t mixed = 0;
  for (int i = 0; i < 64; ++i)
    mixed = PaceLearnRestart(
        mixed, i % 2 ? 1500 * static_cast<int64_t>(kMs) / 1000 : -3 * static_cast<int64_t>(kMs));
  EXPECT_EQ(PaceRestartCredit(mixed, early / 2), 0u);
  EXPECT_EQ(PaceRestartCredit(-1, early), 0u);
}

// A stretch grows with the share, so that a fixed loss at each start costs about the same
// points everywhere (40 ms at 50 %); low shares keep 20 ms (not 360 ms on at 10 %), high ones
// grow further to leave the pause.
TEST(ComputeBucket, PaceStretchesGrowWithTheShare) {
  const uint64_t at50 = 40 * kMs, off = 10 * kMs, max = 100 * kMs;
  EXPECT_EQ(PaceStretchLen(at50, off, 50, max), 40 * kMs);  // 40 on, 40 off
  EXPECT_EQ(PaceStretchLen(at50, off, 70, max), 56 * kMs);  // 56 on, 24 off
  EXPECT_EQ(PaceStretchLen(at50, off, 30, max), 24 * kMs);  // 24 on, 56 off
  EXPECT_EQ(PaceStretchLen(at50, off, 10, max), 20 * kMs);  // 20 on, 180 off
  EXPECT_EQ(PaceStretchLen(at50, off, 1, max), 20 * kMs);
  EXPECT_EQ(PaceStretchLen(at50, off, 90, max), 90 * kMs) << "the pause of 10 ms";
  EXPECT_EQ(PaceStretchLen(at50, off, 99, max), max);
  EXPECT_EQ(PaceStretchLen(at50, 0, 99, max), 79200 * kMs / 1000);
  // Unlimited: the length at 50 %, bounded.
  EXPECT_EQ(PaceStretchLen(at50, off, 0, max), at50);
  EXPECT_EQ(PaceStretchLen(at50, off, 100, max), at50);
  EXPECT_EQ(PaceStretchLen(200 * kMs, off, 100, max), max);
  // HAMI_COMPUTE_PACE_MS=5: short stretches still scale.
  EXPECT_EQ(PaceStretchLen(5 * kMs, 0, 50, max), 5 * kMs);
  EXPECT_EQ(PaceStretchLen(5 * kMs, 0, 10, max), 2500 * kMs / 1000);
}

TEST(ComputeBucket, ToleranceAdmitsOverlappingLaunchesWithoutRaisingTheShare) {
  // Two streams queue 1 ms kernels at 50 %: with a tolerance of one scaled charge the second
  // launch goes at once (they can overlap); over time the share is unchanged.
  uint64_t now = 1000000000, clock = now;  // no bank
  BucketParams p{50, 30000000, 2000000};
  EXPECT_EQ(BucketAdmit(&clock, now, 1000000, p), 0u);
  EXPECT_EQ(BucketAdmit(&clock, now, 1000000, p), 0u);
  EXPECT_EQ(BucketAdmit(&clock, now, 1000000, p), 2000000u);  // the third waits
  uint64_t admitted = 2;
  for (uint64_t t = now; t < now + 1000000000; t += 100000)
    while (BucketAdmit(&clock, t, 1000000, p) == 0) ++admitted;
  // 1 s at 50 % of 1 ms launches: 500, plus the initial burst of the tolerance.
  EXPECT_NEAR(static_cast<double>(admitted), 502, 3);
}

}  // namespace
}  // namespace hami::vgpu

namespace hami::vgpu {
namespace {

TEST(ComputeSoloTimes, BaselineIsTheRecentMinimumPerSignature) {
  static SoloTimes t;  // 40 KiB: keep off the stack
  t = SoloTimes{};
  EXPECT_EQ(t.Baseline(7), 0u);
  t.Add(7, 1000);
  t.Add(7, 1800);  // waited behind another container
  t.Add(7, 1010);
  EXPECT_EQ(t.Baseline(7), 0u) << "too few samples";
  t.Add(7, 2500);
  EXPECT_EQ(t.Baseline(7), 1000u);
  t.Add(8, 50);
  for (int i = 0; i < 4; ++i) t.Add(8, 60);
  EXPECT_EQ(t.Baseline(8), 50u);
  EXPECT_EQ(t.Baseline(7), 1000u) << "signatures are kept apart";
  // The kernel got slower for good (more data): after two windows the old minimum is gone.
  for (uint32_t i = 0; i < 2 * SoloTimes::kRotate; ++i) t.Add(7, 3000);
  EXPECT_EQ(t.Baseline(7), 3000u);
}

TEST(ComputeSoloTimes, CollidingSignaturesStillAnswer) {
  static SoloTimes t;
  t = SoloTimes{};
  for (uint64_t s = 1; s <= 3 * SoloTimes::kSize; ++s)
    for (int i = 0; i < 4; ++i) t.Add(s, s);
  // The most recent ones are present; nothing crashes or returns another signature's time.
  for (uint64_t s = 1; s <= 3 * SoloTimes::kSize; ++s) {
    uint64_t b = t.Baseline(s);
    EXPECT_TRUE(b == 0 || b == s) << s;
  }
  EXPECT_EQ(t.Baseline(3 * SoloTimes::kSize), 3 * SoloTimes::kSize);
}

TEST(ComputePowerRefs, ChargesTheProbesFullDutyTime) {
  static PowerRefs p;  // keep off the stack
  p = PowerRefs{};
  for (int i = 0; i < 8; ++i) p.Normal(5, 1000);
  EXPECT_EQ(p.Correct(5, 1000), 1000u) << "no probe yet";
  p.Probe(5, 1200, 1);
  p.Probe(5, 1200, 1);
  p.Confirm(1);
  EXPECT_EQ(p.Correct(5, 1000), 1000u) << "too few probe samples";
  for (int i = 0; i < 3; ++i) p.Probe(5, 1200, 2);
  EXPECT_EQ(p.Correct(5, 1000), 1000u) << "not confirmed yet: NVML may still show a neighbour";
  p.Confirm(2);
  EXPECT_EQ(p.Correct(5, 1000), 1200u) << "at full duty the work takes 1.2x";
  EXPECT_EQ(p.Correct(5, 1250), 1250u) << "already slow (card at its cap): as measured";
  EXPECT_EQ(p.Correct(5, 500), 600u) << "a shorter launch is raised by the ratio only";
  EXPECT_EQ(p.Correct(6, 1000), 1000u) << "another signature";
  // The next probe replaces the reference once confirmed; a ratio within noise means no
  // correction.
  for (int i = 0; i < 3; ++i) p.Probe(5, 1020, 3);
  EXPECT_EQ(p.Correct(5, 1000), 1200u);
  p.Confirm(3);
  EXPECT_EQ(p.Correct(5, 1000), 1000u);
  // A probe during which another process computed is forgotten; the reference before it
  // stays.
  for (int i = 0; i < 3; ++i) p.Probe(5, 1300, 4);
  p.Discard(4);
  p.Confirm(4);  // (nothing left to confirm)
  EXPECT_EQ(p.Correct(5, 1000), 1000u);
  for (int i = 0; i < 3; ++i) p.Probe(5, 1300, 5);
  p.Confirm(5);
  EXPECT_EQ(p.Correct(5, 1000), 1300u);
  for (int i = 0; i < 3; ++i) p.Probe(5, 1020, 6);
  p.Discard(6);
  EXPECT_EQ(p.Correct(5, 1000), 1300u) << "the last confirmed reference holds";
  // A ratio beyond kMaxRatio is not a lower clock but other work under the same signature
  // (a kernel of another workload of the process, with other data): no correction. Capped,
  // it charged an eager decoder 1.6x after a training loop's probe (H100, issue 17).
  for (int i = 0; i < 3; ++i) p.Probe(5, 5000, 7);
  p.Confirm(7);
  EXPECT_EQ(p.Correct(5, 1000), 1000u);
  for (int i = 0; i < 3; ++i) p.Probe(5, 1390, 8);
  p.Confirm(8);
  EXPECT_EQ(p.Correct(5, 1000), 1390u) << "just within kMaxRatio";
}

TEST(ComputePowerRefs, SamplesOfAConfirmedProbeThatCompleteLaterCount) {
  static PowerRefs p;
  p = PowerRefs{};
  for (int i = 0; i < 8; ++i) p.Normal(3, 1000);
  // Confirmed right after it ended, before its queued launches completed.
  p.Probe(3, 1200, 1);
  p.Confirm(1);
  EXPECT_EQ(p.Correct(3, 1000), 1000u) << "too few samples yet";
  p.Probe(3, 1200, 1);
  p.Probe(3, 1200, 1);
  EXPECT_EQ(p.Correct(3, 1000), 1200u);
}

TEST(ComputePowerRefs, NormalTimeFollowsTheRecentCharges) {
  static PowerRefs p;
  p = PowerRefs{};
  for (int i = 0; i < 3; ++i) p.Probe(9, 1300, 1);
  p.Confirm(1);
  p.Normal(9, 1000);
  EXPECT_EQ(p.Correct(9, 1000), 1300u);
  // The work got slower for good (more data): the normal time follows, the ratio shrinks.
  for (int i = 0; i < 64; ++i) p.Normal(9, 1700);
  EXPECT_EQ(p.Correct(9, 1700), 1700u);
}

}  // namespace
}  // namespace hami::vgpu
