// Admission of one launch by the compute limiter: a more important process first (priority,
// docs/compute-limiter.md section 4), then the turn among limited containers sharing the GPU
// (section 5), then the container's token bucket (section 2). Sleeps without holding g_mu.
#include "compute_internal.h"

namespace hami::vgpu::climit {
namespace {

// A more important process is busy or around: the ns to wait before launching (0: go). Keeps
// at most one launch of ours in flight while it is around, so it never waits behind a queue
// of our work; that wait is an event synchronize (precise; a sleep would overshoot by the
// timer slack), after which *waited is set and the caller re-checks everything.
uint64_t PriorityWait(Admission* a, uint64_t now, uint64_t* est, bool* waited) {
  *waited = false;
  DevLimiter* d = a->d;
  CtxState* c = a->c;
  uint64_t hb = d->board.HigherBusyUntil(g_priority, now, kPrioRecentNs);
  if (!hb && !d->monitor_higher) return 0;
  if (hb + kPrioGraceNs > now) return hb + kPrioGraceNs - now;
  pthread_mutex_lock(&g_mu);
  int le = c->streams[a->slot].last_end;
  bool busy = le >= 0 && g_cuda.cuEventQuery(c->ev[le].ev) == CUDA_ERROR_NOT_READY;
  if (busy) Ref(c, le);
  pthread_mutex_unlock(&g_mu);
  if (!busy) return 0;
  g_cuda.cuEventSynchronize(c->ev[le].ev);
  pthread_mutex_lock(&g_mu);
  Unref(c, le);
  Poll(c, false);
  *est = c->est[a->kind];
  pthread_mutex_unlock(&g_mu);
  *waited = true;
  return 0;
}

// Sharing the GPU with other limited containers: launch only while holding the turn
// (Board::TurnAcquire). Returns the ns to wait; *busy when another container holds it.
uint64_t TurnWaitNs(DevLimiter* d, uint64_t now, bool* busy, uint32_t* seq) {
  bool had = Cfg().stats && d->board.TurnHeldBy(g_container_id);
  uint64_t wait = d->board.TurnAcquire(g_container_id, now, Cfg().max_turn_ns,
                                       Cfg().turn_overlap_ns, busy, seq);
  if (Cfg().stats) {
    if (!had && d->board.TurnHeldBy(g_container_id)) ++g_stats.turns_taken;
    if (wait) {
      ++g_stats.turn_waits;
      g_stats.turn_wait_ns += wait;
    }
  }
  return wait;
}

// The processes of one container at an empty bucket: the one admitted last waits kYieldNs
// longer while another waits too (limiter_state[3] and [4]).
struct BucketTurn {
  uint64_t me = 0;
  uint64_t* last_admit = nullptr;
  uint64_t* waiters = nullptr;
  bool waiting = false;  // counted in *waiters

  explicit BucketTurn(DevLimiter* d) {
    me = static_cast<uint64_t>(g_state.acct.slot_index() + 1);  // no syscall on this path
    if (d->shm && me != 0) {
      last_admit = &d->shm->limiter_state[kLimiterLastAdmit];
      waiters = &d->shm->limiter_state[kLimiterWaiters];
    }
  }
  ~BucketTurn() {
    if (waiting) __atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
  }
  void Admitted() {
    if (last_admit) __atomic_store_n(last_admit, me, __ATOMIC_RELAXED);
  }
  uint64_t Waiting() {
    if (!waiters) return 0;
    if (!waiting) __atomic_fetch_add(waiters, 1, __ATOMIC_RELAXED);
    waiting = true;
    return __atomic_load_n(waiters, __ATOMIC_RELAXED) >= 2 &&
                   __atomic_load_n(last_admit, __ATOMIC_RELAXED) == me
               ? kYieldNs
               : 0;
  }
};

// Admission groups across streams (CtxState::group_t): whether this launch may go beside the
// group's leader, and opening a group.
bool JoinsGroup(Admission* a, uint64_t now) {
  if (a->other_streams == 0) return false;
  uint64_t g = __atomic_load_n(&a->c->group_t, __ATOMIC_RELAXED);
  uint64_t* mine = &a->c->streams[a->slot].group;
  if (g == 0 || now - g >= kGroupNs || __atomic_load_n(mine, __ATOMIC_RELAXED) == g) return false;
  __atomic_store_n(mine, g, __ATOMIC_RELAXED);
  return true;
}
void LeadGroup(Admission* a, uint64_t now) {
  __atomic_store_n(&a->c->group_t, now, __ATOMIC_RELAXED);
  __atomic_store_n(&a->c->streams[a->slot].group, now, __ATOMIC_RELAXED);
}

}  // namespace

bool Admit(Admission* a, uint64_t* now, uint64_t* est) {
  DevLimiter* d = a->d;
  CtxState* c = a->c;
  BucketParams bp{d->limit, kBurstNs};
  BucketTurn bt(d);
  bool bucket = false;
  for (;;) {
    uint64_t wait = 0;
    if (g_prio_explicit || d->limit) {
      bool waited = false;
      wait = PriorityWait(a, *now, est, &waited);
      if (waited) {
        *now = Mono();
        continue;  // the higher priority may have launched meanwhile
      }
    }
    // Sharing the GPU with other limited containers: bank enough for the others' turns too.
    bool turns = Cfg().turns && a->throttle && d->contended && d->board.is_open();
    bool turn_busy = false;
    uint32_t turn_seq = 0;
    if (wait == 0 && turns) wait = TurnWaitNs(d, *now, &turn_busy, &turn_seq);
    if (wait == 0 && a->throttle && !a->probing) {
      bp.burst_ns = turns ? kTurnBurstNs : kBurstNs;
      bool beside = JoinsGroup(a, *now);
      bp.tolerance_ns = beside ? kMs * 1000 : 0;  // beside the group's leader: no wait
      wait = BucketAdmit(d->clock, *now, *est, bp);
      if (wait == 0) {
        bucket = true;
        bt.Admitted();
        if (!beside) LeadGroup(a, *now);
      } else {
        if (turns) d->board.TurnRelease(g_container_id);  // our share is used: next one's turn
        wait += bt.Waiting();
      }
    }
    if (wait == 0) return bucket;
    if (Cfg().stats) {
      ++g_stats.waits;
      g_stats.wait_ns += wait;
    }
    if (turn_busy)
      d->board.TurnWait(turn_seq, wait);  // woken as soon as the owner gives the turn back
    else
      SleepNs(wait < kSleepChunkNs ? wait : kSleepChunkNs);
    pthread_mutex_lock(&g_mu);
    Poll(c, false);
    *est = c->est[a->kind];
    pthread_mutex_unlock(&g_mu);
    *now = Mono();
    a->throttle = Throttling(d, *now);
  }
}

}  // namespace hami::vgpu::climit
