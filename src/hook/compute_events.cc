// The compute limiter's measurements: a per-context pool of CUDA events, the ring of launches
// whose GPU time is not yet known, per-stream chains, and the charge of each completed launch
// (docs/compute-limiter.md, section 1). Everything here runs under g_mu.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compute_internal.h"
#include "log.h"
#include "real.h"

namespace hami::vgpu::climit {
namespace {

__thread pid_t t_tid;

pid_t Tid() {
  if (t_tid == 0) t_tid = static_cast<pid_t>(syscall(SYS_gettid));
  return t_tid;
}

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
  if (p.bucket) c->win_gpu += charge;
}

// End of a host-time window: the application's host time per launch that the GPU time did
// not cover is charged too (a launch loop whose host side is slower than its kernels holds
// the GPU for its host time; its kernels alone would give it more than its share).
void FlushWindow(CtxState* c, uint64_t now) {
  if (c->win_start == 0) c->win_start = now;
  if (now - c->win_start < kWindowNs) return;
  DevLimiter* d = DevOf(c);
  if (d && d->limit && c->win_host > c->win_gpu) {
    uint64_t extra = c->win_host - c->win_gpu;
    BucketCorrect(d->clock, static_cast<int64_t>(extra), d->limit);
    if (d->shm) __atomic_fetch_add(&d->shm->busy_ns_total, extra, __ATOMIC_RELAXED);
    if (Cfg().stats) g_stats.host_extra_ns += extra;
  }
  c->win_start = now;
  c->win_host = c->win_gpu = 0;
}

// Signed span between two completed events (b before a gives a negative value).
bool SignedElapsed(CtxState* c, int a, int b, int64_t* out) {
  float ms = 0;
  if (g_cuda.cuEventElapsedTime(&ms, c->ev[a].ev, c->ev[b].ev) != CUDA_SUCCESS) return false;
  *out = static_cast<int64_t>(static_cast<double>(ms) * 1e6);
  return true;
}

void SetCover(CtxState* c, const Pending& p) {
  Ref(c, p.end);
  Unref(c, c->cover);
  c->cover = p.end;
  c->cover_slot = p.slot;
}

// Several streams of the context overlap in time: the GPU was the container's once, so the
// part of [begin, end] that the union of earlier measurements already covers is not charged
// again. Measurements settle in launch order; on one stream they follow each other, so the
// check costs two event queries only when the stream changes.
uint64_t Uncovered(CtxState* c, const Pending& p, int begin, uint64_t charge) {
  if (c->cover < 0 || c->cover_slot == p.slot) {
    SetCover(c, p);
    return charge;
  }
  int64_t ov = 0, ext = 0;
  if (!SignedElapsed(c, begin, c->cover, &ov) || !SignedElapsed(c, c->cover, p.end, &ext))
    return charge;
  if (ov > 0) {
    uint64_t o = static_cast<uint64_t>(ov) < charge ? static_cast<uint64_t>(ov) : charge;
    charge -= o;
    if (Cfg().stats) g_stats.overlap_ns += o;
  }
  if (ext > 0) SetCover(c, p);
  return charge;
}

// The charge of one completed launch whose events spanned `kernel` ns (section 1 of
// docs/compute-limiter.md): by measuring mode, without other streams' overlap, corrected to
// what it takes at full duty alone on the card.
uint64_t ChargeOf(CtxState* c, const Pending& p, uint64_t kernel) {
  c->solo.Add(p.sig, kernel);
  // Sharing the GPU with another container, the events also span its work that ran
  // in between: charge no more than this launch's recent solo time.
  DevLimiter* d = DevOf(c);
  if (d && d->contended) {
    uint64_t base = c->solo.Baseline(p.sig);
    if (base && base < kernel) kernel = base;
  }
  uint64_t charge = Uncovered(c, p, p.from, kernel);
  // Alone on the card: learn the work's time at full duty and charge that.
  if (Cfg().power && d && d->limit && !d->contended) {
    uint64_t key = p.sig;
    // A probe's references come from launches queued behind other work only: on an idle
    // stream the span also holds the host's submission (tens of us), which a probe, whose every
    // launch is measured and whose host is slowed by that, meets more often than the normal
    // samples; short kernels then looked up to 1.85x slower at full duty (gpt_small on the
    // H100) and every stretch was charged more. A launch long enough that its submission is
    // noise is a sample on an idle stream too: work that synchronises every launch (a CUDA
    // graph replayed and synchronised each iteration) has no other samples.
    if (p.probe == kSettled) {
      if (d->probe_phase != kProbeDiscarded && (!p.idle || charge >= kIdleProbeSampleNs))
        c->power.Probe(key, charge, d->probe_id);
    } else {
      if (p.probe == kOutside) c->power.Normal(key, charge);
      uint64_t corrected = c->power.Correct(key, charge);
      if (Cfg().stats) g_stats.power_extra_ns += corrected - charge;
      if (p.pace) {  // the stretch is charged, by the factor of its samples (section 1b)
        d->pace.raw += charge;
        d->pace.cor += corrected;
      }
      charge = corrected;
    }
  }
  return charge;
}

}  // namespace

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

namespace {

// Empties `c` for `ctx` (null: a free entry) on device ordinal `ord`, keeping `est` if given.
// A launch between its two halves sees `resets` change and records nothing into the new state.
void StartOver(CtxState* c, CUcontext ctx, int ord, const uint64_t* est) {
  int resets = c->resets + 1;
  memset(static_cast<void*>(c), 0, sizeof(*c));
  c->ctx = ctx;
  c->ord = ord;
  c->resets = resets;
  c->cover = c->cover_slot = -1;
  c->sample_every = 1;
  if (est) memcpy(c->est, est, sizeof(c->est));
}

uint32_t g_evict_next;  // FindCtx: the entry that makes room next

}  // namespace

// The context's events stopped working (it was destroyed behind our back, e.g. a primary
// context released or reset, and a new one came at the same address): start over with fresh
// events, as often as it happens (a context that went unlimited after some number of restarts
// was a way out of the limit). Pending measurements stay charged as estimated. The old handles
// are not destroyed: they died with their context, and the driver may have given the same
// values to the application's new events since.
void ResetCtx(CtxState* c) {
  if (Cfg().stats) ++g_stats.ctx_restarts;
  StartOver(c, c->ctx, c->ord, c->est);
}

void DropCtx(CtxState* c) {
  while (c->head != c->tail) Poll(c, true);
  for (int i = 0; i < c->nev; ++i) g_cuda.cuEventDestroy_v2(c->ev[i].ev);
  for (CUevent e : c->pace_ev)
    if (e) g_cuda.cuEventDestroy_v2(e);
  StartOver(c, nullptr, -1, nullptr);
}

// Charges every completed launch at the head of the ring. With `wait`, blocks on the head.
void Poll(CtxState* c, bool wait) {
  while (c->head != c->tail) {
    Pending& p = c->ring[c->head % kRing];
    CUresult r =
        wait ? g_cuda.cuEventSynchronize(c->ev[p.end].ev) : g_cuda.cuEventQuery(c->ev[p.end].ev);
    if (r == CUDA_ERROR_NOT_READY) break;
    wait = false;
    uint64_t charge = p.est;
    int64_t k = r == CUDA_SUCCESS ? ElapsedNs(c, p.from, p.end) : -1;  // the events' span
    if (k >= 0) charge = ChargeOf(c, p, static_cast<uint64_t>(k));
    if (Cfg().stats && p.mode < 3) {
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
  FlushWindow(c, Mono());
}

CtxState* FindCtx(CUcontext ctx) {
  for (int i = 0; i < kMaxCtx; ++i)
    if (g_ctx[i] && g_ctx[i]->ctx == ctx) return g_ctx[i];
  CtxState* c = nullptr;
  for (int i = 0; i < kMaxCtx && !c; ++i) {
    if (!g_ctx[i]) g_ctx[i] = static_cast<CtxState*>(calloc(1, sizeof(CtxState)));
    if (g_ctx[i] && !g_ctx[i]->ctx) c = g_ctx[i];
  }
  if (!c) {
    // Every entry holds a live context: the next one in turn makes room, its pending launches
    // charged first. A process that cycles through more contexts than that pays for new events
    // now and then; none of its launches goes unlimited.
    c = g_ctx[g_evict_next++ % kMaxCtx];
    if (!c) return nullptr;  // out of memory
    DropCtx(c);
    if (Cfg().stats) ++g_stats.ctx_evictions;
  }
  CUdevice dev = 0;
  StartOver(c, ctx, g_cuda.cuCtxGetDevice(&dev) == CUDA_SUCCESS ? OrdinalOf(dev) : -1, nullptr);
  return c;
}

namespace {

uint64_t StreamKey(CUstream s) {
  uintptr_t v = reinterpret_cast<uintptr_t>(s);
  if (v == 1) v = 0;  // CU_STREAM_LEGACY is the default stream
  uint64_t key = v == 2 ? ((static_cast<uint64_t>(Tid()) << 2) | 2) : v;
  return key + 1;
}
int StreamHome(uint64_t key) {
  return static_cast<int>(static_cast<uint32_t>((key * 0x9E3779B97F4A7C15ull) >> 58));  // 6 bits
}

}  // namespace

int OtherActiveStreams(CtxState* c, int slot, uint64_t now) {
  int n = 0;
  for (int i = 0; i < kStreams && n < 3; ++i) {
    const StreamSlot& sl = c->streams[i];
    if (i != slot && sl.key != 0 && sl.last_after != 0 && now - sl.last_after < kActiveStreamNs)
      ++n;
  }
  return n;
}

namespace {

// Per-thread default streams have no destroy call: a thread's slot goes when the thread exits
// (a server with a thread per request and _ptsz launches would fill the table otherwise).
pthread_key_t g_ptsz_key;
bool g_ptsz_key_ok;
__thread bool t_ptsz_noted;
void ForgetThreadStream(void*) {
  pthread_mutex_lock(&g_mu);
  ForgetStream(reinterpret_cast<CUstream>(static_cast<uintptr_t>(2)));
  pthread_mutex_unlock(&g_mu);
}
void MakePtszKey() { g_ptsz_key_ok = pthread_key_create(&g_ptsz_key, ForgetThreadStream) == 0; }

void NoteThreadStream() {
  if (t_ptsz_noted) return;
  t_ptsz_noted = true;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, MakePtszKey);
  if (g_ptsz_key_ok) pthread_setspecific(g_ptsz_key, &t_ptsz_noted);  // any non-null value
}

}  // namespace

int StreamSlotOf(CtxState* c, CUstream s) {
  if (reinterpret_cast<uintptr_t>(s) == 2) NoteThreadStream();
  const uint64_t key = StreamKey(s);
  const int h = StreamHome(key);
  int slot = -1;  // where a new stream goes: the first destroyed stream's slot, or a free one
  for (int i = 0; i < kStreams; ++i) {
    int at = (h + i) % kStreams;
    const StreamSlot& sl = c->streams[at];
    if (sl.key == key) return at;
    if (sl.key == kStreamGone && slot < 0) slot = at;
    if (sl.key == 0) {
      if (slot < 0) slot = at;
      break;
    }
  }
  if (slot < 0) {
    // Table full of live streams: reuse the home slot (its stream loses its chain, which only
    // costs a start event on its next launch).
    slot = h;
    Unref(c, c->streams[slot].last_end);
    if (Cfg().stats) ++g_stats.stream_table_full;
  }
  c->streams[slot] = StreamSlot{key, -1, 0, 0, 0, 0};  // nothing of a previous stream's
  return slot;
}

void ForgetStream(CUstream s) {
  uintptr_t v = reinterpret_cast<uintptr_t>(s);
  if (v < 2) return;                  // the legacy default stream is never destroyed
  const uint64_t key = StreamKey(s);  // CU_STREAM_PER_THREAD (2): the calling thread's
  const int h = StreamHome(key);
  for (CtxState* c : g_ctx) {
    if (!c || !c->ctx) continue;
    for (int i = 0; i < kStreams; ++i) {
      int at = (h + i) % kStreams;
      StreamSlot& sl = c->streams[at];
      if (sl.key == 0) break;
      if (sl.key != key) continue;
      Unref(c, sl.last_end);
      sl.key = kStreamGone;
      sl.last_end = -1;
      sl.last_after = 0;
      // Before a free slot, destroyed streams' slots end no lookup: free them back to front.
      for (int j = at, n = 0; n < kStreams && c->streams[(j + 1) % kStreams].key == 0 &&
                              c->streams[j].key == kStreamGone;
           j = (j + kStreams - 1) % kStreams, ++n)
        c->streams[j].key = 0;
      break;
    }
  }
}

}  // namespace hami::vgpu::climit
