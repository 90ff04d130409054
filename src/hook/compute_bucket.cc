#include "compute_bucket.h"

#include <type_traits>

namespace hami::vgpu {

uint64_t ScaledCharge(uint64_t gpu_ns, uint32_t limit_pct) {
  if (limit_pct == 0 || limit_pct >= 100) return gpu_ns;
  // 128-bit intermediate: gpu_ns * 100 overflows only past 5.8 years, but be exact anyway.
  return static_cast<uint64_t>(static_cast<unsigned __int128>(gpu_ns) * 100u / limit_pct);
}

uint64_t BucketAdmit(uint64_t* clock, uint64_t now, uint64_t est_ns, const BucketParams& p) {
  uint64_t cur = __atomic_load_n(clock, __ATOMIC_ACQUIRE);
  for (;;) {
    if (cur > now + p.tolerance_ns) return cur - now - p.tolerance_ns;
    uint64_t floor = now > p.burst_ns ? now - p.burst_ns : 0;
    uint64_t base = cur < floor ? floor : cur;
    uint64_t next = base + ScaledCharge(est_ns, p.limit_pct);
    if (__atomic_compare_exchange_n(clock, &cur, next, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return 0;
  }
}

void BucketCorrect(uint64_t* clock, int64_t delta_gpu_ns, uint32_t limit_pct) {
  if (delta_gpu_ns == 0) return;
  uint64_t mag = ScaledCharge(
      static_cast<uint64_t>(delta_gpu_ns < 0 ? -delta_gpu_ns : delta_gpu_ns), limit_pct);
  uint64_t cur = __atomic_load_n(clock, __ATOMIC_ACQUIRE);
  for (;;) {
    uint64_t next = delta_gpu_ns > 0 ? cur + mag : (cur > mag ? cur - mag : 0);
    if (__atomic_compare_exchange_n(clock, &cur, next, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return;
  }
}

uint64_t AppHostTime(uint64_t now, uint64_t prev_t, uint64_t prev_lim, uint64_t max_gap_ns,
                     uint64_t gpu_est) {
  if (prev_t == 0 || now <= prev_t + prev_lim) return 0;
  uint64_t app = now - prev_t - prev_lim;
  uint64_t pause = app > gpu_est ? app - gpu_est : 0;
  return pause < max_gap_ns ? app : 0;
}

uint64_t UpdateEstimate(uint64_t est_ns, uint64_t sample_ns) {
  if (est_ns == 0) return sample_ns;
  return est_ns - est_ns / 8 + sample_ns / 8;
}

uint64_t PaceLateNs(uint64_t learned_ns, uint64_t min_ns, uint64_t max_ns) {
  uint64_t late = learned_ns + learned_ns / 4;
  if (late > max_ns) late = max_ns;
  return late > min_ns ? late : min_ns;
}

uint64_t PaceLearnGap(uint64_t learned_ns, uint64_t stretch_ns) {
  uint64_t decayed = learned_ns - learned_ns / 8;
  return stretch_ns > decayed ? stretch_ns : decayed;
}

bool PaceRestartLoss(uint64_t n_early, uint64_t n_late, uint64_t early_ns, uint64_t len_ns,
                     int64_t* loss_ns) {
  if (early_ns == 0 || len_ns < 3 * early_ns || n_late < 32) return false;
  // At the rest's pace, n_early launches take n_early * (len - early) / n_late ns.
  double took = static_cast<double>(n_early) * static_cast<double>(len_ns - early_ns) /
                static_cast<double>(n_late);
  double loss = static_cast<double>(early_ns) - took;
  double bound = static_cast<double>(len_ns);  // a burst of many early launches: bounded
  *loss_ns = static_cast<int64_t>(loss < -bound ? -bound : loss);
  return true;
}

uint64_t PaceStretchLen(uint64_t at50_ns, uint64_t off_ns, uint32_t limit_pct, uint64_t max_ns) {
  uint64_t on = at50_ns;
  if (limit_pct > 0 && limit_pct < 100) {
    on = at50_ns * (limit_pct < 25 ? 25 : limit_pct) / 50;
    // on / (on + off) = limit: a pause of off_ns needs on >= off_ns * limit / (100 - limit)
    uint64_t need = off_ns * limit_pct / (100 - limit_pct);
    if (need > on) on = need;
  }
  return on < max_ns ? on : max_ns;
}

int64_t PaceLearnRestart(int64_t learned_ns, int64_t loss_ns) {
  return learned_ns + (loss_ns - learned_ns) / 8;
}

uint64_t PaceRestartCredit(int64_t learned_ns, uint64_t max_ns) {
  if (learned_ns <= 0) return 0;
  uint64_t c = static_cast<uint64_t>(learned_ns);
  return c < max_ns ? c : max_ns;
}

uint32_t PaceLearnGpu(uint32_t learned_pm, uint64_t est_ns, uint64_t span_ns) {
  if (span_ns == 0) return learned_pm;
  double q = 1000.0 * static_cast<double>(est_ns) / static_cast<double>(span_ns);
  uint32_t pm = q > 4000.0 ? 4000u : static_cast<uint32_t>(q);
  if (learned_pm == 0) return pm;
  int64_t l = static_cast<int64_t>(learned_pm);
  l += (static_cast<int64_t>(pm) - l) / 8;
  return static_cast<uint32_t>(l > 1 ? l : 1);
}

uint64_t PaceChargeEnd(const PaceStretch& s, uint64_t late_ns, uint64_t* carry) {
  uint64_t last = s.last < s.on_start ? s.on_start : s.last;
  uint64_t ran = last - s.on_start;
  uint64_t busy_until = last + (s.sum_est > ran ? s.sum_est - ran : 0);
  uint64_t held = busy_until > s.on_end ? busy_until : s.on_end;
  uint64_t end = s.now <= held + late_ns ? s.now : held;
  uint64_t tail_end = s.done;
  if (s.gpu_pm == 0) {  // the stretch's own estimate
    uint64_t gpu_end = s.on_start + s.sum_est;
    if (carry) {
      uint64_t real_end = s.done ? s.done : s.now;  // its work had ended by then
      if (gpu_end > real_end) {
        uint64_t cap = 4 * (s.on_end - s.on_start);
        *carry += gpu_end - real_end;
        if (*carry > cap) *carry = cap;
      } else if (s.done > gpu_end && s.done > end) {
        uint64_t from = gpu_end > end ? gpu_end : end;
        uint64_t take = s.done - from < *carry ? s.done - from : *carry;
        *carry -= take;
        gpu_end = from + take;
      }
    }
    if (gpu_end < tail_end) tail_end = gpu_end;
  } else if (s.gpu_pm < kPaceGpuBusyPm && s.done > s.on_start) {
    tail_end = s.on_start + (s.done - s.on_start) * s.gpu_pm / kPaceGpuBusyPm;
  }
  if (tail_end > end) end = tail_end;
  if (s.copies_done > end) end = s.copies_done;
  return end;
}

}  // namespace hami::vgpu

namespace hami::vgpu {

namespace {
constexpr int kProbe = 8;
uint32_t Home(uint64_t sig, int size) {
  return static_cast<uint32_t>((sig * 0x9E3779B97F4A7C15ull) >> 54) % static_cast<uint32_t>(size);
}
// The entry of `sig` in a table with open addressing over kProbe slots (fields `sig` and
// `used`), or nullptr. With `fresh` (a non-const table), a missing signature takes a free slot of
// its neighbourhood, else replaces its home entry; the entry is reset to `fresh`.
template <class E, int N>
E* Lookup(E (&tab)[N], uint64_t sig, const std::remove_const_t<E>* fresh) {
  uint32_t h = Home(sig, N);
  E* slot = nullptr;
  for (int i = 0; i < kProbe; ++i) {
    E& e = tab[(h + i) % N];
    if (e.used && e.sig == sig) return &e;
    if (!e.used && !slot) slot = &e;
  }
  if constexpr (std::is_const_v<E>) {
    return nullptr;
  } else {
    if (!fresh) return nullptr;
    if (!slot) slot = &tab[h];
    *slot = *fresh;
    return slot;
  }
}
}  // namespace

void SoloTimes::Add(uint64_t sig, uint64_t ns) {
  const Entry fresh{sig, ~0ull, ~0ull, 0, 1};
  Entry* slot = Lookup(e_, sig, &fresh);
  if (ns < slot->min_cur) slot->min_cur = ns;
  if (++slot->n % kRotate == 0) {
    slot->min_prev = slot->min_cur;
    slot->min_cur = ~0ull;
  }
}

uint64_t SoloTimes::Baseline(uint64_t sig) const {
  const Entry* e = Lookup(e_, sig, nullptr);
  if (!e || e->n < kMinSamples) return 0;
  return e->min_cur < e->min_prev ? e->min_cur : e->min_prev;
}

void PowerRefs::Normal(uint64_t sig, uint64_t ns) {
  const Entry fresh{sig, 0, 0, 0, 0, 0, 0, 1};
  Entry* e = Lookup(e_, sig, &fresh);
  e->normal = e->normal ? UpdateEstimate(e->normal, ns) : ns;
}

void PowerRefs::Probe(uint64_t sig, uint64_t ns, uint32_t probe) {
  const Entry fresh{sig, 0, 0, 0, 0, 0, 0, 1};
  Entry* e = Lookup(e_, sig, &fresh);
  if (e->probe_id != probe) {
    if (e->probe_id && e->probe_id <= confirmed_ && e->probe_n >= kMinProbeSamples) {
      e->ref = e->probe_sum / e->probe_n;
      e->ref_n = e->probe_n;
    }
    e->probe_id = probe;
    e->probe_sum = 0;
    e->probe_n = 0;
  }
  e->probe_sum += ns;
  ++e->probe_n;
}

void PowerRefs::Confirm(uint32_t probe) {
  if (probe > confirmed_) confirmed_ = probe;
}

void PowerRefs::Discard(uint32_t probe) {
  for (Entry& e : e_) {
    if (e.used && e.probe_id == probe) {
      e.probe_sum = 0;
      e.probe_n = 0;
    }
  }
}

uint64_t PowerRefs::Reference(const Entry& e, uint32_t* n) const {
  if (e.probe_id && e.probe_id <= confirmed_ && e.probe_n >= kMinProbeSamples) {
    *n = e.probe_n;
    return e.probe_sum / e.probe_n;
  }
  *n = e.ref_n;
  return e.ref;
}

uint64_t PowerRefs::Correct(uint64_t sig, uint64_t ns) const {
  const Entry* e = Lookup(e_, sig, nullptr);
  uint32_t n = 0;
  uint64_t r = e ? Reference(*e, &n) : 0;
  if (r == 0 || e->normal == 0 || ns == 0) return ns;
  double ref = static_cast<double>(r);
  double ratio = ref / static_cast<double>(e->normal);
  if (ratio < kMinRatio) return ns;
  if (ratio > kMaxRatio) return ns;  // the probe saw other work under this signature
  double raised = static_cast<double>(ns) < ref ? ref : static_cast<double>(ns);
  double bound = static_cast<double>(ns) * ratio;
  return static_cast<uint64_t>(raised < bound ? raised : bound);
}

}  // namespace hami::vgpu
