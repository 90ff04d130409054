// Internals of the compute limiter shared by its files (compute.cc: init and the launch
// path; compute_events.cc: events and measurements; compute_policy.cc: contention and power
// probes; compute_admit.cc: priority, turns and the bucket). Not used outside src/hook.
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "abi/cuda_abi.h"
#include "compute.h"
#include "compute_board.h"
#include "compute_bucket.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu::climit {

inline constexpr uint64_t kMs = 1000000ull;
inline constexpr uint64_t kBurstNs = 30 * kMs;      // wall time an idle container may bank
inline constexpr uint64_t kMaxGapNs = 250000;       // idle gaps shorter than this are charged
inline constexpr uint64_t kSleepChunkNs = 2 * kMs;  // re-check period while throttled
inline constexpr uint64_t kContendedWindowNs = 1000 * kMs;
inline constexpr uint64_t kContentionCheckNs = 100 * kMs;
inline constexpr uint64_t kPrioRecentNs =
    1000 * kMs;                                    // a higher priority counts as present this long
inline constexpr uint64_t kPrioGraceNs = 1 * kMs;  // quiet time after its estimated work ends
inline constexpr uint64_t kMarkActiveNs = 10 * kMs;
inline constexpr double kNvmlMarginPct = 20;  // device utilisation above our own share, in points
// The window of the container's own share that NVML's utilisation is compared with.
inline constexpr uint64_t kNvmlSpanMinNs = 300 * kMs;
inline constexpr uint64_t kNvmlSpanMaxNs = 1200 * kMs;
// How often the limits file is looked at for a new compute share (a stat; read on a change).
inline constexpr uint64_t kReloadCheckNs = 500 * kMs;
// A power probe's launch on an idle stream is a sample from this length on: its span also
// holds the host's submission (tens of us), under 2 % of it (section 6).
inline constexpr uint64_t kIdleProbeSampleNs = 2 * kMs;
// Contexts tracked per process; a process using more makes room by charging and forgetting
// one of the others in turn (FindCtx).
inline constexpr int kMaxCtx = 32;
inline constexpr int kEvents = 512;
inline constexpr int kRing = 128;
inline constexpr int kStreams = 64;
inline constexpr int kLimiterClock = 0;      // limiter_state[] words in the accounting file
inline constexpr int kLimiterThrottled = 1;  // ns spent throttled, all processes
inline constexpr int kLimiterLaunches = 2;   // launches measured, all processes
inline constexpr int kLimiterLastAdmit = 3;  // accounting slot + 1 of the process admitted last
inline constexpr int kLimiterWaiters = 4;    // processes waiting for the bucket now
inline constexpr int kLimiterPresence = 5;   // last throttled launch: (ms << 24) | (pid & 0xffffff)
// A process that was admitted last and finds another process of its container waiting for
// the bucket too waits this much longer, so the other one is admitted first: without it the
// process whose wake-up happens to come first wins every time and the other can starve.
inline constexpr uint64_t kYieldNs = 200000;
// Not throttled: measure about one launch per kSampleNs (enough for the estimates, the busy
// counter and the NVML comparison), count the others at the estimate.
inline constexpr uint64_t kSampleNs = 1 * kMs;
inline constexpr uint32_t kMaxSampleEvery = 4096;
// A stream that launched this recently is still "in use" (multi-stream admission tolerance).
inline constexpr uint64_t kActiveStreamNs = 50 * kMs;
inline constexpr uint64_t kGroupNs = 200000;
inline constexpr uint64_t kWindowNs = 20 * kMs;  // host-time window
inline constexpr uint64_t kTurnBurstNs =
    60 * kMs;  // bank while taking turns (covers others' turns)
// Power probes (PowerRefs): while limited and alone on the card, run unthrottled for
// probe_ns every probe_every_ns (the first after kFirstProbeNs of throttling), learning
// from the launches queued after the first 2/3 of it what the work takes at full duty.
inline constexpr uint64_t kFirstProbeNs = 50 * kMs;
inline constexpr uint64_t kAfterProbeNs = 300 * kMs;   // the card is still slow: not "normal" yet
inline constexpr uint64_t kProbeRetryNs = 5000 * kMs;  // another process on the card: ask again
// "Alone on the card" (AloneOnCard) before a probe, when NVML lists other processes: none of
// them computed in the last second by NVML's per-process utilisation (its samples lag a
// sample period, 1/6 s to 1 s by product). After such a probe the same is asked for the
// probe's time, kProbeCheckNs after its end (a sample period later), and not at all once
// kProbeCheckMaxNs have passed (the driver keeps a limited number of samples): the probe is
// then discarded.
inline constexpr uint64_t kRecentComputeUs = 1000000;
inline constexpr uint64_t kProbeCheckNs = 300 * kMs;
inline constexpr uint64_t kProbeCheckMaxNs = 5000 * kMs;
// NVML per-process utilisation samples read at once (a stack buffer of 4 KiB, at probe
// decisions and contention checks only). The H100's driver (580) returns one sample per
// process, its latest, but asks for room for 72 when asked how many (utilization NULL): a
// buffer it finds too small would read as "cannot tell".
inline constexpr unsigned kUtilSamples = 128;
// Pace mode (section 1b): streams whose work a stretch drains, and how late after the end of a
// stretch a launch still counts as the application running on (its host time up to that
// launch is charged; a later one means it paused, and only the stretch is charged).
inline constexpr int kPaceStreams = 8;
inline constexpr uint64_t kPaceLateNs = 2 * kMs;        // PaceLateNs's floor
inline constexpr uint64_t kPaceDrainMaxNs = 100 * kMs;  // longest wait for a stretch's work
inline constexpr uint64_t kPaceMaxOnNs = 100 * kMs;     // longest stretch
inline constexpr uint64_t kPaceEarlyNs = 5 * kMs;       // a stretch's restart (PaceRestartLoss)
inline constexpr int kPaceBins = 32;                    // HAMI_COMPUTE_STATS: ms per stretch

inline uint64_t ClockNs(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t Mono() { return ClockNs(CLOCK_MONOTONIC); }
// CLOCK_MONOTONIC_COARSE: the same clock at tick resolution (a few ms, never ahead of Mono()),
// for a fifth of the cost; what an unthrottled launch needs (contention checks, marks).
inline uint64_t MonoCoarse() { return ClockNs(CLOCK_MONOTONIC_COARSE); }
inline uint64_t Realtime() { return ClockNs(CLOCK_REALTIME); }
inline void SleepNs(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
  nanosleep(&ts, nullptr);
}
// Tunables (compute_config.h), parsed once with the configuration.
inline const ComputeConfig& Cfg() { return g_state.cfg.compute; }

// Counters for HAMI_COMPUTE_STATS=1 (printed at exit): per measuring mode, launches, GPU time
// charged, raw event span and limiter time excluded; and time spent throttled.
struct Stats {
  uint64_t n[3], charge[3], span[3], excl[3];
  uint64_t waits, wait_ns;
  uint64_t turn_waits, turn_wait_ns, turns_taken;
  uint64_t probes, power_extra_ns;
  uint64_t probes_discarded;  // another process computed during them (or NVML could not tell)
  uint64_t fast, overlap_ns;  // launches not measured (unthrottled); overlap not charged
  uint64_t host_extra_ns;     // host time charged beyond the GPU time (windows)
  uint64_t host_ns;           // application host time of admitted launches (windows)
  struct Pace {  // pace mode's counters (started over at a share change: PacePeriodStats)
    uint64_t stretches, charged_ns, drain_ns, wait_ns, tail_free_ns;
    uint64_t copies;                 // asynchronous copies and memsets that passed the pace gate
    uint64_t restart_ns;             // restart credit given to stretches (PaceRestartCredit)
    uint64_t ran_ns;                 // stretches from their start to the launch that ended them
    uint64_t est_ns;                 // the stretches' launches' estimated GPU time (sum_est)
    uint64_t samples, idle_samples;  // sampled launches in stretches, on an idle stream
    uint64_t early_samples, early_idle_samples;  // the same in their first kPaceEarlyNs
    uint64_t carried_ns;  // tails charged from the carried overshoot (TAIL=2)
    // Launches by ms since their stretch opened, and the stretches that lasted past each ms:
    // the loop's pace through a stretch (its restart cost after a pause).
    uint64_t bin[kPaceBins], bin_n[kPaceBins];
  } pace;
  uint64_t ctx_restarts;       // contexts whose events died, started over (ResetCtx)
  uint64_t ctx_evictions;      // tracked contexts forgotten to make room for another (FindCtx)
  uint64_t stream_table_full;  // a new stream took another's slot: every slot was in use
  uint64_t t_init;             // CLOCK_MONOTONIC at ComputeInit (charge / wall at exit)
};
extern Stats g_stats;
// With HAMI_COMPUTE_STATS=1, when the limits file changes the share: the pace-mode counters
// gathered at the share `share_pct` that ends, then started over (one period per share).
void PacePeriodStats(uint32_t share_pct);

struct EventSlot {
  CUevent ev;
  int refs;
};

// How a launch was queued: on a busy stream (kBusy) or an idle one (kStart). Both are
// measured from a start event recorded just before the launch to an end event after it: the
// start event completes when the stream's previous work does, so the span is the launch's own
// GPU time. Gaps between launches are charged through the host-time windows instead.
enum Mode : uint8_t { kBusy, kStart };

// One launch whose GPU time is not yet known.
struct Pending {
  int16_t from;  // start event
  int16_t prev;  // unused (-1)
  int16_t end;
  uint8_t mode;  // kBusy or kStart
  bool idle;     // queued on an idle stream: the span also holds the host's submission
  bool bucket;   // est was pre-charged to the bucket
  uint8_t kind;
  uint64_t est;
  uint64_t excl;  // host ns the limiter spent before the launch (statistics)
  uint64_t sig;
  uint8_t probe;  // Probe below
  int16_t slot;   // the stream's slot (overlap across streams, Poll)
  uint64_t app;   // host ns of the application per launch (see Stash::app); 0 = unknown
  bool pace;      // a sample of a pace stretch (its full-duty factor, section 1b)
};

// A launch's relation to the power probes: queued outside (kOutside, a "normal" sample), in a
// probe before the card has reacted or just after one (kNear: neither), in its settled part
// (kSettled: a reference sample).
enum Probe : uint8_t { kOutside, kNear, kSettled };

// A power probe's check after its end (DevLimiter::probe_phase): running or ended unchecked,
// waiting for NVML's per-process samples of its time, confirmed (its samples are charged,
// also those that complete later) or discarded (they are dropped).
enum ProbePhase : uint8_t { kProbeRan, kProbeAwaitingSamples, kProbeConfirmed, kProbeDiscarded };

// StreamSlot::key of a destroyed stream's slot: free for a new stream, but not the end of a
// lookup (the table is open-addressed).
inline constexpr uint64_t kStreamGone = ~0ull;

struct StreamSlot {
  uint64_t key;  // 0 = free; else stream handle (+ thread for the per-thread stream) + 1
  int16_t last_end;
  uint64_t last_after;  // CLOCK_MONOTONIC when our last launch on it returned
  uint64_t group;       // the admission group (CtxState::group_t) it last launched in
  uint64_t t_launch;    // CLOCK_MONOTONIC when our last launch on it entered the limiter
  uint64_t lim_ns;      // host ns the limiter spent on that launch (before and after)
};

struct CtxState {
  CUcontext ctx;  // null: a free entry (its context was destroyed or made room for another)
  int ord;
  int resets;  // times started over (a launch's Stash from before is stale)
  EventSlot ev[kEvents];
  int nev;
  int free_list[kEvents];
  int nfree;
  Pending ring[kRing];
  uint32_t head, tail;
  StreamSlot streams[kStreams];
  uint64_t est[3];  // per LaunchKind
  SoloTimes solo;
  PowerRefs power;
  // Union of the context's charged GPU intervals across streams: the latest end event
  // settled so far (-1: none) and its stream slot. A measurement that starts before it
  // overlaps work already charged (another stream's) and is charged only beyond it.
  int16_t cover;
  int16_t cover_slot;
  // Sampling while not throttled (policy default, alone): one launch in `sample_every` is
  // measured, the others are counted at the estimate (docs/compute-limiter.md, section 1).
  uint32_t since_sample;
  uint32_t sample_every;
  uint64_t last_sample;
  // Several streams: a launch admitted by the bucket opens a group; for kGroupNs each other
  // stream may queue one launch beside it without waiting (pre-charged as usual), so work
  // that overlapped unthrottled still overlaps when throttled. Atomics (Admit runs unlocked).
  uint64_t group_t;
  // Host-time windows (section 1): the application's host time of the launches admitted in
  // the current window, and the GPU time settled in it. At the end of a window the bucket is
  // charged max(0, host - GPU): a window costs what the slower of the two took.
  uint64_t win_start, win_host, win_gpu;
  CUevent pace_ev[kPaceStreams];  // pace mode: drain markers, created on first use
};

// Pace mode (docs/compute-limiter.md, section 1b): limited and alone on the card, the
// container runs unmeasured for a stretch of Cfg().pace_on_ns, its work is drained, the
// stretch (wall time, times the full-duty factor) is charged to the bucket, and the next
// stretch waits for the bucket. Fields under `mu` unless marked.
struct PaceState {
  pthread_mutex_t mu;  // closing and opening stretches; zero is PTHREAD_MUTEX_INITIALIZER
  uint64_t on_start;   // 0: no stretch open yet; stored atomically (read by launches)
  uint64_t on_end;     // atomic: launches before it go straight through
  uint32_t gen;        // atomic: stretch number (the threads' stream notes)
  bool probe;          // the open stretch is a power probe: not charged
  CUstream streams[kPaceStreams];  // streams launched or copied on in the stretch, to drain
  CtxState* ctxs[kPaceStreams];
  bool kernels[kPaceStreams];  // a kernel or graph went to the stream (else: only copies)
  int nstreams;
  uint64_t sum_est;         // atomic: the launches' estimated GPU time in the stretch
  uint64_t t_last;          // atomic: the stretch's last launch (CLOCK_MONOTONIC)
  uint64_t gap_max;         // atomic: the longest host gap between two launches in the stretch
  uint64_t gap_learned;     // PaceLearnGap over the past stretches (PaceLateNs)
  uint64_t n_early, n_all;  // atomic: launches (and copies) in its first kPaceEarlyNs, and all
  int64_t restart_learned;  // PaceLearnRestart over the past stretches (PaceRestartCredit)
  uint32_t gpu_learned;     // PaceLearnGpu over the past stretches (PaceChargeEnd)
  uint64_t tail_carry;      // the estimates' overshoot kept for later tails (PaceChargeEnd)
  uint32_t n_samp, n_idle;  // atomic, HAMI_COMPUTE_STATS: the stretch's sampled launches, and
                            // those that found their stream with nothing queued
  uint32_t n_samp_early, n_idle_early;  // atomic, HAMI_COMPUTE_STATS: the same in its first
                                        // kPaceEarlyNs (the GPU's restart after the pause)
  uint64_t raw, cor;                    // under g_mu: sampled launches' measured and full-duty time
  double factor;                        // the last full-duty factor (0: none yet, i.e. 1)
  uint64_t others_until;  // another process of the container launched: no pace mode till then
};

struct DevLimiter {
  uint32_t limit;          // 1..99, 0 = none; stored atomically (the limits file may change it)
  uint64_t limit_changed;  // atomic: CLOCK_MONOTONIC of the last change (ApplySmLimits)
  uint64_t* clock;         // bucket clock (accounting file, or local_clock)
  uint64_t local_clock;
  hami_shm_device* shm;
  Board board;
  bool board_tried;
  char contention_path[1200];
  uint64_t next_check;
  bool contended;       // another container uses the GPU (board or monitor)
  bool monitor_higher;  // the monitor reports a more important container active on the GPU
  // NVML view (policy default): device utilisation against the container's own busy time, to
  // see neighbours that run without libvgpu or without a limit (they mark nothing anywhere).
  nvmlDevice_t nvml;
  uint64_t snap_t[8], snap_busy[8];
  int snap_n;
  int nvml_hits;
  uint64_t local_busy;  // busy ns when there is no accounting file
  uint64_t last_mark;
  uint64_t last_kernel_mono;  // CLOCK_MONOTONIC of the last stamp of shm->last_kernel_ns
  // Power probes (under g_mu): the current or last probe, the next one (0: not planned); when
  // the last one started in CLOCK_REALTIME microseconds (NVML's samples' clock), and how far
  // its check has come (ProbePhase).
  uint64_t probe_start, probe_end, next_probe;
  uint64_t probe_real_us;
  uint32_t probe_id;
  uint8_t probe_phase;
  nvmlDevice_t nvml_card;  // for AloneOnCard
  PaceState pace;
};

extern pthread_mutex_t g_mu;
extern CtxState* g_ctx[kMaxCtx];
extern DevLimiter g_dev[kMaxDevices];
extern uint64_t g_container_id;
extern int g_priority;
extern bool g_prio_explicit;
extern char g_board_dir[1024];
extern char g_contention_dir[1024];

struct Stash {
  bool active;
  CtxState* c;
  int slot;
  int16_t start, prev;
  bool bucket, idle;
  uint64_t est, excl;
  LaunchKind kind;
  uint64_t sig;
  int gen;  // CtxState::resets when the stash was made
  uint8_t probe;
  bool plain;  // a sample while not throttled: the kernel alone (kBusy), no gap
  // Host time since this thread's previous launch (on the same stream) less the limiter's own
  // time then and now: what one iteration of a launch loop takes on the host without us.
  uint64_t app;
  bool pace;  // a pace-mode sample: not admitted through the bucket (section 1b)
};
extern __thread Stash t_stash;

// cuThreadExchangeStreamCaptureMode, when the driver has it (CUDA 10.1+; the fake has not).
// While some thread captures a graph in the default (global) mode, CUDA refuses "potentially
// unsafe" calls such as cuEventQuery from every thread and invalidates that capture. The
// limiter's own event calls never touch a capturing stream, so it runs them in relaxed mode.
using ExchangeModeFn = CUresult (*)(int* mode);
extern ExchangeModeFn g_exchange_mode;
inline constexpr int kCaptureModeRelaxed = 2;  // CU_STREAM_CAPTURE_MODE_RELAXED

struct RelaxedCapture {
  RelaxedCapture() {
    if (g_exchange_mode && g_exchange_mode(&mode) == CUDA_SUCCESS) active = true;
  }
  ~RelaxedCapture() {
    if (active) g_exchange_mode(&mode);  // restores the caller's mode
  }
  int mode = kCaptureModeRelaxed;
  bool active = false;
};

// Whether a launch on `stream` only records a graph node (cuGraphLaunch is charged, not the
// capture); also true when the driver cannot tell.
inline bool Capturing(CUstream stream) {
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  return g_cuda.cuStreamIsCapturing(stream, &cap) != CUDA_SUCCESS ||
         cap != CU_STREAM_CAPTURE_STATUS_NONE;
}

// compute_events.cc: the event pool, the ring of pending measurements, streams, contexts.
int64_t ElapsedNs(CtxState* c, int a, int b);
int AllocEvent(CtxState* c);
void Ref(CtxState* c, int i);
void Unref(CtxState* c, int i);
void ResetCtx(CtxState* c);
// Charges what `c` has pending (waiting for it: the context is alive), destroys its events
// and frees the entry.
void DropCtx(CtxState* c);
inline bool Dead(CUresult r) {
  return r == CUDA_ERROR_INVALID_HANDLE || r == CUDA_ERROR_INVALID_CONTEXT;
}
inline DevLimiter* DevOf(CtxState* c) { return c->ord >= 0 ? &g_dev[c->ord] : nullptr; }
void Poll(CtxState* c, bool wait);
CtxState* FindCtx(CUcontext ctx);
int StreamSlotOf(CtxState* c, CUstream s);
// Frees the slot of a stream that is being destroyed, in every context (CU_STREAM_PER_THREAD:
// the calling thread's, at its exit).
void ForgetStream(CUstream s);
// Other streams of the context with a launch of ours in the last kActiveStreamNs (at most 3).
int OtherActiveStreams(CtxState* c, int slot, uint64_t now);

// compute_policy.cc: whether to throttle (policy, contention) and power probes.
void OpenBoard(int ord, DevLimiter* d);
bool Throttling(DevLimiter* d, uint64_t now);
// Plans and tracks power probes at a throttled launch; returns the launch's Probe class and
// sets *probing while a probe runs (the launch is then not throttled). A probe's samples are
// confirmed or discarded in every context on the device (PowerRefs) once NVML can tell
// whether another process computed during it.
uint8_t PowerProbeStep(DevLimiter* d, uint64_t now, bool* probing);
// The Probe class of a launch at `now` without planning a probe (pace-mode samples).
uint8_t ProbeClass(DevLimiter* d, uint64_t now);

// compute_pace.cc: pace mode (section 1b).
// Whether the policy throttles `d` as of its last contention check (Throttling refreshes it).
// The limiter's share for a configured SM limit: 1..99, else none (0 and 100 limit nothing).
inline uint32_t LimiterShare(uint32_t sm_limit) {
  return sm_limit > 0 && sm_limit < 100 ? sm_limit : 0;
}
inline bool ThrottledNow(const DevLimiter* d) {
  return d->limit && (g_state.cfg.policy == CorePolicy::kForce || d->contended);
}
// Whether a throttled launch on `d` goes through pace mode rather than per-launch admission.
inline bool PaceApplies(const DevLimiter* d) {
  return Cfg().pace && d->limit && !d->contended && !g_prio_explicit;
}
// Lets a launch (or, `copy`, an asynchronous copy or memset) on `stream` through: at once
// inside the open stretch, else after closing it (drain, charge) and waiting for the bucket
// to open the next. Returns the time after the gate (`now`, or later when it waited).
uint64_t PaceGate(CtxState* c, DevLimiter* d, CUstream stream, uint64_t now, bool copy = false);
// The length of a stretch at `limit_pct` (PaceStretchLen): Cfg().pace_on_ns at 50 %, scaled
// by the share, with a pause of at least Cfg().pace_off_ns (at most kPaceMaxOnNs).
uint64_t PaceStretchNs(uint32_t limit_pct);
// Whether another process of the container launched throttled work on the device in the
// last second (pace mode charges one process's stretches: it needs to be the only one).
// Stamps this process's presence in the accounting file at most every 10 ms.
bool OthersOfContainer(DevLimiter* d, uint64_t now);
// Pace mode's counters (HAMI_COMPUTE_STATS): a sampled launch at `t0` of the stretch, and
// whether it found its stream `idle`, in all and in the stretch's first kPaceEarlyNs; not the
// launch that opened it (its queue drained in the pause: it came before the stretch's start).
inline void PaceCountSample(DevLimiter* d, uint64_t t0, bool idle) {
  PaceState* p = &d->pace;
  uint64_t on = __atomic_load_n(&p->on_start, __ATOMIC_RELAXED);
  if (t0 <= on) return;
  __atomic_fetch_add(&p->n_samp, 1, __ATOMIC_RELAXED);
  if (idle) __atomic_fetch_add(&p->n_idle, 1, __ATOMIC_RELAXED);
  if (t0 - on >= kPaceEarlyNs) return;
  __atomic_fetch_add(&p->n_samp_early, 1, __ATOMIC_RELAXED);
  if (idle) __atomic_fetch_add(&p->n_idle_early, 1, __ATOMIC_RELAXED);
}
// Counts a launch of the stretch (its estimated GPU time, when it came, whether in the
// stretch's first kPaceEarlyNs) and the host gap since the stretch's previous launch, copy or
// synchronise. Returns the time since the stretch opened.
// Plain loads and stores: threads racing here only misplace a gap, and the launch path gets
// no second locked instruction.
inline uint64_t PaceLaunched(DevLimiter* d, uint64_t est, uint64_t now) {
  PaceState* p = &d->pace;
  __atomic_fetch_add(&p->sum_est, est, __ATOMIC_RELAXED);
  uint64_t since = now - __atomic_load_n(&p->on_start, __ATOMIC_RELAXED);
  if (since < kPaceEarlyNs)
    __atomic_store_n(&p->n_early, __atomic_load_n(&p->n_early, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
  __atomic_store_n(&p->n_all, __atomic_load_n(&p->n_all, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  uint64_t prev = __atomic_load_n(&p->t_last, __ATOMIC_RELAXED);
  __atomic_store_n(&p->t_last, now, __ATOMIC_RELAXED);
  if (now > prev && now - prev > __atomic_load_n(&p->gap_max, __ATOMIC_RELAXED))
    __atomic_store_n(&p->gap_max, now - prev, __ATOMIC_RELAXED);
  return since;
}

// compute_admit.cc: waits until the launch may go (priority, turns, bucket). Returns whether
// the estimate was pre-charged to the bucket; updates *now and *est.
struct Admission {
  CtxState* c;
  DevLimiter* d;
  int slot;  // the launching stream's slot
  int kind;  // LaunchKind
  bool throttle, probing;
  int other_streams;  // OtherActiveStreams: that many scaled estimates of tolerance
};
bool Admit(Admission* a, uint64_t* now, uint64_t* est);

}  // namespace hami::vgpu::climit
