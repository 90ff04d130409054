// Compute (SM) limiter. Measures the GPU time each launch really takes with CUDA events
// recorded on the launching stream (no blocking: completions are polled at later launches),
// charges it to the container's token bucket in the shared accounting file, and delays
// launches while the bucket is empty. docs/compute-limiter.md explains the design.
//
// Only processes with a compute limit or an explicit priority get here (g_compute_enabled);
// everyone else pays one branch per launch. On the limited path a process-wide mutex guards
// the event bookkeeping (never held while sleeping or waiting on the GPU, except when the
// ring of pending measurements is full). This file: initialisation and the launch path;
// the measurements, policy, admission, pace mode and counters live in
// compute_events/policy/admit/pace/stats.cc.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi/node_layout.h"
#include "compute.h"
#include "compute_internal.h"
#include "glibc_compat.h"
#include "log.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {

bool g_compute_enabled = false;

namespace climit {

Stats g_stats;
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
CtxState* g_ctx[kMaxCtx];
DevLimiter g_dev[kMaxDevices];
uint64_t g_container_id = 0;
int g_priority = 1;
bool g_prio_explicit = false;
char g_board_dir[1024];
char g_contention_dir[1024];
__thread Stash t_stash;
ExchangeModeFn g_exchange_mode = nullptr;

}  // namespace climit

namespace {

using namespace climit;  // NOLINT: this file is the limiter's front end

// Board directory and the monitor's contention directory: configured, or the defaults.
void SetDirs() {
  const ComputeConfig& cc = Cfg();
  snprintf(g_board_dir, sizeof(g_board_dir), "%s",
           cc.board_dir[0] ? cc.board_dir : abi::kDefaultBoardDir);
  if (cc.contention_dir[0]) {
    snprintf(g_contention_dir, sizeof(g_contention_dir), "%s", cc.contention_dir);
    return;
  }
  // <hookPath>/vgpu/libvgpu.so -> <hookPath>/vgpu/contention (what the device plugin mounts).
  Dl_info info;
  g_contention_dir[0] = 0;
  if (dladdr(reinterpret_cast<void*>(&ComputeInit), &info) && info.dli_fname) {
    snprintf(g_contention_dir, sizeof(g_contention_dir), "%s", info.dli_fname);
    char* slash = strrchr(g_contention_dir, '/');
    if (slash) *slash = 0;
    size_t n = strlen(g_contention_dir);
    snprintf(g_contention_dir + n, sizeof(g_contention_dir) - n, "%s", abi::kContentionSubdir);
  }
}

// First part of a launch: the context's state, the stream's slot, completed measurements.
// False when the context is not tracked (out of memory: its launches are not limited).
bool Enter(CUcontext ctx, CUstream stream, CtxState** out, int* slot, bool* idle_at_entry,
           int16_t* entry_end, uint64_t* est, int ki) {
  pthread_mutex_lock(&g_mu);
  CtxState* c = FindCtx(ctx);
  bool ok = c != nullptr;
  if (ok) {
    Poll(c, false);
    *est = c->est[ki];
    *slot = StreamSlotOf(c, stream);
    // Whether the stream was already idle before any sleep of ours: only then is all of our
    // time before the launch part of the GPU's idle gap.
    *entry_end = c->streams[*slot].last_end;
    *idle_at_entry =
        *entry_end >= 0 && g_cuda.cuEventQuery(c->ev[*entry_end].ev) != CUDA_ERROR_NOT_READY;
  }
  pthread_mutex_unlock(&g_mu);
  *out = c;
  return ok;
}

// Waits as the policy, priority, turns and the bucket require. Returns whether the estimate
// was pre-charged to the bucket; *probe is the launch's relation to the power probes.
bool Throttle(CtxState* c, DevLimiter* d, int slot, int ki, uint64_t t0, uint64_t* est,
              uint8_t* probe) {
  uint64_t now = t0;
  Admission a{c, d, slot, ki, Throttling(d, now), false, 0};
  if (a.throttle) {
    pthread_mutex_lock(&g_mu);
    a.other_streams = OtherActiveStreams(c, slot, now);
    pthread_mutex_unlock(&g_mu);
  }
  if (a.throttle && *est == 0) {
    // No estimate of this kind of launch yet: wait for the first measurement rather than
    // queue a burst whose cost is unknown.
    pthread_mutex_lock(&g_mu);
    if (c->head != c->tail) Poll(c, true);
    *est = c->est[ki];
    pthread_mutex_unlock(&g_mu);
    now = Mono();
  }
  // Power probe: alone on the card and limited, now and then run unthrottled for a moment.
  if (Cfg().power && a.throttle && !d->contended) *probe = PowerProbeStep(d, now, &a.probing);
  bool bucket = Admit(&a, &now, est);
  // Announce our work before it is queued (a lower priority checking between our launch and
  // an announcement after it would queue its own work behind ours).
  if (g_prio_explicit) d->board.PublishLaunch(g_priority, now, *est);
  if (d->shm && now > t0)
    __atomic_fetch_add(&d->shm->limiter_state[kLimiterThrottled], now - t0, __ATOMIC_RELAXED);
  return bucket;
}

// After a launch: the turn's drain estimate, activity on the board (at most every 10 ms) and
// the last-kernel time in the accounting file (at most every 1 ms).
void MarkLaunched(DevLimiter* d, uint64_t est, uint64_t now) {
  if (Cfg().turns && d->contended) d->board.TurnLaunched(g_container_id, now, est);
  // Comparisons that hold when `now` is the coarse clock and the stamp came from Mono().
  if (now >= d->last_mark + kMarkActiveNs) {
    d->last_mark = now;
    d->board.MarkActive(g_container_id, now);
  }
  // The wall-clock stamp for the monitor, at most once per ms: reading the clock costs more
  // than the rest of an unthrottled launch's bookkeeping.
  if (d->shm && now >= d->last_kernel_mono + kMs) {
    d->last_kernel_mono = now;
    __atomic_store_n(&d->shm->last_kernel_ns, Realtime(), __ATOMIC_RELAXED);
  }
}

// Start event of a measured launch. False when it cannot be recorded (the launch then goes
// unmeasured; a dead context starts over).
bool RecordStart(CtxState* c, CUstream stream, int16_t* start) {
  *start = static_cast<int16_t>(AllocEvent(c));
  CUresult rr =
      *start < 0 ? CUDA_ERROR_OUT_OF_MEMORY : g_cuda.cuEventRecord(c->ev[*start].ev, stream);
  if (rr == CUDA_SUCCESS) return true;
  Unref(c, *start);
  if (Dead(rr)) ResetCtx(c);
  return false;
}

// End event after a launch. False when there is nothing to queue: another thread started the
// context over, the launch failed (its estimate is refunded) or no event could be recorded.
bool RecordEnd(CtxState* c, const Stash& st, CUstream stream, CUresult result, int16_t* end) {
  if (c->resets != st.gen) return false;  // another thread started the context over meanwhile
  if (result == CUDA_SUCCESS) {
    *end = static_cast<int16_t>(AllocEvent(c));
    CUresult rr = *end >= 0 ? g_cuda.cuEventRecord(c->ev[*end].ev, stream) : CUDA_SUCCESS;
    if (rr != CUDA_SUCCESS) {
      Unref(c, *end);
      *end = -1;
      if (Dead(rr)) {
        ResetCtx(c);
        return false;
      }
    }
  }
  if (*end >= 0) return true;
  // Failed launch (nothing to charge) or no event: refund the estimate, or keep it when the
  // launch ran unmeasured.
  Unref(c, st.start);
  Unref(c, st.prev);
  DevLimiter* d = DevOf(c);
  if (result != CUDA_SUCCESS && st.bucket && d)
    BucketCorrect(d->clock, -static_cast<int64_t>(st.est), d->limit);
  return false;
}

// The estimated GPU time of this thread's counted (unmeasured) launches not yet added to the
// accounting file's busy counter: added at most every kMs (coarse clock), at a change of
// device, and when the thread or the process exits, so that a counted launch costs no locked
// instruction.
__thread DevLimiter* t_busy_dev;
__thread uint64_t t_busy_ns;
__thread uint64_t t_busy_since;

void FlushBusy() {
  DevLimiter* d = t_busy_dev;
  if (d && d->shm && t_busy_ns)
    __atomic_fetch_add(&d->shm->busy_ns_total, t_busy_ns, __ATOMIC_RELAXED);
  t_busy_ns = 0;
}

// A thread's first counted launch registers a key whose destructor flushes at the thread's
// exit (a server's short-lived worker threads would otherwise take up to a flush period of
// GPU time each with them). The main thread's exit is the library destructor's.
pthread_key_t g_busy_key;
bool g_busy_key_ok;
void FlushBusyAtThreadExit(void*) { FlushBusy(); }
void MakeBusyKey() { g_busy_key_ok = pthread_key_create(&g_busy_key, FlushBusyAtThreadExit) == 0; }

void CountBusy(DevLimiter* d, uint64_t est, uint64_t now) {
  if (d != t_busy_dev || now >= t_busy_since + kMs) {
    if (!t_busy_dev) {
      static pthread_once_t once = PTHREAD_ONCE_INIT;
      pthread_once(&once, MakeBusyKey);
      if (g_busy_key_ok) pthread_setspecific(g_busy_key, &t_busy_ns);  // any non-null value
    }
    FlushBusy();
    t_busy_dev = d;
    t_busy_since = now;
  }
  t_busy_ns += est;
}

__attribute__((destructor)) void FlushBusyAtExit() { FlushBusy(); }

__thread int t_last_slot = -1;  // stream slot of this thread's last measured launch
__thread uint64_t st_t0;        // when that launch entered ComputeBeforeLaunch
__thread CUcontext t_ctx;       // the calling thread's last context and its state
__thread CtxState* t_ctx_state;
__thread bool t_pace_sample;  // the launch being sampled runs in pace mode (section 1b)

// Not throttled (policy default alone on the card, no priority): a launch costs a context
// lookup and a counter. About one launch per kSampleNs is measured (*sampled: the kernel
// alone, for the estimates); the others add their estimate to the busy counter, which the
// monitor and the NVML comparison read. True when the launch needs nothing more; otherwise
// *current is the launching context.
// The calling thread's current context and its limiter state (null: none, or not usable).
CtxState* CurrentCtx(CUcontext* current) {
  CUcontext ctx = nullptr;
  if (g_cuda.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr) return nullptr;
  *current = ctx;
  CtxState* c = t_ctx_state;
  // The entry may have been given to another context since (its own was destroyed, or made
  // room): look again.
  if (ctx != t_ctx || !c || __atomic_load_n(&c->ctx, __ATOMIC_RELAXED) != ctx) {
    pthread_mutex_lock(&g_mu);
    c = FindCtx(ctx);
    pthread_mutex_unlock(&g_mu);
    t_ctx = ctx;
    t_ctx_state = c;
  }
  return c;
}

// The limiter state of the calling thread's current context and its device (null: none).
DevLimiter* CurrentDev(CtxState** c) {
  CUcontext ctx = nullptr;
  *c = CurrentCtx(&ctx);
  return *c ? DevOf(*c) : nullptr;
}

bool Unmeasured(int ki, CUstream stream, uint64_t* t0, bool* sampled, CUcontext* current) {
  CtxState* c = CurrentCtx(current);
  if (!c) return true;
  DevLimiter* d = DevOf(c);
  if (!d || g_prio_explicit) {
    *t0 = Mono();
    return false;
  }
  t_pace_sample = false;
  // Unthrottled launches that are only counted need no more than the coarse clock; a
  // throttled or measured one reads the precise clock.
  uint64_t now = MonoCoarse();
  uint64_t gated = now;  // pace mode: when the launch passed the gate (a stretch's host gaps)
  if (Throttling(d, now)) {
    now = gated = *t0 = Mono();
    bool others = OthersOfContainer(d, now);  // also tells them about us
    if (others || !PaceApplies(d)) return false;
    gated = PaceGate(c, d, stream, now);  // pace mode (section 1b): sampled like `default`
    t_pace_sample = true;
  }
  uint64_t est = c->est[ki];
  bool skip;
  if (t_pace_sample) {
    // Pace mode: one sample per kSampleNs (its launches come in bursts), every launch of a
    // power probe (the probe's reference times, section 6).
    uint64_t since = PaceLaunched(d, est, gated);
    if (Cfg().stats && !d->pace.probe && since / kMs < kPaceBins) ++g_stats.pace.bin[since / kMs];
    skip = est && now - c->last_sample < kSampleNs && now >= d->probe_end;
  } else {
    // A cadence, not a count: threads racing here at worst sample one launch early or late,
    // and the launch path gets no locked instruction.
    uint32_t n = __atomic_load_n(&c->since_sample, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&c->since_sample, n, __ATOMIC_RELAXED);
    skip = est && n < c->sample_every;
  }
  if (skip) {
    d->local_busy += est;
    CountBusy(d, est, now);
    if (Cfg().stats) ++g_stats.fast;
    MarkLaunched(d, est, now);
    return true;
  }
  // Measure this one; aim at one measurement per kSampleNs.
  if (!t_pace_sample) now = Mono();
  *t0 = now;
  uint64_t since = now - c->last_sample;
  if (since < kSampleNs && c->sample_every < kMaxSampleEvery) c->sample_every *= 2;
  if (since > 4 * kSampleNs && c->sample_every > 1) c->sample_every /= 2;
  __atomic_store_n(&c->since_sample, 0, __ATOMIC_RELAXED);
  c->last_sample = now;
  *sampled = true;
  return false;
}

}  // namespace

void ComputeInit() {
  if (g_state.cfg.policy == CorePolicy::kDisable) {
    VGPU_LOG(kLogInfo, "compute: GPU_CORE_UTILIZATION_POLICY=disable, no compute limiting");
    return;
  }
  g_priority = g_state.cfg.priority;
  g_stats.t_init = Mono();
  if (void* h = CudaHandle())
    g_exchange_mode =
        reinterpret_cast<ExchangeModeFn>(RealDlsym()(h, "cuThreadExchangeStreamCaptureMode"));
  g_prio_explicit = g_state.cfg.priority_set;
  SetDirs();
  struct stat st;
  if (g_state.accounting && StatPath(g_state.cfg.shm_path, &st) == 0)
    g_container_id = (static_cast<uint64_t>(st.st_dev) << 40) ^ static_cast<uint64_t>(st.st_ino);
  else
    g_container_id = (1ull << 62) | static_cast<uint64_t>(getpid());
  if (g_container_id == 0) g_container_id = 1;

  bool any = false;
  for (int i = 0; i < g_state.ndev; ++i) {
    DevLimiter* d = &g_dev[i];
    uint32_t l = g_state.dev[i].sm_limit;
    d->limit = LimiterShare(l);
    d->clock = &d->local_clock;
    d->shm = nullptr;
    if (g_state.accounting && g_state.dev[i].entry >= 0) {
      d->shm = &g_state.acct.header()->devices[g_state.dev[i].entry];
      d->clock = &d->shm->limiter_state[kLimiterClock];
    }
    if (d->limit || g_prio_explicit) any = true;
  }
  if (!any) return;
  for (int i = 0; i < g_state.ndev; ++i) OpenBoard(i, &g_dev[i]);
  bool any_limit = false;
  for (int i = 0; i < g_state.ndev; ++i) any_limit = any_limit || g_dev[i].limit;
  if (g_state.cfg.policy == CorePolicy::kDefault && any_limit && LoadRealNvml() &&
      g_nvml.nvmlInit_v2() == NVML_SUCCESS) {
    for (int i = 0; i < g_state.ndev; ++i) {
      nvmlDevice_t h = nullptr;
      if (g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[i].uuid, &h) == NVML_SUCCESS)
        g_dev[i].nvml = h;
    }
  }
  VGPU_LOG(kLogInfo, "compute: limiter on (policy %d, priority %d)",
           static_cast<int>(g_state.cfg.policy), g_priority);
  __atomic_store_n(&g_compute_enabled, true, __ATOMIC_RELEASE);
}

void ComputeContextGone(CUcontext ctx) {
  pthread_mutex_lock(&g_mu);
  for (CtxState* c : g_ctx)
    if (c && c->ctx == ctx) DropCtx(c);
  pthread_mutex_unlock(&g_mu);
}

void ComputeStreamGone(CUstream stream) {
  pthread_mutex_lock(&g_mu);
  ForgetStream(stream);
  pthread_mutex_unlock(&g_mu);
}

void ComputeBeforeCopy(CUstream stream) {
  if (g_prio_explicit) return;
  CtxState* c = nullptr;
  DevLimiter* d = CurrentDev(&c);
  if (!d) return;
  // Only pace mode holds copies: per-launch accounting limits kernels alone (section 1b).
  if (!Throttling(d, MonoCoarse()) || !PaceApplies(d)) return;
  uint64_t now = Mono();
  if (OthersOfContainer(d, now) || Capturing(stream)) return;
  PaceLaunched(d, 0, PaceGate(c, d, stream, now, true));
  if (Cfg().stats) ++g_stats.pace.copies;
}

void ComputeAfterSync() {
  if (g_prio_explicit || !Cfg().pace) return;
  CtxState* c = nullptr;
  DevLimiter* d = CurrentDev(&c);
  // Only an open stretch reads it (and each stretch starts it afresh): unthrottled, nothing to do.
  if (d && ThrottledNow(d)) __atomic_store_n(&d->pace.t_last, Mono(), __ATOMIC_RELAXED);
}

void ComputeBeforeLaunch(CUstream stream, LaunchKind kind, uint64_t sig) {
  Stash& st = t_stash;
  st.active = false;
  uint64_t t0 = 0;
  const int ki = static_cast<int>(kind);
  bool sampled = false;
  CUcontext ctx = nullptr;
  if (Unmeasured(ki, stream, &t0, &sampled, &ctx) || Capturing(stream)) return;
  RelaxedCapture relaxed;
  CtxState* c = nullptr;
  int slot = 0;
  bool idle_at_entry = false;
  int16_t entry_end = -1;
  uint64_t est = 0;
  if (!Enter(ctx, stream, &c, &slot, &idle_at_entry, &entry_end, &est, ki)) return;
  DevLimiter* d = DevOf(c);
  bool bucket = false;
  uint8_t probe = kOutside;
  bool pace = sampled && t_pace_sample;
  if (pace && Cfg().power)
    probe = ProbeClass(d, t0);  // charged by its stretch; measured for the full-duty factor
  else if (d && !pace)
    bucket = Throttle(c, d, slot, ki, t0, &est, &probe);

  pthread_mutex_lock(&g_mu);
  if (c->ctx != ctx) {  // made room for another context meanwhile: charged at the estimate
    pthread_mutex_unlock(&g_mu);
    return;
  }
  // Too many launches in flight: wait for the oldest (bounds what a burst can queue before
  // its cost is known).
  if (c->tail - c->head >= kRing || c->nfree + (kEvents - c->nev) < 4) Poll(c, true);
  int16_t prev = c->streams[slot].last_end;
  Ref(c, prev);  // held until the launch is queued: another thread may replace last_end
  // Idle before our sleep is idle now; else ask the GPU. A sample's previous measured launch
  // may be long past (the ones in between had no events): ask the stream itself.
  bool idle = sampled ? g_cuda.cuStreamQuery(stream) != CUDA_ERROR_NOT_READY
                      : prev < 0 || (prev == entry_end && idle_at_entry) ||
                            g_cuda.cuEventQuery(c->ev[prev].ev) != CUDA_ERROR_NOT_READY;
  if (pace && d && Cfg().stats) PaceCountSample(d, t0, idle);
  int16_t start = -1;
  if (!RecordStart(c, stream, &start)) {
    Unref(c, prev);
    pthread_mutex_unlock(&g_mu);
    if (bucket) BucketCorrect(d->clock, -static_cast<int64_t>(est), d->limit);
    return;
  }
  uint64_t excl = Mono() - t0;  // our own host time before the launch
  // The application's host time per launch (section 1, "host time"): since this thread's
  // previous launch on the same stream, less the limiter's time then and now.
  const StreamSlot& sl = c->streams[slot];
  uint64_t app = t_last_slot == slot ? AppHostTime(t0, sl.t_launch, sl.lim_ns, kMaxGapNs, est) : 0;
  if (bucket) c->win_host += app;
  if (bucket && Cfg().stats) g_stats.host_ns += app;
  t_last_slot = slot;
  st_t0 = t0;
  st = Stash{true, c,    slot, start,     prev,  bucket,  idle, est,
             excl, kind, sig,  c->resets, probe, sampled, app,  pace};
  pthread_mutex_unlock(&g_mu);
}

void ComputeAfterLaunch(CUstream stream, LaunchKind kind, CUresult result) {
  Stash& st = t_stash;
  if (!st.active) return;
  st.active = false;
  uint64_t t_after = Mono();
  CtxState* c = st.c;
  DevLimiter* d = DevOf(c);
  RelaxedCapture relaxed;
  pthread_mutex_lock(&g_mu);
  int16_t end = -1;
  if (!RecordEnd(c, st, stream, result, &end)) {
    pthread_mutex_unlock(&g_mu);
    return;
  }
  StreamSlot& sl = c->streams[st.slot];
  Pending p;
  p.end = end;
  p.kind = static_cast<uint8_t>(kind);
  p.est = st.est;
  p.bucket = st.bucket;
  p.excl = st.excl;
  p.sig = st.sig;
  p.probe = st.probe;
  p.slot = static_cast<int16_t>(st.slot);
  p.app = st.app;
  p.pace = st.pace;
  {                     // measured from our start event
    p.from = st.start;  // keeps the reference AllocEvent gave it
    p.prev = -1;
    p.mode = st.idle && !st.plain ? kStart : kBusy;
    p.idle = st.idle;
    Unref(c, st.prev);
  }
  Ref(c, end);  // one for the ring, one (from AllocEvent) for the stream's last_end
  Unref(c, sl.last_end);
  sl.last_end = end;
  c->ring[c->tail % kRing] = p;
  ++c->tail;
  uint64_t now = Mono();
  sl.last_after = now;
  sl.t_launch = st_t0;
  sl.lim_ns = st.excl + (now - t_after);
  pthread_mutex_unlock(&g_mu);
  if (d) MarkLaunched(d, st.est, now);
}

}  // namespace hami::vgpu
