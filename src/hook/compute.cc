// Compute (SM) limiter. Measures the GPU time each launch really takes with CUDA events
// recorded on the launching stream (no blocking: completions are polled at later launches),
// charges it to the container's token bucket in the shared accounting file, and delays
// launches while the bucket is empty. docs/compute-limiter.md explains the design.
//
// Only processes with a compute limit or an explicit priority get here (g_compute_enabled);
// everyone else pays one branch per launch. On the limited path a process-wide mutex guards
// the event bookkeeping (never held while sleeping or waiting on the GPU, except when the
// ring of pending measurements is full).
#include "compute.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "abi/node_layout.h"
#include "compute_board.h"
#include "compute_bucket.h"
#include "log.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {

bool g_compute_enabled = false;

namespace {

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kBurstNs = 30 * kMs;      // wall time an idle container may bank
constexpr uint64_t kMaxGapNs = 250000;       // idle gaps shorter than this are charged
constexpr uint64_t kSleepChunkNs = 2 * kMs;  // re-check period while throttled
constexpr uint64_t kContendedWindowNs = 1000 * kMs;
constexpr uint64_t kContentionCheckNs = 100 * kMs;
constexpr uint64_t kPrioRecentNs = 1000 * kMs;  // a higher priority counts as present this long
constexpr uint64_t kPrioGraceNs = 1 * kMs;      // quiet time after its estimated work ends
constexpr uint64_t kMarkActiveNs = 10 * kMs;
constexpr double kNvmlMarginPct = 20;  // device utilisation above our own share, in points
constexpr int kMaxCtx = 8;
constexpr int kEvents = 512;
constexpr int kRing = 128;
constexpr int kStreams = 64;
constexpr int kLimiterClock = 0;      // limiter_state[] words in the accounting file
constexpr int kLimiterThrottled = 1;  // ns spent throttled, all processes
constexpr int kLimiterLaunches = 2;   // launches measured, all processes
constexpr int kLimiterLastAdmit = 3;  // accounting slot + 1 of the process admitted last
constexpr int kLimiterWaiters = 4;    // processes waiting for the bucket now
// A process that was admitted last and finds another process of its container waiting for
// the bucket too waits this much longer, so the other one is admitted first: without it the
// process whose wake-up happens to come first wins every time and the other can starve.
constexpr uint64_t kYieldNs = 200000;

uint64_t Mono() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t Realtime() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
void SleepNs(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
  nanosleep(&ts, nullptr);
}
// Tunables (docs/compute-limiter.md), each with an environment override for experiments.
bool g_event_cal = true;  // HAMI_COMPUTE_EVENT_CAL: exclude the GPU cost of our end event
bool g_turns = true;      // HAMI_COMPUTE_TURNS: limited containers sharing a GPU take turns
uint64_t g_max_turn_ns = 20 * kMs;           // HAMI_COMPUTE_MAX_TURN_US
uint64_t g_turn_overlap_ns = 200000;         // HAMI_COMPUTE_TURN_OVERLAP_US
constexpr uint64_t kTurnBurstNs = 60 * kMs;  // bank while taking turns (covers others' turns)
// Power probes (PowerRefs): while limited and alone on the card, run unthrottled for
// g_probe_ns every g_probe_every_ns (the first after kFirstProbeNs of throttling), learning
// from the launches queued after the first 2/3 of it what the work takes at full duty.
bool g_power = true;                      // HAMI_COMPUTE_POWER
uint64_t g_probe_ns = 200 * kMs;          // HAMI_COMPUTE_PROBE_MS
uint64_t g_probe_every_ns = 60000 * kMs;  // HAMI_COMPUTE_PROBE_EVERY_S
constexpr uint64_t kFirstProbeNs = 50 * kMs;
constexpr uint64_t kAfterProbeNs = 300 * kMs;   // the card is still slow: not "normal" yet
constexpr uint64_t kProbeRetryNs = 5000 * kMs;  // another process on the card: ask again

// Counters for HAMI_COMPUTE_STATS=1 (printed at exit): per measuring mode, launches, GPU time
// charged, raw event span and limiter time excluded; and time spent throttled.
struct Stats {
  uint64_t n[3], charge[3], span[3], excl[3];
  uint64_t waits, wait_ns;
  uint64_t turn_waits, turn_wait_ns, turns_taken;
  uint64_t probes, power_extra_ns;
};
Stats g_stats;
bool g_stats_on = false;

struct EventSlot {
  CUevent ev;
  int refs;
};

// How a launch is measured. `from` is a start event recorded just before the launch, except
// in kTight. kBusy: the stream was busy (the start event completes when the previous work
// does; an end-only chain from the previous end would also count an idle gap if the stream
// drained between our check and the launch, e.g. when the thread is preempted there).
// kStart: idle stream; `prev` (the stream's previous end) gives the idle gap. kTight: idle
// stream in a tight loop (the application spent under kMaxGapNs between our previous launch
// and this one, so the GPU gap is shorter too): no start event, `from` is the previous end
// and the whole span minus our own time is charged, as kStart would.
enum Mode : uint8_t { kBusy, kStart, kTight };

// One launch whose GPU time is not yet known.
struct Pending {
  int16_t from;  // start event (idle stream) or the previous end event (busy stream)
  int16_t prev;  // idle stream: previous end on the stream, for the gap; -1 when none
  int16_t end;
  uint8_t mode;  // kBusy, kStart or kTight (below)
  bool bucket;   // est was pre-charged to the bucket
  uint8_t kind;
  uint64_t est;
  uint64_t excl;  // host ns the limiter spent before the launch (not charged as gap)
  uint64_t sig;
  uint8_t probe;  // Probe below
};

// A launch's relation to the power probes: queued outside (kOutside, a "normal" sample), in a
// probe before the card has reacted or just after one (kNear: neither), in its settled part
// (kSettled: a reference sample).
enum Probe : uint8_t { kOutside, kNear, kSettled };

struct StreamSlot {
  uint64_t key;  // 0 = free; else stream handle (+ thread for the per-thread stream) + 1
  int16_t last_end;
  uint64_t last_after;  // CLOCK_MONOTONIC when our last launch on it returned
};

struct CtxState {
  CUcontext ctx;
  int ord;
  bool broken;  // reset too often: launches in this context go unlimited
  int resets;
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
  int64_t event_ns;  // GPU time one event record adds behind a kernel; -1 = not measured
};

struct DevLimiter {
  uint32_t limit;   // 1..99, 0 = none
  uint64_t* clock;  // bucket clock (accounting file, or local_clock)
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
  uint64_t last_kernel_rt;
  // Power probes (under g_mu): the current or last probe, the next one (0: not planned);
  // whether the last one was checked after its end, and discarded (another process showed up).
  uint64_t probe_start, probe_end, next_probe;
  uint32_t probe_id;
  bool probe_checked, probe_discarded;
  nvmlDevice_t nvml_card;  // for AloneOnCard
};

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
CtxState* g_ctx[kMaxCtx];
DevLimiter g_dev[kMaxDevices];
uint64_t g_container_id = 0;
int g_priority = 1;
bool g_prio_explicit = false;
char g_board_dir[1024];
char g_contention_dir[1024];

struct Stash {
  bool active;
  CtxState* c;
  int slot;
  int16_t start, prev;
  bool bucket, tight, idle;
  uint64_t est, excl;
  LaunchKind kind;
  uint64_t sig;
  int gen;  // CtxState::resets when the stash was made
  uint8_t probe;
};
__thread Stash t_stash;
__thread pid_t t_tid;

// cuThreadExchangeStreamCaptureMode, when the driver has it (CUDA 10.1+; the fake has not).
// While some thread captures a graph in the default (global) mode, CUDA refuses "potentially
// unsafe" calls such as cuEventQuery from every thread and invalidates that capture. The
// limiter's own event calls never touch a capturing stream, so it runs them in relaxed mode.
using ExchangeModeFn = CUresult (*)(int* mode);
ExchangeModeFn g_exchange_mode = nullptr;
constexpr int kCaptureModeRelaxed = 2;  // CU_STREAM_CAPTURE_MODE_RELAXED

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

pid_t Tid() {
  if (t_tid == 0) t_tid = static_cast<pid_t>(syscall(SYS_gettid));
  return t_tid;
}

int64_t ElapsedNs(CtxState* c, int a, int b) {
  float ms = 0;
  if (g_cuda.cuEventElapsedTime(&ms, c->ev[a].ev, c->ev[b].ev) != CUDA_SUCCESS) return -1;
  return static_cast<int64_t>(static_cast<double>(ms) * 1e6);
}

int AllocEvent(CtxState* c) {
  if (c->nfree > 0) {
    int i = c->free_list[--c->nfree];
    c->ev[i].refs = 1;
    return i;
  }
  if (c->nev >= kEvents) return -1;
  CUevent e;
  if (g_cuda.cuEventCreate(&e, 0) != CUDA_SUCCESS) return -1;
  int i = c->nev++;
  c->ev[i] = {e, 1};
  return i;
}
void Ref(CtxState* c, int i) {
  if (i >= 0) ++c->ev[i].refs;
}
void Unref(CtxState* c, int i) {
  if (i >= 0 && --c->ev[i].refs == 0) c->free_list[c->nfree++] = i;
}

// The context's events stopped working (context destroyed and a new one at the same address,
// or a reset): start over with fresh events. Pending measurements are charged as estimated.
void ResetCtx(CtxState* c) {
  for (int i = 0; i < c->nev; ++i) g_cuda.cuEventDestroy_v2(c->ev[i].ev);  // errors ignored
  CUcontext ctx = c->ctx;
  int ord = c->ord, resets = c->resets + 1;
  uint64_t est[3] = {c->est[0], c->est[1], c->est[2]};
  memset(static_cast<void*>(c), 0, sizeof(*c));
  c->ctx = ctx;
  c->ord = ord;
  c->resets = resets;
  c->event_ns = -1;
  memcpy(c->est, est, sizeof(est));
  if (resets > 100) {
    c->broken = true;
    VGPU_LOG(kLogWarn, "compute: events keep failing in context %p; its launches are not limited",
             static_cast<void*>(ctx));
  }
}

bool Dead(CUresult r) { return r == CUDA_ERROR_INVALID_HANDLE || r == CUDA_ERROR_INVALID_CONTEXT; }

DevLimiter* DevOf(CtxState* c) { return c->ord >= 0 ? &g_dev[c->ord] : nullptr; }

// Applies one measured launch.
void Settle(CtxState* c, const Pending& p, uint64_t charge) {
  DevLimiter* d = DevOf(c);
  if (d) {
    if (p.bucket && d->limit)
      BucketCorrect(d->clock, static_cast<int64_t>(charge) - static_cast<int64_t>(p.est), d->limit);
    d->local_busy += charge;
    if (d->shm) {
      __atomic_fetch_add(&d->shm->busy_ns_total, charge, __ATOMIC_RELAXED);
      __atomic_fetch_add(&d->shm->limiter_state[kLimiterLaunches], 1, __ATOMIC_RELAXED);
    }
  }
  c->est[p.kind] = UpdateEstimate(c->est[p.kind], charge);
}

// Charges every completed launch at the head of the ring. With `wait`, blocks on the head.
void Poll(CtxState* c, bool wait) {
  while (c->head != c->tail) {
    Pending& p = c->ring[c->head % kRing];
    CUresult r =
        wait ? g_cuda.cuEventSynchronize(c->ev[p.end].ev) : g_cuda.cuEventQuery(c->ev[p.end].ev);
    if (r == CUDA_ERROR_NOT_READY) return;
    wait = false;
    uint64_t charge = p.est;
    int64_t k = r == CUDA_SUCCESS ? ElapsedNs(c, p.from, p.end) : -1;  // the events' span
    if (k >= 0) {
      uint64_t kernel = static_cast<uint64_t>(k);
      if (p.mode != kTight) c->solo.Add(p.sig, kernel);
      // Sharing the GPU with another container, the events also span its work that ran
      // in between: charge no more than this launch's recent solo time.
      DevLimiter* d = DevOf(c);
      if (d && d->contended) {
        uint64_t base = c->solo.Baseline(p.sig);
        if (base && base < kernel) kernel = base;
      }
      if (p.mode == kBusy) {
        charge = kernel;
      } else if (p.mode == kTight) {
        // event_ns stays -1 unless HAMI_COMPUTE_EVENT_CAL let it be measured.
        charge = TightCharge(kernel, p.excl, c->event_ns > 0 ? c->event_ns : 0, p.est, kMaxGapNs);
      } else {
        int64_t gap = p.prev >= 0 ? ElapsedNs(c, p.prev, p.from) : -1;
        charge = LaunchCharge(kernel, gap, p.excl, kMaxGapNs);
      }
      // Alone on the card: learn the work's time at full duty and charge that.
      // A tight-loop charge also holds the host's gap between launches: compared only with
      // tight-loop charges (a probe runs mostly kBusy, throttled launches mostly kStart; both
      // are the kernel's time).
      if (g_power && d && d->limit && !d->contended) {
        uint64_t key = p.mode == kTight ? p.sig ^ (1ull << 63) : p.sig;
        if (p.probe == kSettled) {
          if (!d->probe_discarded) c->power.Probe(key, charge, d->probe_id);
        } else {
          if (p.probe == kOutside) c->power.Normal(key, charge);
          uint64_t corrected = c->power.Correct(key, charge);
          if (g_stats_on) g_stats.power_extra_ns += corrected - charge;
          charge = corrected;
        }
      }
    }
    if (g_stats_on && p.mode < 3) {
      ++g_stats.n[p.mode];
      g_stats.charge[p.mode] += charge;
      g_stats.excl[p.mode] += p.excl;
      if (k > 0) g_stats.span[p.mode] += static_cast<uint64_t>(k);
    }
    VGPU_LOG(kLogDebug, "compute: mode %d charge %llu est %llu excl %llu", p.mode,
             static_cast<unsigned long long>(charge), static_cast<unsigned long long>(p.est),
             static_cast<unsigned long long>(p.excl));
    Settle(c, p, charge);
    Unref(c, p.from);
    Unref(c, p.prev);
    Unref(c, p.end);
    ++c->head;
  }
}

// GPU time an event record adds: back-to-back records on an idle stream, the smallest
// difference of 8 pairs. Called once per context, on an idle stream, under g_mu.
void MeasureEventCost(CtxState* c, CUstream stream) {
  c->event_ns = 0;
  int a = AllocEvent(c), b = AllocEvent(c);
  if (a < 0 || b < 0) {
    Unref(c, a);
    Unref(c, b);
    return;
  }
  int64_t best = -1;
  for (int i = 0; i < 8; ++i) {
    if (g_cuda.cuEventRecord(c->ev[a].ev, stream) != CUDA_SUCCESS ||
        g_cuda.cuEventRecord(c->ev[b].ev, stream) != CUDA_SUCCESS ||
        g_cuda.cuEventSynchronize(c->ev[b].ev) != CUDA_SUCCESS)
      break;
    int64_t d = ElapsedNs(c, a, b);
    if (d >= 0 && (best < 0 || d < best)) best = d;
  }
  Unref(c, a);
  Unref(c, b);
  if (best > 0 && best < 20000) c->event_ns = best;  // sanity: an event costs microseconds
  if (g_stats_on)
    fprintf(stderr, "hami-compute-stats event_ns=%lld\n", static_cast<long long>(c->event_ns));
}

CtxState* FindCtx(CUcontext ctx) {
  for (int i = 0; i < kMaxCtx; ++i)
    if (g_ctx[i] && g_ctx[i]->ctx == ctx) return g_ctx[i];
  for (int i = 0; i < kMaxCtx; ++i) {
    if (g_ctx[i]) continue;
    auto* c = static_cast<CtxState*>(calloc(1, sizeof(CtxState)));
    if (!c) return nullptr;
    c->ctx = ctx;
    c->event_ns = -1;
    CUdevice dev = 0;
    c->ord = g_cuda.cuCtxGetDevice(&dev) == CUDA_SUCCESS ? OrdinalOf(dev) : -1;
    g_ctx[i] = c;
    return c;
  }
  return nullptr;  // more contexts than we track: their launches are not limited
}

int StreamSlotOf(CtxState* c, CUstream s) {
  uintptr_t v = reinterpret_cast<uintptr_t>(s);
  if (v == 1) v = 0;  // CU_STREAM_LEGACY is the default stream
  uint64_t key = v == 2 ? ((static_cast<uint64_t>(Tid()) << 2) | 2) : v;
  key += 1;
  uint32_t h = static_cast<uint32_t>((key * 0x9E3779B97F4A7C15ull) >> 58);  // 6 bits
  for (int i = 0; i < kStreams; ++i) {
    StreamSlot& sl = c->streams[(h + i) % kStreams];
    if (sl.key == key) return static_cast<int>((h + i) % kStreams);
    if (sl.key == 0) {
      sl.key = key;
      sl.last_end = -1;
      sl.last_after = 0;
      return static_cast<int>((h + i) % kStreams);
    }
  }
  // Table full: reuse the home slot (its stream loses its chain, which only costs a start
  // event on its next launch).
  StreamSlot& sl = c->streams[h];
  Unref(c, sl.last_end);
  sl.key = key;
  sl.last_end = -1;
  sl.last_after = 0;
  return static_cast<int>(h);
}

void OpenBoard(int ord, DevLimiter* d) {
  d->board_tried = true;
  const char* uuid = g_state.dev[ord].uuid;
  char err[1400];
  if (!d->board.Open(g_board_dir, uuid, err, sizeof(err)))
    VGPU_LOG(kLogWarn, "compute: %s; priority and contention across containers not seen", err);
  snprintf(d->contention_path, sizeof(d->contention_path), "%s/%s", g_contention_dir, uuid);
}

// Device utilisation (NVML) well above what the container itself used over about the same
// window means someone else is computing on the GPU. Two checks in a row, to ride out NVML's
// sampling lag when the container itself stops.
bool NvmlSeesOthers(DevLimiter* d, uint64_t now) {
  uint64_t busy =
      d->shm ? __atomic_load_n(&d->shm->busy_ns_total, __ATOMIC_RELAXED) : d->local_busy;
  // Ring of the last 8 checks (~0.8 s): compare with the oldest one.
  bool have = d->snap_n >= 4;
  int oi = d->snap_n < 8 ? 0 : d->snap_n % 8;
  uint64_t t_old = d->snap_t[oi], b_old = d->snap_busy[oi];
  d->snap_t[d->snap_n % 8] = now;
  d->snap_busy[d->snap_n % 8] = busy;
  ++d->snap_n;
  if (!have || now <= t_old) return false;
  double ours = 100.0 * static_cast<double>(busy - b_old) / static_cast<double>(now - t_old);
  nvmlUtilization_t u;
  if (g_nvml.nvmlDeviceGetUtilizationRates(d->nvml, &u) != NVML_SUCCESS) return false;
  d->nvml_hits = static_cast<double>(u.gpu) > ours + kNvmlMarginPct ? d->nvml_hits + 1 : 0;
  return d->nvml_hits >= 2;
}

// Whether this process is the only one with a context on the card (NVML's process list), as
// a power probe needs: any other process, of this container or another, with or without
// libvgpu, shares the card's time and power. False when NVML cannot tell.
bool AloneOnCard(DevLimiter* d) {
  if (!d->nvml_card) {
    int ord = static_cast<int>(d - g_dev);
    if (!LoadRealNvml() || g_nvml.nvmlInit_v2() != NVML_SUCCESS ||
        g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[ord].uuid, &d->nvml_card) != NVML_SUCCESS) {
      d->nvml_card = nullptr;
      return false;
    }
  }
  if (!g_nvml.nvmlDeviceGetComputeRunningProcesses_v3) return false;
  nvmlProcessInfo_t infos[4];
  unsigned int count = 4;
  return g_nvml.nvmlDeviceGetComputeRunningProcesses_v3(d->nvml_card, &count, infos) ==
             NVML_SUCCESS &&
         count <= 1;
}

// Whether the limit applies now (policy). Contention is refreshed every kContentionCheckNs.
bool Throttling(DevLimiter* d, uint64_t now) {
  if (now >= d->next_check) {
    d->next_check = now + kContentionCheckNs;
    bool c = d->board.OthersActive(g_container_id, now, kContendedWindowNs);
    ContentionInfo ci;
    bool higher = false;
    if (ReadContention(d->contention_path, &ci)) {
      int64_t age_ms = static_cast<int64_t>(Realtime() / kMs) - ci.updated_ms;
      bool fresh = age_ms < 10000;
      c = c || (fresh && ci.active >= 2);
      // The monitor sees every container on the node (the board only those sharing its
      // directory): a more important one active means keeping our queue short.
      higher = fresh && ci.min_priority >= 0 && ci.min_priority < g_priority;
    }
    d->monitor_higher = higher;
    if (!c && d->nvml && d->limit) c = NvmlSeesOthers(d, now);
    if (c != d->contended)
      VGPU_LOG(kLogInfo, "compute: GPU %s contended=%d", d->contention_path, c ? 1 : 0);
    d->contended = c;
  }
  if (d->limit == 0) return false;
  return g_state.cfg.policy == CorePolicy::kForce || d->contended;
}

__attribute__((destructor)) void PrintStats() {
  if (!g_stats_on) return;
  static const char* names[3] = {"busy", "start", "tight"};
  for (int m = 0; m < 3; ++m) {
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
  fprintf(stderr, "hami-compute-stats probes=%llu power_extra_ms=%.1f\n",
          static_cast<unsigned long long>(g_stats.probes), g_stats.power_extra_ns / 1e6);
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

void ComputeInit() {
  if (g_state.cfg.policy == CorePolicy::kDisable) {
    VGPU_LOG(kLogInfo, "compute: GPU_CORE_UTILIZATION_POLICY=disable, no compute limiting");
    return;
  }
  g_priority = g_state.cfg.priority;
  if (const char* v = getenv("HAMI_COMPUTE_TURNS")) g_turns = strcmp(v, "0") != 0;
  if (const char* v = getenv("HAMI_COMPUTE_EVENT_CAL")) g_event_cal = strcmp(v, "0") != 0;
  if (const char* v = getenv("HAMI_COMPUTE_POWER")) g_power = strcmp(v, "0") != 0;
  if (const char* v = getenv("HAMI_COMPUTE_PROBE_MS")) {
    uint64_t ms = strtoull(v, nullptr, 10);
    if (ms >= 30 && ms <= 1000) g_probe_ns = ms * kMs;
  }
  if (const char* v = getenv("HAMI_COMPUTE_PROBE_EVERY_S")) {
    uint64_t sec = strtoull(v, nullptr, 10);
    if (sec >= 1 && sec <= 3600) g_probe_every_ns = sec * 1000 * kMs;
  }
  if (const char* v = getenv("HAMI_COMPUTE_MAX_TURN_US"))
    g_max_turn_ns = strtoull(v, nullptr, 10) * 1000;
  if (const char* v = getenv("HAMI_COMPUTE_TURN_OVERLAP_US"))
    g_turn_overlap_ns = strtoull(v, nullptr, 10) * 1000;
  if (g_max_turn_ns < kMs || g_max_turn_ns > kTurnBurstNs / 2) g_max_turn_ns = 20 * kMs;
  if (g_turn_overlap_ns > kMs) g_turn_overlap_ns = kMs;
  const char* stv = getenv("HAMI_COMPUTE_STATS");
  g_stats_on = stv && *stv && strcmp(stv, "0") != 0;
  if (void* h = CudaHandle())
    g_exchange_mode =
        reinterpret_cast<ExchangeModeFn>(RealDlsym()(h, "cuThreadExchangeStreamCaptureMode"));
  g_prio_explicit = g_state.cfg.priority_set;
  const char* bd = getenv("HAMI_COMPUTE_BOARD_DIR");
  snprintf(g_board_dir, sizeof(g_board_dir), "%s", bd && *bd ? bd : abi::kDefaultBoardDir);
  const char* cd = getenv("HAMI_CONTENTION_DIR");
  if (cd && *cd) {
    snprintf(g_contention_dir, sizeof(g_contention_dir), "%s", cd);
  } else {
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
  struct stat st;
  if (g_state.accounting && stat(g_state.cfg.shm_path, &st) == 0)
    g_container_id = (static_cast<uint64_t>(st.st_dev) << 40) ^ static_cast<uint64_t>(st.st_ino);
  else
    g_container_id = (1ull << 62) | static_cast<uint64_t>(getpid());
  if (g_container_id == 0) g_container_id = 1;

  bool any = false;
  for (int i = 0; i < g_state.ndev; ++i) {
    DevLimiter* d = &g_dev[i];
    uint32_t l = g_state.dev[i].sm_limit;
    d->limit = (l > 0 && l < 100) ? l : 0;
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

void ComputeBeforeLaunch(CUstream stream, LaunchKind kind, uint64_t sig) {
  Stash& st = t_stash;
  st.active = false;
  uint64_t t0 = Mono();
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  // A launch into a capturing stream only records a graph node; cuGraphLaunch is charged.
  if (g_cuda.cuStreamIsCapturing(stream, &cap) != CUDA_SUCCESS ||
      cap != CU_STREAM_CAPTURE_STATUS_NONE)
    return;
  CUcontext ctx = nullptr;
  if (g_cuda.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr) return;
  RelaxedCapture relaxed;

  pthread_mutex_lock(&g_mu);
  CtxState* c = FindCtx(ctx);
  if (!c || c->broken) {
    pthread_mutex_unlock(&g_mu);
    return;
  }
  Poll(c, false);
  DevLimiter* d = DevOf(c);
  int ki = static_cast<int>(kind);
  uint64_t est = c->est[ki];
  int slot = StreamSlotOf(c, stream);
  // Whether the stream was already idle before any sleep of ours: only then is all of our
  // time before the launch part of the GPU's idle gap (see kTight).
  int16_t entry_end = c->streams[slot].last_end;
  bool idle_at_entry =
      entry_end >= 0 && g_cuda.cuEventQuery(c->ev[entry_end].ev) != CUDA_ERROR_NOT_READY;
  pthread_mutex_unlock(&g_mu);

  bool bucket = false;
  uint8_t probe = kOutside;
  if (d) {
    uint64_t now = t0;
    bool throttle = Throttling(d, now);
    if (throttle && est == 0) {
      // No estimate of this kind of launch yet: wait for the first measurement rather than
      // queue a burst whose cost is unknown.
      pthread_mutex_lock(&g_mu);
      if (c->head != c->tail) Poll(c, true);
      est = c->est[ki];
      pthread_mutex_unlock(&g_mu);
      now = Mono();
    }
    // Power probe: alone on the card and limited, now and then run unthrottled for a moment.
    bool probing = false;
    if (g_power && throttle && !d->contended) {
      pthread_mutex_lock(&g_mu);
      if (now >= d->probe_end) {
        if (d->next_probe == 0) {
          d->next_probe = now + kFirstProbeNs;
        } else if (d->probe_id && !d->probe_checked) {
          // Another process that came during the probe shared the card: its samples are void.
          d->probe_checked = true;
          d->probe_discarded = !AloneOnCard(d);
          if (d->probe_discarded) c->power.Discard(d->probe_id);
        } else if (now >= d->next_probe) {
          if (AloneOnCard(d)) {
            d->probe_start = now;
            d->probe_end = now + g_probe_ns;
            d->next_probe = now + g_probe_every_ns;
            ++d->probe_id;
            d->probe_checked = d->probe_discarded = false;
            if (g_stats_on) ++g_stats.probes;
            VGPU_LOG(kLogDebug, "compute: power probe %u", d->probe_id);
          } else {
            d->next_probe = now + kProbeRetryNs;
          }
        }
      }
      probing = now < d->probe_end;
      if (probing)
        probe = now >= d->probe_start + g_probe_ns * 2 / 3 ? kSettled : kNear;
      else if (d->probe_id && now < d->probe_end + kAfterProbeNs)
        probe = kNear;
      pthread_mutex_unlock(&g_mu);
    }
    BucketParams bp{d->limit, kBurstNs};
    // This process among the container's: its accounting slot (no syscall on this path).
    const uint64_t me = static_cast<uint64_t>(g_state.acct.slot_index() + 1);
    bool yield = d->shm && me != 0;
    uint64_t* last_admit = yield ? &d->shm->limiter_state[kLimiterLastAdmit] : nullptr;
    uint64_t* waiters = yield ? &d->shm->limiter_state[kLimiterWaiters] : nullptr;
    bool bucket_waiting = false;  // counted in *waiters
    for (;;) {
      uint64_t wait = 0;
      if (g_prio_explicit || d->limit) {
        uint64_t hb = d->board.HigherBusyUntil(g_priority, now, kPrioRecentNs);
        if (hb || d->monitor_higher) {
          if (hb + kPrioGraceNs > now) {
            wait = hb + kPrioGraceNs - now;
          } else {
            // A more important process is around: keep at most one launch of ours in flight,
            // so it never waits behind a queue of our work. Wait for it on the GPU (an event
            // synchronize is precise; a sleep would overshoot by the timer slack).
            pthread_mutex_lock(&g_mu);
            int le = c->streams[slot].last_end;
            bool busy = le >= 0 && g_cuda.cuEventQuery(c->ev[le].ev) == CUDA_ERROR_NOT_READY;
            if (busy) Ref(c, le);
            pthread_mutex_unlock(&g_mu);
            if (busy) {
              g_cuda.cuEventSynchronize(c->ev[le].ev);
              pthread_mutex_lock(&g_mu);
              Unref(c, le);
              Poll(c, false);
              est = c->est[ki];
              pthread_mutex_unlock(&g_mu);
              now = Mono();
              continue;  // the higher priority may have launched meanwhile
            }
          }
        }
      }
      // Sharing the GPU with other limited containers: launch only while holding the turn
      // (Board::TurnAcquire), and bank enough to make up for the others' turns.
      bool turns = g_turns && throttle && d->contended && d->board.is_open();
      bool turn_busy = false;  // another container holds the turn
      uint32_t turn_seq = 0;
      if (wait == 0 && turns) {
        bool had = g_stats_on && d->board.TurnHeldBy(g_container_id);
        wait = d->board.TurnAcquire(g_container_id, now, g_max_turn_ns, g_turn_overlap_ns,
                                    &turn_busy, &turn_seq);
        if (g_stats_on) {
          if (!had && d->board.TurnHeldBy(g_container_id)) ++g_stats.turns_taken;
          if (wait) {
            ++g_stats.turn_waits;
            g_stats.turn_wait_ns += wait;
          }
        }
      }
      if (wait == 0 && throttle && !probing) {
        bp.burst_ns = turns ? kTurnBurstNs : kBurstNs;
        wait = BucketAdmit(d->clock, now, est, bp);
        if (wait == 0) {
          bucket = true;
          if (last_admit) __atomic_store_n(last_admit, me, __ATOMIC_RELAXED);
        } else {
          if (turns) d->board.TurnRelease(g_container_id);  // our share is used: next one's turn
          if (waiters) {
            if (!bucket_waiting) __atomic_fetch_add(waiters, 1, __ATOMIC_RELAXED);
            bucket_waiting = true;
            if (__atomic_load_n(waiters, __ATOMIC_RELAXED) >= 2 &&
                __atomic_load_n(last_admit, __ATOMIC_RELAXED) == me)
              wait += kYieldNs;
          }
        }
      }
      if (wait == 0) break;
      if (g_stats_on) {
        ++g_stats.waits;
        g_stats.wait_ns += wait;
      }
      if (turn_busy)
        d->board.TurnWait(turn_seq, wait);  // woken as soon as the owner gives the turn back
      else
        SleepNs(wait < kSleepChunkNs ? wait : kSleepChunkNs);
      pthread_mutex_lock(&g_mu);
      Poll(c, false);
      est = c->est[ki];
      pthread_mutex_unlock(&g_mu);
      now = Mono();
      throttle = Throttling(d, now);
    }
    if (bucket_waiting) __atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
    // Announce our work before it is queued (a lower priority checking between our launch and
    // an announcement after it would queue its own work behind ours).
    if (g_prio_explicit) d->board.PublishLaunch(g_priority, now, est);
    if (d->shm && now > t0)
      __atomic_fetch_add(&d->shm->limiter_state[kLimiterThrottled], now - t0, __ATOMIC_RELAXED);
  }

  pthread_mutex_lock(&g_mu);
  // Too many launches in flight: wait for the oldest (bounds what a burst can queue before
  // its cost is known).
  if (c->tail - c->head >= kRing || c->nfree + (kEvents - c->nev) < 4) Poll(c, true);
  int16_t prev = c->streams[slot].last_end;
  Ref(c, prev);  // held until the launch is queued: another thread may replace last_end
  bool idle = prev < 0 || g_cuda.cuEventQuery(c->ev[prev].ev) != CUDA_ERROR_NOT_READY;
  uint64_t last_after = c->streams[slot].last_after;
  bool tight = idle && prev >= 0 && prev == entry_end && idle_at_entry && !(d && d->contended) &&
               last_after != 0 && t0 - last_after < kMaxGapNs;
  if (tight && g_event_cal && c->event_ns < 0) MeasureEventCost(c, stream);
  int16_t start = -1;
  if (!tight) {
    start = static_cast<int16_t>(AllocEvent(c));
    CUresult rr =
        start < 0 ? CUDA_ERROR_OUT_OF_MEMORY : g_cuda.cuEventRecord(c->ev[start].ev, stream);
    if (rr != CUDA_SUCCESS) {
      Unref(c, start);
      Unref(c, prev);
      if (Dead(rr)) ResetCtx(c);
      pthread_mutex_unlock(&g_mu);
      if (bucket) BucketCorrect(d->clock, -static_cast<int64_t>(est), d->limit);
      return;
    }
  }
  st = Stash{true, c,   slot,        start, prev, bucket,    tight,
             idle, est, Mono() - t0, kind,  sig,  c->resets, probe};
  pthread_mutex_unlock(&g_mu);
}

void ComputeAfterLaunch(CUstream stream, LaunchKind kind, CUresult result) {
  Stash& st = t_stash;
  if (!st.active) return;
  st.active = false;
  CtxState* c = st.c;
  DevLimiter* d = DevOf(c);
  RelaxedCapture relaxed;
  pthread_mutex_lock(&g_mu);
  if (c->resets != st.gen) {  // another thread started the context over meanwhile
    pthread_mutex_unlock(&g_mu);
    return;
  }
  int16_t end = -1;
  if (result == CUDA_SUCCESS) {
    end = static_cast<int16_t>(AllocEvent(c));
    CUresult rr = end >= 0 ? g_cuda.cuEventRecord(c->ev[end].ev, stream) : CUDA_SUCCESS;
    if (rr != CUDA_SUCCESS) {
      Unref(c, end);
      end = -1;
      if (Dead(rr)) {
        ResetCtx(c);
        pthread_mutex_unlock(&g_mu);
        return;
      }
    }
  }
  if (end < 0) {
    // Failed launch (nothing to charge) or no event: refund the estimate, or keep it when
    // the launch ran unmeasured.
    Unref(c, st.start);
    Unref(c, st.prev);
    if (result != CUDA_SUCCESS && st.bucket && d)
      BucketCorrect(d->clock, -static_cast<int64_t>(st.est), d->limit);
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
  if (st.start >= 0) {  // measure from our start event
    p.from = st.start;  // keeps the reference AllocEvent gave it
    if (st.idle) {
      p.prev = st.prev;  // for the idle gap
      p.mode = kStart;
    } else {
      p.prev = -1;
      p.mode = kBusy;
      Unref(c, st.prev);
    }
  } else {  // tight loop: from the previous end (the reference taken before the launch)
    p.from = st.prev;
    p.prev = -1;
    p.mode = kTight;
  }
  Ref(c, end);  // one for the ring, one (from AllocEvent) for the stream's last_end
  Unref(c, sl.last_end);
  sl.last_end = end;
  c->ring[c->tail % kRing] = p;
  ++c->tail;
  sl.last_after = Mono();
  pthread_mutex_unlock(&g_mu);

  if (d) {
    uint64_t now = Mono();
    if (g_turns && d->contended) d->board.TurnLaunched(g_container_id, now, st.est);
    if (now - d->last_mark >= kMarkActiveNs) {
      d->last_mark = now;
      d->board.MarkActive(g_container_id, now);
    }
    if (d->shm) {
      uint64_t rt = Realtime();
      if (rt - d->last_kernel_rt >= kMs) {
        d->last_kernel_rt = rt;
        __atomic_store_n(&d->shm->last_kernel_ns, rt, __ATOMIC_RELAXED);
      }
    }
  }
}

}  // namespace hami::vgpu
