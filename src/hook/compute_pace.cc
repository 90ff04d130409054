// Pace mode of the compute limiter (docs/compute-limiter.md, section 1b): limited under the
// `force` policy and alone on the card, the container runs at its own pace for a stretch,
// unmeasured, then waits long enough for that stretch to be its share. Everything a per-launch
// limiter adds to a launch loop (events, the queue drained before every admission, host code
// woken from a sleep before every launch) is gone from the stretch, so the stretch runs as the
// loop runs unlimited, and charging its wall time gives exactly the share of that throughput.
#include <stdio.h>
#include <unistd.h>

#include "compute_internal.h"
#include "log.h"
#include "real.h"

namespace hami::vgpu::climit {
namespace {

constexpr unsigned kEventDisableTiming = 0x2;  // CU_EVENT_DISABLE_TIMING: a cheaper event

__thread CUstream t_note_stream;  // the stream this thread last noted, and in which stretch
__thread uint32_t t_note_gen = ~0u;
__thread bool t_note_kernel;  // ... and whether a kernel was noted on it

// Remembers `stream` as one to drain at the end of the stretch (once per thread and stream,
// and once more when the first kernel follows copies).
void NoteStream(CtxState* c, PaceState* p, CUstream stream, bool kernel) {
  uint32_t gen = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
  if (stream == t_note_stream && gen == t_note_gen && (t_note_kernel || !kernel)) return;
  pthread_mutex_lock(&p->mu);
  int i = 0;
  while (i < p->nstreams && !(p->streams[i] == stream && p->ctxs[i] == c)) ++i;
  if (i == p->nstreams && p->nstreams < kPaceStreams) {  // more: the extra ones are not drained
    p->streams[i] = stream;
    p->ctxs[i] = c;
    p->kernels[i] = false;
    ++p->nstreams;
  }
  if (i < p->nstreams) p->kernels[i] = p->kernels[i] || kernel;
  t_note_stream = stream;
  t_note_gen = p->gen;
  t_note_kernel = i < p->nstreams ? p->kernels[i] : kernel;
  pthread_mutex_unlock(&p->mu);
}

// When the stretch's queued work finished (CLOCK_MONOTONIC, as first seen by polling): all of
// it, and that on streams that only copied (0: nothing was left to wait for).
struct Drained {
  uint64_t done, copies_done;
};

// Waits until the work queued in the stretch on the context's noted streams has run.
Drained Drain(CtxState* c, PaceState* p, uint64_t now) {
  bool pending[kPaceStreams] = {};
  int n = 0;
  for (int i = 0; i < p->nstreams; ++i) {
    if (p->ctxs[i] != c || Capturing(p->streams[i])) continue;  // another context: not ours
    if (!c->pace_ev[i] &&
        g_cuda.cuEventCreate(&c->pace_ev[i], kEventDisableTiming) != CUDA_SUCCESS) {
      c->pace_ev[i] = nullptr;
      continue;
    }
    pending[i] = g_cuda.cuEventRecord(c->pace_ev[i], p->streams[i]) == CUDA_SUCCESS;
    n += pending[i];
  }
  Drained r{0, 0};
  // Polled, not cuEventSynchronize: the wait is bounded (work that waits on something this
  // process has not done yet, e.g. a kernel spinning on a flag another thread sets, would
  // never finish while that thread waits for us); what runs on is charged to the next stretch.
  // All streams in turn, so that each one's end is seen when it comes.
  uint64_t t = now;
  while (n > 0) {
    for (int i = 0; i < p->nstreams; ++i) {
      if (!pending[i] || g_cuda.cuEventQuery(c->pace_ev[i]) == CUDA_ERROR_NOT_READY) continue;
      pending[i] = false;
      --n;
      if (t == now) continue;  // done before the first look: nothing to wait for
      r.done = t;
      if (!p->kernels[i]) r.copies_done = t;
    }
    if (n == 0) break;
    t = Mono();
    if (t - now >= kPaceDrainMaxNs) {
      r.done = t;
      break;
    }
  }
  if (Cfg().stats && r.done) g_stats.pace.drain_ns += r.done - now;
  return r;
}

// The factor by which the stretch's work is slower at full duty than at the share
// (section 6), from the sampled launches of the stretch (their measured and corrected time);
// the last known factor when the stretch had none.
double FullDutyFactor(CtxState* c, DevLimiter* d) {
  pthread_mutex_lock(&g_mu);
  Poll(c, false);
  PaceState* p = &d->pace;
  if (p->raw > 0) p->factor = static_cast<double>(p->cor) / static_cast<double>(p->raw);
  p->raw = p->cor = 0;
  double f = p->factor > 1.0 ? p->factor : 1.0;
  pthread_mutex_unlock(&g_mu);
  return f;
}

// Ends the open stretch at `now`: drains its work and charges it. Under p->mu.
void Close(CtxState* c, DevLimiter* d, uint64_t now) {
  PaceState* p = &d->pace;
  if (p->probe) return;  // a probe runs unthrottled and is not charged (section 6)
  // A stretch open across a change of the share (the limits file) is dropped, not charged:
  // it may have run unlimited for seconds in between, and its launches were not all seen.
  if (p->on_start <= __atomic_load_n(&d->limit_changed, __ATOMIC_RELAXED)) return;
  PaceStretch st{p->on_start,
                 p->on_end,
                 __atomic_load_n(&p->t_last, __ATOMIC_RELAXED),
                 __atomic_load_n(&p->sum_est, __ATOMIC_RELAXED),
                 now,
                 0,
                 0,
                 0};
  Drained dr = Drain(c, p, now);
  st.done = dr.done;
  st.copies_done = dr.copies_done;
  // The loop's own host gaps (seen inside the stretches, where it runs as unlimited) are its
  // work, not pauses: after a synchronise a training step may compute on the host for a few
  // ms before its next launch, and those ms, free, gave it up to 1.25x its share.
  p->gap_learned = PaceLearnGap(p->gap_learned, __atomic_load_n(&p->gap_max, __ATOMIC_RELAXED));
  uint64_t late = PaceLateNs(p->gap_learned, kPaceLateNs, p->on_end - p->on_start);
  if (Cfg().pace_tail == 1) {
    // The GPU's busy share, over the stretch's time until its work finished (a closing launch
    // that came late ends nothing: the loop paused after the stretch, idle on both sides).
    uint64_t ran_to = now > p->on_end + late ? p->on_end : now;
    p->gpu_learned = PaceLearnGpu(p->gpu_learned, st.sum_est,
                                  (dr.done > ran_to ? dr.done : ran_to) - st.on_start);
    st.gpu_pm = p->gpu_learned ? p->gpu_learned : 1;
  }
  uint64_t carry_was = p->tail_carry;
  uint64_t end = PaceChargeEnd(st, late, Cfg().pace_tail == 2 ? &p->tail_carry : nullptr);
  // A loop woken from the pause runs its first ms slower than it runs on (host and GPU come
  // back from idle): that loss, learned from its launches' pace, is not its work.
  uint64_t credit = 0;
  if (Cfg().pace_restart) {
    uint64_t n_all = __atomic_load_n(&p->n_all, __ATOMIC_RELAXED);
    uint64_t n_early = __atomic_load_n(&p->n_early, __ATOMIC_RELAXED);
    int64_t loss = 0;
    if (n_early <= n_all &&
        PaceRestartLoss(n_early, n_all - n_early, kPaceEarlyNs, p->on_end - p->on_start, &loss))
      p->restart_learned = PaceLearnRestart(p->restart_learned, loss);
    uint64_t quarter = (end - p->on_start) / 4;
    credit = PaceRestartCredit(p->restart_learned,
                               quarter < kPaceEarlyNs / 2 ? quarter : kPaceEarlyNs / 2);
  }
  double f = Cfg().power ? FullDutyFactor(c, d) : 1.0;
  uint64_t charge = static_cast<uint64_t>(static_cast<double>(end - p->on_start - credit) * f);
  BucketCorrect(d->clock, static_cast<int64_t>(charge), d->limit);
  if (Cfg().stats) {
    uint64_t len_ms = (p->on_end - p->on_start) / kMs;
    for (uint64_t k = 0; k < len_ms && k < kPaceBins; ++k) ++g_stats.pace.bin_n[k];
    ++g_stats.pace.stretches;
    g_stats.pace.charged_ns += charge;
    g_stats.pace.restart_ns += credit;
    g_stats.pace.ran_ns += now - p->on_start;
    g_stats.pace.est_ns += st.sum_est;
    g_stats.pace.samples += __atomic_load_n(&p->n_samp, __ATOMIC_RELAXED);
    g_stats.pace.idle_samples += __atomic_load_n(&p->n_idle, __ATOMIC_RELAXED);
    g_stats.pace.early_samples += __atomic_load_n(&p->n_samp_early, __ATOMIC_RELAXED);
    g_stats.pace.early_idle_samples += __atomic_load_n(&p->n_idle_early, __ATOMIC_RELAXED);
    if (dr.done > end) g_stats.pace.tail_free_ns += dr.done - end;
    if (p->tail_carry < carry_was) g_stats.pace.carried_ns += carry_was - p->tail_carry;
  }
}

// Opens the next stretch: a power probe when one is due, else once the bucket admits.
void Open(DevLimiter* d, uint64_t now) {
  PaceState* p = &d->pace;
  bool probing = false;
  if (Cfg().power) PowerProbeStep(d, now, &probing);
  p->probe = probing;
  uint64_t end = probing ? d->probe_end : 0;
  if (!probing) {
    uint64_t t0 = now;
    BucketParams bp{d->limit, kBurstNs};
    for (;;) {
      uint64_t wait = BucketAdmit(d->clock, now, 0, bp);
      if (wait == 0) break;
      SleepNs(wait < kSleepChunkNs ? wait : kSleepChunkNs);
      now = Mono();
      if (!Throttling(d, now) || !PaceApplies(d)) break;  // policy or contention changed
    }
    if (now > t0) {
      if (d->shm)
        __atomic_fetch_add(&d->shm->limiter_state[kLimiterThrottled], now - t0, __ATOMIC_RELAXED);
      if (Cfg().stats) g_stats.pace.wait_ns += now - t0;
    }
    end = now + PaceStretchNs(d->limit);
  }
  __atomic_store_n(&p->on_start, now, __ATOMIC_RELAXED);
  p->nstreams = 0;
  __atomic_store_n(&p->n_early, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_all, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->sum_est, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_samp, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_idle, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_samp_early, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_idle_early, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->t_last, now, __ATOMIC_RELAXED);
  __atomic_store_n(&p->gap_max, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&p->on_end, end, __ATOMIC_RELEASE);
}

}  // namespace

namespace {
uint64_t PresencePid() { return static_cast<uint64_t>(getpid()) & 0xffffff; }
}  // namespace

bool OthersOfContainer(DevLimiter* d, uint64_t now) {
  if (!d->shm) return false;
  uint64_t* word = &d->shm->limiter_state[kLimiterPresence];
  uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
  static const uint64_t me = PresencePid();
  uint64_t ms = now / kMs, pid = v & 0xffffff, t = v >> 24;
  if (v && pid != me && ms < t + 1000) d->pace.others_until = now + 1000 * kMs;
  if (pid != me || ms >= t + 10) __atomic_store_n(word, (ms << 24) | me, __ATOMIC_RELAXED);
  return now < d->pace.others_until;
}

// A process that exits takes its presence stamp with it (if it is still the last one): the
// container's next process, started within the second, would otherwise take it for a
// neighbour and spend its first second in per-launch accounting, its copies not held (a
// script running short jobs one after another). A process killed outright leaves its stamp,
// and the next one waits out the second as before: the safe side, since a pid of another
// pid namespace cannot be checked for life.
__attribute__((destructor)) void ClearPresenceAtExit() {
  const uint64_t me = PresencePid();
  for (int i = 0; i < g_state.ndev && i < kMaxDevices; ++i) {
    if (!g_dev[i].shm) continue;
    uint64_t* word = &g_dev[i].shm->limiter_state[kLimiterPresence];
    uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (v && (v & 0xffffff) == me)
      __atomic_compare_exchange_n(word, &v, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  }
}

uint64_t PaceStretchNs(uint32_t limit_pct) {
  return PaceStretchLen(Cfg().pace_on_ns, Cfg().pace_off_ns, limit_pct, kPaceMaxOnNs);
}

uint64_t PaceGate(CtxState* c, DevLimiter* d, CUstream stream, uint64_t now, bool copy) {
  PaceState* p = &d->pace;
  if (now >= __atomic_load_n(&p->on_end, __ATOMIC_ACQUIRE)) {
    RelaxedCapture relaxed;
    pthread_mutex_lock(&p->mu);
    uint64_t t = Mono();
    if (t >= p->on_end) {  // no other thread opened the next stretch meanwhile
      if (p->on_start) Close(c, d, t);
      Open(d, Mono());
    }
    pthread_mutex_unlock(&p->mu);
    now = Mono();
  }
  NoteStream(c, p, stream, !copy);
  return now;
}

}  // namespace hami::vgpu::climit
