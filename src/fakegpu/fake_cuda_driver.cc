// The fake libcuda.so.1's shared helpers: the driver object, contexts, streams, scheduling
// on the device timeline, allocation and pool bookkeeping (see fake_cuda_driver.h). Every
// driver entry point of src/abi/cuda_*.def has the real driver's error semantics, memory is
// charged to the shared state file (several processes see one GPU), and kernels occupy a
// device-wide timeline for a fixed time.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi/cuda_array.h"
#include "fakegpu/fake_cuda_driver.h"

namespace hami::fakegpu::driver {

Driver* g_driver = nullptr;
thread_local Ctx* tls_ctx = nullptr;

namespace {
void ForkChild() {
  g_driver = new Driver;
  tls_ctx = nullptr;
}
}  // namespace

// Runs at load; D() also calls it in case another library's constructor calls the driver
// before ours has run.
__attribute__((constructor)) void LoadDriver() {
  if (g_driver != nullptr) return;
  g_driver = new Driver;
  pthread_atfork(nullptr, nullptr, ForkChild);
}

// Waits for a completion time. The kernel's timer slack (50 us by default) makes a plain
// sleep overshoot by ~60 us, which would put a gap after every synchronised kernel; so sleep
// until shortly before and spin (on the vDSO clock) for the rest.
void SleepUntil(uint64_t t_ns) {
  constexpr uint64_t kSpinNs = 80000;
  uint64_t now = MonotonicNs();
  if (now >= t_ns) return;
  if (t_ns - now > kSpinNs) {
    uint64_t wake = t_ns - kSpinNs;
    timespec ts{static_cast<time_t>(wake / 1000000000ull), static_cast<long>(wake % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
  while (MonotonicNs() < t_ns) sched_yield();  // yield: CI hosts are small and busy
}

// ---- helpers; all *Locked functions expect D().mu held ----

CUresult CheckDevice(CUdevice dev, int* phys) {
  if (dev < 0 || dev >= static_cast<int>(D().visible.size())) return CUDA_ERROR_INVALID_DEVICE;
  if (phys) *phys = D().visible[dev];
  return CUDA_SUCCESS;
}

// The calling thread's context when it is usable.
Ctx* CurrentLocked() {
  Ctx* c = tls_ctx;
  if (c == nullptr || !D().ctxs.count(c) || !c->active) return nullptr;
  return c;
}

bool ChargeLocked(int phys, uint64_t bytes) {
  return D().state->Charge(phys, bytes, D().cfg.devices[phys].mem_bytes);
}

uint64_t NewAddressLocked(uint64_t size, bool low32) {
  uint64_t& next = low32 ? D().next_addr32 : D().next_addr;
  uint64_t addr = next;
  next += RoundUp(std::max<uint64_t>(size, 1), low32 ? kPitchAlign : kGranularity);
  return addr;
}

CUresult AllocLocked(Ctx* c, uint64_t size, bool low32, CUdeviceptr* out) {
  if (low32 && D().next_addr32 + RoundUp(size, kPitchAlign) > UINT_MAX)
    return CUDA_ERROR_OUT_OF_MEMORY;
  if (!ChargeLocked(c->phys, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUdeviceptr p = NewAddressLocked(size, low32);
  D().allocs[p] = Alloc{c->phys, size, size, c, nullptr, false};
  *out = p;
  return CUDA_SUCCESS;
}

void TrimLocked(Pool* p, uint64_t keep) {
  uint64_t target = std::max(RoundUp(p->used, kPoolChunk), RoundUp(keep, kPoolChunk));
  if (target >= p->reserved) return;
  D().state->Uncharge(p->phys, p->reserved - target);
  p->reserved = target;
}

void TrimDeviceLocked(int phys) {
  for (Pool* p : D().pools)
    if (p->phys == phys && p->reserved > p->threshold) TrimLocked(p, p->threshold);
}

// Releases everything a context owns (the real driver frees a context's allocations,
// arrays and streams with it).
void DeactivateLocked(Ctx* c) {
  Driver& d = D();
  std::erase_if(d.allocs, [&](const auto& a) {
    if (a.second.ctx != c) return false;
    d.state->Uncharge(a.second.phys, a.second.charged);
    return true;
  });
  std::erase_if(d.arrays, [&](const auto& a) {
    if (a.second.ctx != c) return false;
    d.state->Uncharge(a.second.phys, a.second.charged);
    delete static_cast<ArrayObj*>(a.first);
    return true;
  });
  // Handles the context owned (std::erase_if calls the test once per element).
  const auto owned = [c](auto* obj) {
    if (obj->ctx != c) return false;
    delete obj;
    return true;
  };
  std::erase_if(d.streams, owned);
  std::erase_if(d.events, owned);
  d.state->Uncharge(c->phys, d.cfg.devices[c->phys].ctx_mem + c->module_bytes + c->limit_bytes);
  c->module_bytes = 0;
  c->limit_bytes = 0;
  memcpy(c->limits, kLimitDefaults, sizeof(kLimitDefaults));
  for (Kernel* k : d.kernels) k->loaded = false;  // (one context per process in the tests)
  c->active = false;
  c->refs = 0;
}

// Resolves a stream handle: 0, CU_STREAM_LEGACY (1) and CU_STREAM_PER_THREAD (2) are the
// current context's default stream (*s = nullptr).
CUresult ResolveStreamLocked(CUstream h, Stream** s, Ctx** c) {
  uintptr_t v = reinterpret_cast<uintptr_t>(h);
  if (v <= 2) {
    *s = nullptr;
    *c = CurrentLocked();
    return *c ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
  }
  Stream* sp = reinterpret_cast<Stream*>(h);
  if (!D().streams.count(sp)) return CUDA_ERROR_INVALID_HANDLE;
  *s = sp;
  *c = (*s)->ctx;
  return (*c)->active ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

// The power model's factor for a kernel queued now: 1 up to 75 % recent utilisation, rising
// linearly to power_slowdown at 100 %.
double PowerFactor(int phys) {
  if (D().power_slowdown <= 1.0) return 1.0;
  unsigned u = D().state->Utilization(phys, MonotonicNs(), D().power_window_ns);
  double x = u <= 75 ? 0.0 : (u - 75) / 25.0;
  return 1.0 + (D().power_slowdown - 1.0) * (x > 1.0 ? 1.0 : x);
}

// Schedules `duration` of device time after the stream's previous work.
void ScheduleLocked(Stream* s, Ctx* c, uint64_t duration) {
  uint64_t tail = TailOf(s, c);
  if (duration)
    duration = static_cast<uint64_t>(static_cast<double>(duration) * PowerFactor(c->phys));
  if (duration && D().wake_ns) {
    uint64_t now = MonotonicNs(), busy = D().state->BusyUntil(c->phys);
    if (busy + D().wake_idle_ns <= std::max(now, tail)) duration += D().wake_ns;
  }
  uint64_t end = duration ? D().state->Schedule(c->phys, duration, tail, D().owner, D().switch_ns,
                                                D().stream_overlap)
                          : std::max(MonotonicNs(), tail);
  if (s) s->tail = std::max(s->tail, end);
  c->tail = std::max(c->tail, end);
}

CUresult CopyAsyncCommon(uint64_t bytes, CUstream stream) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  // A copy engine, not the SMs: after the stream's previous work, for bytes / rate.
  uint64_t dur = static_cast<uint64_t>(static_cast<double>(bytes) / D().copy_gbps);
  uint64_t end = std::max(MonotonicNs(), TailOf(s, c)) + dur;
  if (s) s->tail = std::max(s->tail, end);
  c->tail = std::max(c->tail, end);
  return CUDA_SUCCESS;
}

// Lazy loading: the first launch of a kernel in a context takes its module's memory.
CUresult LoadModuleLocked(Kernel* k, Ctx* c) {
  if (k->loaded || D().lazy_module_bytes == 0) return CUDA_SUCCESS;
  if (!D().state->Charge(c->phys, D().lazy_module_bytes, D().cfg.devices[c->phys].mem_bytes))
    return CUDA_ERROR_OUT_OF_MEMORY;
  k->loaded = true;
  c->module_bytes += D().lazy_module_bytes;
  return CUDA_SUCCESS;
}

CUresult LaunchCommon(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                      unsigned bz, CUstream stream) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (f == nullptr || !D().kernels.count(reinterpret_cast<Kernel*>(f)))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!gx || !gy || !gz || !bx || !by || !bz) return CUDA_ERROR_INVALID_VALUE;
  if (static_cast<uint64_t>(bx) * by * bz > 1024) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  if (CUresult r = LoadModuleLocked(reinterpret_cast<Kernel*>(f), c); r != CUDA_SUCCESS) return r;
  ScheduleLocked(s, c, reinterpret_cast<Kernel*>(f)->duration);
  return CUDA_SUCCESS;
}

CUresult GraphLaunchCommon(CUgraphExec exec, CUstream stream) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto* g = reinterpret_cast<Graph*>(exec);
  if (g == nullptr || !D().graphs.count(g)) return CUDA_ERROR_INVALID_VALUE;
  if (!D().kernels.count(g->kernel)) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  if (CUresult r = LoadModuleLocked(g->kernel, c); r != CUDA_SUCCESS) return r;
  ScheduleLocked(s, c, g->kernel->duration * g->count);
  return CUDA_SUCCESS;
}

CUresult PoolAllocLocked(CUdeviceptr* dptr, size_t size, Pool* p, CUstream stream) {
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (dptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  if (p == nullptr) {  // the current pool of the stream's device
    if (D().default_pool[c->ordinal] == nullptr) {
      Pool* np = new Pool{c->phys, true};
      D().default_pool[c->ordinal] = np;
      D().pools.insert(np);
    }
    p = D().default_pool[c->ordinal];
  } else if (!D().pools.count(p)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  // Stream order: blocks this stream freed earlier are reusable now.
  CompletePendingFreesLocked([&](const PendingFree& f) { return f.stream == s && f.ctx == c; });
  if (p->used + size > p->reserved) {
    uint64_t grow = RoundUp(p->used + size - p->reserved, kPoolChunk);
    if (!ChargeLocked(p->phys, grow)) return CUDA_ERROR_OUT_OF_MEMORY;
    p->reserved += grow;
  }
  p->used += size;
  p->reserved_high = std::max(p->reserved_high, p->reserved);
  p->used_high = std::max(p->used_high, p->used);
  CUdeviceptr a = NewAddressLocked(size, false);
  D().allocs[a] = Alloc{p->phys, 0, size, nullptr, p, true};
  *dptr = a;
  return CUDA_SUCCESS;
}

// Frees a device pointer of any kind; false when unknown. 0 is a no-op, as in the real
// driver (free(NULL) semantics).
bool FreeLocked(CUdeviceptr dptr) {
  if (dptr == 0) return true;
  auto it = D().allocs.find(dptr);
  if (it == D().allocs.end()) return false;
  const Alloc& a = it->second;
  if (a.pooled) {
    if (a.pool) a.pool->used -= std::min(a.pool->used, a.size);
  } else {
    D().state->Uncharge(a.phys, a.charged);
  }
  D().allocs.erase(it);
  return true;
}

CUresult FreeAsyncCommon(CUdeviceptr dptr, CUstream stream) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  auto it = D().allocs.find(dptr);
  if (dptr != 0 && it != D().allocs.end() && it->second.pooled && it->second.pool) {
    D().pending_frees.push_back(PendingFree{it->second.pool, it->second.size, s, c});
    D().allocs.erase(it);
    return CUDA_SUCCESS;
  }
  return FreeLocked(dptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// Unrounded bytes of a w x h x d array (h, d may be 0); 0 for an invalid descriptor.
uint64_t ArrayRawBytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned ch) {
  int es = static_cast<int>(abi::ArrayFormatBytes(f));
  if (w == 0 || es == 0 || (ch != 1 && ch != 2 && ch != 4)) return 0;
  unsigned __int128 b = static_cast<unsigned __int128>(w) * std::max<uint64_t>(h, 1) *
                        std::max<uint64_t>(d, 1) * ch * es;
  return b > (1ull << 62) ? (1ull << 62) : static_cast<uint64_t>(b);
}

CUresult ArrayCreateCommon(void** handle, uint64_t raw_bytes) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (raw_bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t bytes = RoundUp(raw_bytes, kGranularity);
  if (!ChargeLocked(c->phys, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  auto* a = new ArrayObj{};
  D().arrays[a] = Alloc{c->phys, bytes, bytes, c, nullptr, false};
  *handle = a;
  return CUDA_SUCCESS;
}

CUresult ArrayDestroyCommon(void* handle) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto it = D().arrays.find(handle);
  if (handle == nullptr || it == D().arrays.end()) return CUDA_ERROR_INVALID_HANDLE;
  D().state->Uncharge(it->second.phys, it->second.charged);
  delete static_cast<ArrayObj*>(handle);
  D().arrays.erase(it);
  return CUDA_SUCCESS;
}

CUresult CtxCreateCommon(CUcontext* pctx, CUdevice dev) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  if (!ChargeLocked(phys, D().cfg.devices[phys].ctx_mem)) return CUDA_ERROR_OUT_OF_MEMORY;
  Ctx* c = new Ctx{dev, phys, false, true, 1, 0, 0};
  D().ctxs.insert(c);
  tls_ctx = c;
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult CtxDestroyCommon(CUcontext ctx) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  Ctx* c = reinterpret_cast<Ctx*>(ctx);
  if (c == nullptr || !D().ctxs.count(c) || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
  DeactivateLocked(c);
  D().ctxs.erase(c);
  if (tls_ctx == c) tls_ctx = nullptr;
  delete c;
  return CUDA_SUCCESS;
}

CUresult PrimaryReleaseCommon(CUdevice dev) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (CUresult r = CheckDevice(dev, nullptr); r != CUDA_SUCCESS) return r;
  Ctx* c = D().primary[dev];
  if (c == nullptr || c->refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--c->refs == 0) DeactivateLocked(c);
  return CUDA_SUCCESS;
}

CUresult PrimaryResetCommon(CUdevice dev) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (CUresult r = CheckDevice(dev, nullptr); r != CUDA_SUCCESS) return r;
  Ctx* c = D().primary[dev];
  if (c && c->active) DeactivateLocked(c);
  return CUDA_SUCCESS;
}

CUresult StreamDestroyCommon(CUstream h) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  Stream* s = reinterpret_cast<Stream*>(h);
  if (!D().streams.count(s)) return CUDA_ERROR_INVALID_HANDLE;
  // Its work (and so its pending frees) completes; nothing can refer to it afterwards.
  CompletePendingFreesLocked([&](const PendingFree& f) { return f.stream == s; });
  D().streams.erase(s);
  delete s;
  return CUDA_SUCCESS;
}

CUresult EventDestroyCommon(CUevent e) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto* ev = reinterpret_cast<Event*>(e);
  if (!D().events.count(ev)) return CUDA_ERROR_INVALID_HANDLE;
  D().events.erase(ev);
  delete ev;
  return CUDA_SUCCESS;
}

CUresult MemGetInfoCommon(uint64_t* free_b, uint64_t* total_b) {
  Lock l(D().mu);
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t total = D().cfg.devices[c->phys].mem_bytes;
  uint64_t used = D().state->DeviceUsed(c->phys);
  *free_b = used < total ? total - used : 0;
  *total_b = total;
  return CUDA_SUCCESS;
}

}  // namespace hami::fakegpu::driver
