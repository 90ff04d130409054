// The compute limiter's measurements: a per-context pool of CUDA events, the ring of launches
// whose GPU time is not yet known, per-stream chains, and the charge of each completed launch
// (docs/compute-limiter.md, section 1). Everything here runs under g_mu.
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
    // H100) and every stretch was charged more.
    if (p.probe == kSettled) {
      if (!d->probe_discarded && !p.idle) c->power.Probe(key, charge, d->probe_id);
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
  c->cover = c->cover_slot = -1;
  c->sample_every = 1;
  memcpy(c->est, est, sizeof(est));
  if (resets > 100) {
    c->broken = true;
    VGPU_LOG(kLogWarn, "compute: events keep failing in context %p; its launches are not limited",
             static_cast<void*>(ctx));
  }
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
  for (int i = 0; i < kMaxCtx; ++i) {
    if (g_ctx[i]) continue;
    auto* c = static_cast<CtxState*>(calloc(1, sizeof(CtxState)));
    if (!c) return nullptr;
    c->ctx = ctx;
    c->cover = c->cover_slot = -1;
    c->sample_every = 1;
    CUdevice dev = 0;
    c->ord = g_cuda.cuCtxGetDevice(&dev) == CUDA_SUCCESS ? OrdinalOf(dev) : -1;
    g_ctx[i] = c;
    return c;
  }
  return nullptr;  // more contexts than we track: their launches are not limited
}

int OtherActiveStreams(CtxState* c, int slot, uint64_t now) {
  int n = 0;
  for (int i = 0; i < kStreams && n < 3; ++i) {
    const StreamSlot& sl = c->streams[i];
    if (i != slot && sl.key != 0 && sl.last_after != 0 && now - sl.last_after < kActiveStreamNs)
      ++n;
  }
  return n;
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

}  // namespace hami::vgpu::climit
