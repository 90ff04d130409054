// The fake libcuda.so.1: every driver entry point of src/hook/abi/cuda_*.def with the real
// driver's error semantics, memory charged to the shared state file (several processes see
// one GPU), and kernels that occupy a device-wide timeline for a fixed time.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fakegpu/config.h"
#include "fakegpu/state.h"

// Only the driver API (and the test API) is exported; everything else is hidden.
#pragma GCC visibility push(default)
#include "fakegpu/fakegpu_test_api.h"
#include "abi/cuda_api.h"
extern "C" {
// v1 entry points with the same parameters as their _v2, served for old cudaVersions.
CUresult cuMemFree(unsigned int dptr);
CUresult cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev);
CUresult cuCtxDestroy(CUcontext ctx);
CUresult cuDevicePrimaryCtxRelease(CUdevice dev);
CUresult cuDevicePrimaryCtxReset(CUdevice dev);
CUresult cuStreamDestroy(CUstream stream);
CUresult cuEventDestroy(CUevent event);
}
#pragma GCC visibility pop

namespace hami::fakegpu {
namespace {

constexpr int kDriverVersion = 13000;
constexpr uint64_t kGranularity = 2ull << 20;  // VMM and array rounding
constexpr uint64_t kPoolChunk = 32ull << 20;   // pools grow their reservation by this
constexpr uint64_t kPitchAlign = 512;

uint64_t RoundUp(uint64_t v, uint64_t a) { return v % a ? v + (a - v % a) : v; }

struct Ctx {
  int ordinal;
  int phys;  // config index = state-file device
  bool primary;
  bool active;
  int refs;
  uint64_t tail;          // completion time of the context's latest work (legacy default stream)
  uint64_t module_bytes;  // lazily loaded module memory (FAKEGPU_LAZY_MODULE_MIB)
};
struct Stream {
  Ctx* ctx;
  uint64_t tail;
};
struct Event {
  unsigned flags;
  bool recorded;
  uint64_t t;
};
struct Pool {
  int phys;
  bool is_default;
  uint64_t reserved = 0, used = 0, threshold = 0, reserved_high = 0, used_high = 0;
  int reuse[3] = {1, 1, 1};
};
struct Alloc {
  int phys;
  uint64_t charged;  // bytes charged to the state file (0 for pool memory)
  uint64_t size;
  Ctx* ctx;    // owning context (freed with it); null for VMM and pool memory
  Pool* pool;  // pool allocations: the pool, or null once the pool was destroyed
  bool pooled;
};
struct Kernel {
  uint64_t duration;
  bool loaded;  // its module memory is charged (FAKEGPU_LAZY_MODULE_MIB)
};
// A pool block freed with cuMemFreeAsync: like the real driver's, it returns to its pool only
// when the stream reaches the free. Here that is the next synchronisation of the stream (or
// of its context, or any event), or the next allocation from the pool on the same stream, so
// tests are deterministic.
struct PendingFree {
  Pool* pool;
  uint64_t size;
  Stream* stream;  // null: the context's default stream
  Ctx* ctx;
};
struct Graph {
  Kernel* kernel;
  unsigned count;
};
struct ArrayObj {
  int unused;
};

struct Driver {
  std::mutex mu;
  bool initialized = false;
  Config cfg;
  std::vector<int> visible;  // CUDA ordinal -> config index
  std::unique_ptr<SharedState> state;
  Ctx* primary[kMaxDevices] = {};
  Pool* default_pool[kMaxDevices] = {};
  std::unordered_set<Ctx*> ctxs;
  std::unordered_map<CUdeviceptr, Alloc> allocs;
  std::unordered_map<CUmemGenericAllocationHandle, Alloc> handles;
  std::unordered_map<void*, Alloc> arrays;
  std::unordered_set<Stream*> streams;
  std::unordered_set<Event*> events;
  std::unordered_set<Pool*> pools;
  std::unordered_set<Kernel*> kernels;
  std::unordered_set<Graph*> graphs;
  uint64_t next_addr = 0x7f0000000000ull;
  uint64_t next_addr32 = 0x10000000ull;  // legacy 32-bit entry points
  uint64_t next_handle = 1;
  std::vector<PendingFree> pending_frees;
  uint64_t switch_ns = 0;  // FAKEGPU_CONTEXT_SWITCH_US: device time a context switch costs
  uint64_t owner = 0;      // this process, for the device's context switches
  // FAKEGPU_POWER_SLOWDOWN (> 1: a power-capped card): kernels run up to this factor slower
  // when the device was busy for more than 75 % of the last FAKEGPU_POWER_WINDOW_US (50 ms),
  // as a card at its power cap lowers its clock (an H200 running bf16 matmuls: ~1.2).
  double power_slowdown = 1.0;
  uint64_t power_window_ns = 50000000;
  // FAKEGPU_LAZY_MODULE_MIB: device memory a kernel's module takes at its first launch in a
  // context, as CUDA's lazy loading does (CUDA_MODULE_LOADING=LAZY, the default since 12.2).
  uint64_t lazy_module_bytes = 0;
};

// Leaked on purpose (no destructor ordering at exit). A forked child starts afresh, like a
// child of a real CUDA process, which must call cuInit itself.
Driver* g_driver = nullptr;
thread_local Ctx* tls_ctx = nullptr;

void ForkChild() {
  g_driver = new Driver;
  tls_ctx = nullptr;
}

// Runs at load; D() also calls it in case another library's constructor calls the driver
// before ours has run.
__attribute__((constructor)) void LoadDriver() {
  if (g_driver != nullptr) return;
  g_driver = new Driver;
  pthread_atfork(nullptr, nullptr, ForkChild);
}

Driver& D() {
  if (__builtin_expect(g_driver == nullptr, 0)) LoadDriver();
  return *g_driver;
}

// Completes the pending pool frees that `match` selects.
template <typename Match>
void CompletePendingFreesLocked(Match match) {
  auto& v = D().pending_frees;
  for (size_t i = 0; i < v.size();) {
    if (match(v[i])) {
      if (v[i].pool) v[i].pool->used -= std::min(v[i].pool->used, v[i].size);
      v[i] = v.back();
      v.pop_back();
    } else {
      ++i;
    }
  }
}

using Lock = std::lock_guard<std::mutex>;

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
  for (auto it = d.allocs.begin(); it != d.allocs.end();) {
    if (it->second.ctx == c) {
      d.state->Uncharge(it->second.phys, it->second.charged);
      it = d.allocs.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = d.arrays.begin(); it != d.arrays.end();) {
    if (it->second.ctx == c) {
      d.state->Uncharge(it->second.phys, it->second.charged);
      delete static_cast<ArrayObj*>(it->first);
      it = d.arrays.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = d.streams.begin(); it != d.streams.end();) {
    if ((*it)->ctx == c) {
      delete *it;
      it = d.streams.erase(it);
    } else {
      ++it;
    }
  }
  d.state->Uncharge(c->phys, d.cfg.devices[c->phys].ctx_mem + c->module_bytes);
  c->module_bytes = 0;
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

uint64_t TailOf(Stream* s, Ctx* c) { return s ? s->tail : c->tail; }

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
  uint64_t end = duration ? D().state->Schedule(c->phys, duration, tail, D().owner, D().switch_ns)
                          : std::max(MonotonicNs(), tail);
  if (s) s->tail = std::max(s->tail, end);
  c->tail = std::max(c->tail, end);
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

int ElementSize(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 0;
  }
}

// Unrounded bytes of a w x h x d array (h, d may be 0); 0 for an invalid descriptor.
uint64_t ArrayRawBytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned ch) {
  int es = ElementSize(f);
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

CUresult GetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult* status);

}  // namespace
}  // namespace hami::fakegpu

using namespace hami::fakegpu;  // NOLINT: the C entry points below are thin

#define REQUIRE_INIT() \
  if (!D().initialized) return CUDA_ERROR_NOT_INITIALIZED

extern "C" {

// ---- initialisation and devices ----

CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  Driver& d = D();
  if (d.initialized) return CUDA_SUCCESS;
  auto cfg = LoadConfig();
  if (!cfg.ok()) {
    fprintf(stderr, "fakegpu: %s\n", cfg.status().message().c_str());
    return CUDA_ERROR_NO_DEVICE;
  }
  auto st = SharedState::Open(SharedState::DefaultPath());
  if (!st.ok()) {
    fprintf(stderr, "fakegpu: %s\n", st.status().message().c_str());
    return CUDA_ERROR_OPERATING_SYSTEM;
  }
  std::vector<int> visible;
  const char* cvd = getenv("CUDA_VISIBLE_DEVICES");
  if (cvd == nullptr) {
    for (size_t i = 0; i < cfg->devices.size(); ++i) visible.push_back(static_cast<int>(i));
  } else {
    visible = ParseVisibleDevices(cvd, *cfg);
  }
  if (visible.empty()) return CUDA_ERROR_NO_DEVICE;
  d.cfg = std::move(*cfg);
  d.state = std::move(*st);
  d.visible = std::move(visible);
  d.owner = static_cast<uint64_t>(getpid());
  if (const char* sw = getenv("FAKEGPU_CONTEXT_SWITCH_US"))
    d.switch_ns = strtoull(sw, nullptr, 10) * 1000;
  if (const char* p = getenv("FAKEGPU_POWER_SLOWDOWN")) d.power_slowdown = strtod(p, nullptr);
  if (const char* m = getenv("FAKEGPU_LAZY_MODULE_MIB"))
    d.lazy_module_bytes = strtoull(m, nullptr, 10) << 20;
  if (const char* w = getenv("FAKEGPU_POWER_WINDOW_US"))
    d.power_window_ns = strtoull(w, nullptr, 10) * 1000;
  d.initialized = true;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(D().visible.size());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* dev, int ordinal) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = CheckDevice(ordinal, nullptr); r != CUDA_SUCCESS) return r;
  *dev = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  snprintf(name, len, "%s", D().cfg.devices[phys].name.c_str());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  memcpy(uuid->bytes, D().cfg.devices[phys].uuid_bytes, 16);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *bytes = D().cfg.devices[phys].mem_bytes;
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  size_t b = 0;
  CUresult r = cuDeviceTotalMem_v2(&b, dev);
  if (r == CUDA_SUCCESS) *bytes = static_cast<unsigned>(std::min<size_t>(b, UINT_MAX));
  return r;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  const DeviceConfig& c = D().cfg.devices[phys];
  // Per-device values come from the config; the rest are fixed, V100-like.
  struct Fixed {
    int attr, value;
  };
  static constexpr Fixed kFixed[] = {
      {1, 1024},    {2, 1024},     {3, 1024},     {4, 64},    {5, INT_MAX},  // block / grid limits
      {6, 65535},   {7, 65535},    {8, 49152},    {9, 65536}, {10, 32},      // shmem, const, warp
      {12, 65536},  {13, 1530000},                                           // registers, clock kHz
      {18, 0},      {19, 1},       {20, 0},       {31, 1},    {32, 1},       // integrated ... ECC
      {36, 877000}, {37, 4096},    {38, 6291456},                       // memory clock, bus, L2
      {39, 2048},   {40, 6},       {41, 1},                             // threads/SM, copy eng.
      {81, 98304},  {82, 65536},   {83, 1},       {89, 1},    {95, 1},  // per-SM limits ...
      {97, 98304},  {102, 1},      {106, 32},     {115, 1},             // VMM, pools supported
  };
  switch (static_cast<int>(attr)) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *value = c.sms;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
      *value = static_cast<int>(c.pci_bus);
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
      *value = static_cast<int>(c.pci_device);
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
      *value = static_cast<int>(c.pci_domain);
      return CUDA_SUCCESS;
    case 75:
      *value = c.cc_major;
      return CUDA_SUCCESS;  // COMPUTE_CAPABILITY_MAJOR
    case 76:
      *value = c.cc_minor;
      return CUDA_SUCCESS;  // COMPUTE_CAPABILITY_MINOR
    default:
      break;
  }
  for (const Fixed& f : kFixed) {
    if (f.attr == static_cast<int>(attr)) {
      *value = f.value;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// ---- contexts ----

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  Ctx*& c = D().primary[dev];
  if (c == nullptr) {
    c = new Ctx{dev, phys, true, false, 0, 0, 0};
    D().ctxs.insert(c);
  }
  if (c->refs == 0) {
    if (!ChargeLocked(phys, D().cfg.devices[phys].ctx_mem)) return CUDA_ERROR_OUT_OF_MEMORY;
    c->active = true;
  }
  ++c->refs;
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return PrimaryReleaseCommon(dev); }
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return PrimaryReleaseCommon(dev); }
CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) { return PrimaryResetCommon(dev); }
CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return PrimaryResetCommon(dev); }

CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate(CUcontext* pctx, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int num, unsigned int,
                        CUdevice dev) {
  if (num < 0 || (num > 0 && params == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams*, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxDestroy_v2(CUcontext ctx) { return CtxDestroyCommon(ctx); }
CUresult cuCtxDestroy(CUcontext ctx) { return CtxDestroyCommon(ctx); }

CUresult cuCtxGetCurrent(CUcontext* pctx) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pctx = D().ctxs.count(tls_ctx) ? reinterpret_cast<CUcontext>(tls_ctx) : nullptr;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Ctx* c = reinterpret_cast<Ctx*>(ctx);
  if (c != nullptr && !D().ctxs.count(c)) return CUDA_ERROR_INVALID_CONTEXT;
  tls_ctx = c;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *dev = c->ordinal;
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
  uint64_t t;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    Ctx* c = CurrentLocked();
    if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    t = c->tail;
  }
  SleepUntil(t);
  Lock l(D().mu);
  if (Ctx* c = CurrentLocked()) {
    CompletePendingFreesLocked([&](const PendingFree& f) { return f.ctx == c; });
    TrimDeviceLocked(c->phys);
  }
  return CUDA_SUCCESS;
}

// ---- memory ----

CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total_b) {
  if (free_b == nullptr || total_b == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t f, t;
  CUresult r = MemGetInfoCommon(&f, &t);
  if (r == CUDA_SUCCESS) *free_b = f, *total_b = t;
  return r;
}

CUresult cuMemGetInfo(unsigned int* free_b, unsigned int* total_b) {
  if (free_b == nullptr || total_b == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t f, t;
  CUresult r = MemGetInfoCommon(&f, &t);
  if (r == CUDA_SUCCESS) {
    *free_b = static_cast<unsigned>(std::min<uint64_t>(f, UINT_MAX));
    *total_b = static_cast<unsigned>(std::min<uint64_t>(t, UINT_MAX));
  }
  return r;
}

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return AllocLocked(c, bytesize, false, dptr);
}

CUresult cuMemAlloc(unsigned int* dptr, unsigned int bytesize) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  CUdeviceptr p;
  CUresult r = AllocLocked(c, bytesize, true, &p);
  if (r == CUDA_SUCCESS) *dptr = static_cast<unsigned>(p);
  return r;
}

CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != 0x2 /* CU_MEM_ATTACH_HOST */)
    return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return AllocLocked(c, bytesize, false, dptr);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                            unsigned int elem) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dptr == nullptr || pitch == nullptr || width == 0 || height == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (elem != 4 && elem != 8 && elem != 16) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t p = RoundUp(width, kPitchAlign);
  if (height > (1ull << 62) / p) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = AllocLocked(c, p * height, false, dptr);
  if (r == CUDA_SUCCESS) *pitch = p;
  return r;
}

CUresult cuMemAllocPitch(unsigned int* dptr, unsigned int* pitch, unsigned int width,
                         unsigned int height, unsigned int elem) {
  if (dptr == nullptr || pitch == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  REQUIRE_INIT();
  if (width == 0 || height == 0 || (elem != 4 && elem != 8 && elem != 16))
    return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t p = RoundUp(width, kPitchAlign);
  if (p * height > UINT_MAX) return CUDA_ERROR_OUT_OF_MEMORY;
  CUdeviceptr a;
  CUresult r = AllocLocked(c, p * height, true, &a);
  if (r == CUDA_SUCCESS) *dptr = static_cast<unsigned>(a), *pitch = static_cast<unsigned>(p);
  return r;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (CurrentLocked() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return FreeLocked(dptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemFree(unsigned int dptr) { return cuMemFree_v2(dptr); }

CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                       CUmemAllocationGranularity_flags option) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (granularity == nullptr || prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
    return CUDA_ERROR_INVALID_VALUE;
  if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = CheckDevice(prop->location.id, nullptr); r != CUDA_SUCCESS) return r;
  *granularity = kGranularity;
  return CUDA_SUCCESS;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                     const CUmemAllocationProp* prop, unsigned long long flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (handle == nullptr || prop == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int phys;
  if (CUresult r = CheckDevice(prop->location.id, &phys); r != CUDA_SUCCESS) return r;
  if (size == 0 || size % kGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
  if (!ChargeLocked(phys, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUmemGenericAllocationHandle h = D().next_handle++;
  D().handles[h] = Alloc{phys, size, size, nullptr, nullptr, false};
  *handle = h;
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  Lock l(D().mu);
  REQUIRE_INIT();
  auto it = D().handles.find(handle);
  if (it == D().handles.end()) return CUDA_ERROR_INVALID_VALUE;
  D().state->Uncharge(it->second.phys, it->second.charged);
  D().handles.erase(it);
  return CUDA_SUCCESS;
}

// ---- stream-ordered allocation and pools ----

CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  Lock l(D().mu);
  return PoolAllocLocked(dptr, bytesize, nullptr, stream);
}
CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return cuMemAllocAsync(dptr, bytesize, stream);
}
CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                 CUstream stream) {
  Lock l(D().mu);
  if (pool == nullptr && D().initialized) return CUDA_ERROR_INVALID_VALUE;
  return PoolAllocLocked(dptr, bytesize, reinterpret_cast<Pool*>(pool), stream);
}
CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                      CUstream stream) {
  return cuMemAllocFromPoolAsync(dptr, bytesize, pool, stream);
}
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) { return FreeAsyncCommon(dptr, stream); }
CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  return FreeAsyncCommon(dptr, stream);
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  Pool*& p = D().default_pool[dev];
  if (p == nullptr) {
    p = new Pool{phys, true};
    D().pools.insert(p);
  }
  *pool = reinterpret_cast<CUmemoryPool>(p);
  return CUDA_SUCCESS;
}

// There is no cuDeviceSetMemPool in the fake, so the current pool is the default pool.
CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  return cuDeviceGetDefaultMemPool(pool, dev);
}

CUresult cuMemPoolCreate(CUmemoryPool* pool, const void* props) {
  // Leading members of CUmemPoolProps (the rest is reserved/optional).
  struct PoolPropsHead {
    CUmemAllocationType allocType;
    CUmemAllocationHandleType handleTypes;
    CUmemLocation location;
  };
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pool == nullptr || props == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto* pp = static_cast<const PoolPropsHead*>(props);
  if (pp->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
      pp->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int phys;
  if (CUresult r = CheckDevice(pp->location.id, &phys); r != CUDA_SUCCESS) return r;
  Pool* p = new Pool{phys, false};
  D().pools.insert(p);
  *pool = reinterpret_cast<CUmemoryPool>(p);
  return CUDA_SUCCESS;
}

CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Pool* p = reinterpret_cast<Pool*>(pool);
  if (p == nullptr || !D().pools.count(p) || p->is_default) return CUDA_ERROR_INVALID_VALUE;
  // Outstanding allocations stay valid pointers; their memory goes with the pool.
  for (auto& [ptr, a] : D().allocs)
    if (a.pool == p) a.pool = nullptr;
  for (auto& f : D().pending_frees)
    if (f.pool == p) f.pool = nullptr;
  D().state->Uncharge(p->phys, p->reserved);
  D().pools.erase(p);
  delete p;
  return CUDA_SUCCESS;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Pool* p = reinterpret_cast<Pool*>(pool);
  if (p == nullptr || !D().pools.count(p)) return CUDA_ERROR_INVALID_VALUE;
  TrimLocked(p, minBytesToKeep);
  return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Pool* p = reinterpret_cast<Pool*>(pool);
  if (p == nullptr || !D().pools.count(p) || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto* v64 = static_cast<cuuint64_t*>(value);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      *static_cast<int*>(value) = p->reuse[attr - 1];
      break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
      *v64 = p->threshold;
      break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
      *v64 = p->reserved;
      break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      *v64 = p->reserved_high;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
      *v64 = p->used;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      *v64 = p->used_high;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Pool* p = reinterpret_cast<Pool*>(pool);
  if (p == nullptr || !D().pools.count(p) || value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  cuuint64_t v = 0;
  if (attr >= CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) v = *static_cast<cuuint64_t*>(value);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      p->reuse[attr - 1] = *static_cast<int*>(value) != 0;
      break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
      p->threshold = v;
      break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:  // may only be reset
      if (v != 0) return CUDA_ERROR_INVALID_VALUE;
      p->reserved_high = p->reserved;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (v != 0) return CUDA_ERROR_INVALID_VALUE;
      p->used_high = p->used;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;  // *_CURRENT are read-only
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (CUresult r = CheckDevice(dev, nullptr); r != CUDA_SUCCESS) return r;
  if (value == nullptr || attr < CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT ||
      attr > CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *static_cast<cuuint64_t*>(value) = 0;  // the fake has no graph memory nodes
  return CUDA_SUCCESS;
}

CUresult cuDeviceGraphMemTrim(CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  return CheckDevice(dev, nullptr);
}

// ---- arrays ----

CUresult cuArrayCreate_v2(CUarray* handle, const CUDA_ARRAY_DESCRIPTOR* d) {
  if (handle == nullptr || d == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return ArrayCreateCommon(reinterpret_cast<void**>(handle),
                           ArrayRawBytes(d->Width, d->Height, 0, d->Format, d->NumChannels));
}

CUresult cuArrayCreate(CUarray* handle, const void* desc) {
  struct V1 {
    unsigned Width, Height;
    CUarray_format Format;
    unsigned NumChannels;
  };
  if (handle == nullptr || desc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const V1* d = static_cast<const V1*>(desc);
  return ArrayCreateCommon(reinterpret_cast<void**>(handle),
                           ArrayRawBytes(d->Width, d->Height, 0, d->Format, d->NumChannels));
}

CUresult cuArray3DCreate_v2(CUarray* handle, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  if (handle == nullptr || d == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return ArrayCreateCommon(reinterpret_cast<void**>(handle),
                           ArrayRawBytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels));
}

CUresult cuArray3DCreate(CUarray* handle, const void* desc) {
  struct V1 {
    unsigned Width, Height, Depth;
    CUarray_format Format;
    unsigned NumChannels, Flags;
  };
  if (handle == nullptr || desc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const V1* d = static_cast<const V1*>(desc);
  return ArrayCreateCommon(reinterpret_cast<void**>(handle),
                           ArrayRawBytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels));
}

CUresult cuArrayDestroy(CUarray handle) { return ArrayDestroyCommon(handle); }

CUresult cuMipmappedArrayCreate(CUmipmappedArray* handle, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                unsigned int levels) {
  if (handle == nullptr || d == nullptr || levels == 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t largest = std::max({d->Width, d->Height, d->Depth});
  unsigned max_levels = 0;
  for (uint64_t x = largest; x; x >>= 1) ++max_levels;
  if (levels > max_levels) return CUDA_ERROR_INVALID_VALUE;
  uint64_t raw = 0;
  for (unsigned i = 0; i < levels; ++i) {
    auto dim = [i](uint64_t v) { return v ? std::max<uint64_t>(v >> i, 1) : 0; };
    uint64_t b =
        ArrayRawBytes(dim(d->Width), dim(d->Height), dim(d->Depth), d->Format, d->NumChannels);
    if (b == 0) return CUDA_ERROR_INVALID_VALUE;
    raw = std::min<uint64_t>(raw + b, 1ull << 62);
  }
  return ArrayCreateCommon(reinterpret_cast<void**>(handle), raw);
}

CUresult cuMipmappedArrayDestroy(CUmipmappedArray handle) { return ArrayDestroyCommon(handle); }

// ---- launches ----

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                        CUstream stream, void**, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                             unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                             CUstream stream, void**, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void**, void**) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return LaunchCommon(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                      config->blockDimY, config->blockDimZ, config->hStream);
}
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params,
                               void** extra) {
  return cuLaunchKernelEx(config, f, params, extra);
}
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                   unsigned int bx, unsigned int by, unsigned int bz, unsigned int,
                                   CUstream stream, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                        unsigned int gz, unsigned int bx, unsigned int by,
                                        unsigned int bz, unsigned int, CUstream stream, void**) {
  return LaunchCommon(f, gx, gy, gz, bx, by, bz, stream);
}
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  return GraphLaunchCommon(exec, stream);
}
CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream stream) {
  return GraphLaunchCommon(exec, stream);
}

// ---- streams and events ----

CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (stream == nullptr || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* s = new Stream{c, 0};
  D().streams.insert(s);
  *stream = reinterpret_cast<CUstream>(s);
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream stream) { return StreamDestroyCommon(stream); }
CUresult cuStreamDestroy(CUstream stream) { return StreamDestroyCommon(stream); }

CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  *status = CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
  uint64_t t;
  int phys;
  Stream* ss = nullptr;
  Ctx* cc = nullptr;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    Stream* s;
    Ctx* c;
    if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
    t = TailOf(s, c);
    phys = c->phys;
    ss = s;
    cc = c;
  }
  SleepUntil(t);
  Lock l(D().mu);
  CompletePendingFreesLocked([&](const PendingFree& f) { return f.stream == ss && f.ctx == cc; });
  TrimDeviceLocked(phys);
  return CUDA_SUCCESS;
}

CUresult cuStreamQuery(CUstream stream) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  return MonotonicNs() >= TailOf(s, c) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventCreate(CUevent* event, unsigned int flags) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (event == nullptr || (flags & ~0xFu)) return CUDA_ERROR_INVALID_VALUE;
  if (CurrentLocked() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* e = new Event{flags, false, 0};
  D().events.insert(e);
  *event = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent event) { return EventDestroyCommon(event); }
CUresult cuEventDestroy(CUevent event) { return EventDestroyCommon(event); }

CUresult cuEventRecord(CUevent event, CUstream stream) {
  Lock l(D().mu);
  REQUIRE_INIT();
  auto* e = reinterpret_cast<Event*>(event);
  if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s;
  Ctx* c;
  if (CUresult r = ResolveStreamLocked(stream, &s, &c); r != CUDA_SUCCESS) return r;
  // The device processes an event in order with kernels: after the stream's previous work,
  // and, on an idle stream, not before the device (busy with other work, possibly of other
  // processes) would get to it. So start/end events around a launch time the kernel itself.
  uint64_t now = MonotonicNs(), tail = TailOf(s, c);
  e->t = tail > now ? tail : std::max(now, D().state->BusyUntil(c->phys));
  e->recorded = true;
  return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent event) {
  Lock l(D().mu);
  REQUIRE_INIT();
  auto* e = reinterpret_cast<Event*>(event);
  if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
  return !e->recorded || MonotonicNs() >= e->t ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventSynchronize(CUevent event) {
  uint64_t t;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    auto* e = reinterpret_cast<Event*>(event);
    if (!D().events.count(e)) return CUDA_ERROR_INVALID_HANDLE;
    t = e->recorded ? e->t : 0;
  }
  SleepUntil(t);
  Lock l(D().mu);
  CompletePendingFreesLocked([](const PendingFree&) { return true; });
  return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto* a = reinterpret_cast<Event*>(start);
  auto* b = reinterpret_cast<Event*>(end);
  if (!D().events.count(a) || !D().events.count(b)) return CUDA_ERROR_INVALID_HANDLE;
  constexpr unsigned kDisableTiming = 0x2;
  if (!a->recorded || !b->recorded || ((a->flags | b->flags) & kDisableTiming))
    return CUDA_ERROR_INVALID_HANDLE;
  uint64_t now = MonotonicNs();
  if (now < a->t || now < b->t) return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>((static_cast<double>(b->t) - static_cast<double>(a->t)) / 1e6);
  return CUDA_SUCCESS;
}

// ---- errors ----

namespace {
struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM",
     "OS call failed or operation not supported on this OS"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
const ErrorText* FindError(CUresult e) {
  for (const ErrorText& t : kErrors)
    if (t.code == e) return &t;
  return nullptr;
}
}  // namespace

CUresult cuGetErrorString(CUresult error, const char** str) {
  if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* t = FindError(error);
  *str = t ? t->text : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult error, const char** str) {
  if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* t = FindError(error);
  *str = t ? t->name : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// ---- cuGetProcAddress ----

CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult* symbolStatus) {
  return GetProcAddress(symbol, pfn, cudaVersion, flags, symbolStatus);
}

CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return GetProcAddress(symbol, pfn, cudaVersion, flags, nullptr);
}

// ---- test API ----

CUresult fakegpuKernelCreate(CUfunction* f, uint64_t duration_ns) {
  if (f == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  auto* k = new Kernel{duration_ns, false};
  D().kernels.insert(k);
  *f = reinterpret_cast<CUfunction>(k);
  return CUDA_SUCCESS;
}

CUresult fakegpuKernelDestroy(CUfunction f) {
  Lock l(D().mu);
  auto* k = reinterpret_cast<Kernel*>(f);
  if (!D().kernels.count(k)) return CUDA_ERROR_INVALID_HANDLE;
  D().kernels.erase(k);
  delete k;
  return CUDA_SUCCESS;
}

CUresult fakegpuGraphCreate(CUgraphExec* g, CUfunction f, unsigned count) {
  if (g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  auto* k = reinterpret_cast<Kernel*>(f);
  if (!D().kernels.count(k)) return CUDA_ERROR_INVALID_HANDLE;
  auto* graph = new Graph{k, count};
  D().graphs.insert(graph);
  *g = reinterpret_cast<CUgraphExec>(graph);
  return CUDA_SUCCESS;
}

CUresult fakegpuGraphDestroy(CUgraphExec g) {
  Lock l(D().mu);
  auto* graph = reinterpret_cast<Graph*>(g);
  if (!D().graphs.count(graph)) return CUDA_ERROR_INVALID_VALUE;
  D().graphs.erase(graph);
  delete graph;
  return CUDA_SUCCESS;
}

CUresult fakegpuDeviceBusyNs(CUdevice dev, uint64_t* busy_ns) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (busy_ns == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *busy_ns = D().state->BusyNsTotal(phys);
  return CUDA_SUCCESS;
}

CUresult fakegpuDeviceContextSwitches(CUdevice dev, uint64_t* switches) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (switches == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *switches = D().state->ContextSwitches(phys);
  return CUDA_SUCCESS;
}

CUresult fakegpuMemUsage(CUdevice dev, uint64_t* process_bytes, uint64_t* device_bytes) {
  Lock l(D().mu);
  REQUIRE_INIT();
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  if (process_bytes) *process_bytes = D().state->OwnUsed(phys);
  if (device_bytes) *device_bytes = D().state->DeviceUsed(phys);
  return CUDA_SUCCESS;
}

}  // extern "C"

// ---- the cuGetProcAddress table: (base name, CUDA version introduced, symbol[, _ptsz]) ----

namespace hami::fakegpu {
namespace {

struct ProcEntry {
  const char* base;
  int version;
  void* fn;
  void* ptsz;
};

#define E(base, ver, fn) \
  { base, ver, reinterpret_cast<void*>(&fn), nullptr }
#define P(base, ver, fn) \
  { base, ver, reinterpret_cast<void*>(&fn), reinterpret_cast<void*>(&fn##_ptsz) }

const ProcEntry kProcTable[] = {
    E("cuInit", 2000, cuInit),
    E("cuDriverGetVersion", 2020, cuDriverGetVersion),
    E("cuGetProcAddress", 11030, cuGetProcAddress),
    E("cuGetProcAddress", 12000, cuGetProcAddress_v2),
    E("cuGetErrorString", 6000, cuGetErrorString),
    E("cuGetErrorName", 6000, cuGetErrorName),
    E("cuDeviceGetCount", 2000, cuDeviceGetCount),
    E("cuDeviceGet", 2000, cuDeviceGet),
    E("cuDeviceGetName", 2000, cuDeviceGetName),
    E("cuDeviceGetUuid", 9020, cuDeviceGetUuid),
    E("cuDeviceGetUuid", 11040, cuDeviceGetUuid_v2),
    E("cuDeviceGetAttribute", 2000, cuDeviceGetAttribute),
    E("cuDeviceTotalMem", 2000, cuDeviceTotalMem),
    E("cuDeviceTotalMem", 3020, cuDeviceTotalMem_v2),
    E("cuDeviceGetMemPool", 11020, cuDeviceGetMemPool),
    E("cuDeviceGetDefaultMemPool", 11020, cuDeviceGetDefaultMemPool),
    E("cuDeviceGetGraphMemAttribute", 11040, cuDeviceGetGraphMemAttribute),
    E("cuDeviceGraphMemTrim", 11040, cuDeviceGraphMemTrim),
    E("cuDevicePrimaryCtxRetain", 7000, cuDevicePrimaryCtxRetain),
    E("cuDevicePrimaryCtxRelease", 7000, cuDevicePrimaryCtxRelease),
    E("cuDevicePrimaryCtxRelease", 11000, cuDevicePrimaryCtxRelease_v2),
    E("cuDevicePrimaryCtxReset", 7000, cuDevicePrimaryCtxReset),
    E("cuDevicePrimaryCtxReset", 11000, cuDevicePrimaryCtxReset_v2),
    E("cuCtxCreate", 2000, cuCtxCreate),
    E("cuCtxCreate", 3020, cuCtxCreate_v2),
    E("cuCtxCreate", 11040, cuCtxCreate_v3),
    E("cuCtxCreate", 12050, cuCtxCreate_v4),
    E("cuCtxDestroy", 2000, cuCtxDestroy),
    E("cuCtxDestroy", 4000, cuCtxDestroy_v2),
    E("cuCtxGetCurrent", 4000, cuCtxGetCurrent),
    E("cuCtxSetCurrent", 4000, cuCtxSetCurrent),
    E("cuCtxGetDevice", 2000, cuCtxGetDevice),
    E("cuCtxSynchronize", 2000, cuCtxSynchronize),
    E("cuMemGetInfo", 2000, cuMemGetInfo),
    E("cuMemGetInfo", 3020, cuMemGetInfo_v2),
    E("cuMemAlloc", 2000, cuMemAlloc),
    E("cuMemAlloc", 3020, cuMemAlloc_v2),
    E("cuMemAllocPitch", 2000, cuMemAllocPitch),
    E("cuMemAllocPitch", 3020, cuMemAllocPitch_v2),
    E("cuMemFree", 2000, cuMemFree),
    E("cuMemFree", 3020, cuMemFree_v2),
    E("cuMemAllocManaged", 6000, cuMemAllocManaged),
    E("cuMemCreate", 10020, cuMemCreate),
    E("cuMemRelease", 10020, cuMemRelease),
    E("cuMemGetAllocationGranularity", 10020, cuMemGetAllocationGranularity),
    P("cuMemAllocAsync", 11020, cuMemAllocAsync),
    P("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync),
    P("cuMemFreeAsync", 11020, cuMemFreeAsync),
    E("cuMemPoolTrimTo", 11020, cuMemPoolTrimTo),
    E("cuMemPoolDestroy", 11020, cuMemPoolDestroy),
    E("cuMemPoolCreate", 11020, cuMemPoolCreate),
    E("cuMemPoolGetAttribute", 11020, cuMemPoolGetAttribute),
    E("cuMemPoolSetAttribute", 11020, cuMemPoolSetAttribute),
    E("cuArrayCreate", 2000, cuArrayCreate),
    E("cuArrayCreate", 3020, cuArrayCreate_v2),
    E("cuArray3DCreate", 2000, cuArray3DCreate),
    E("cuArray3DCreate", 3020, cuArray3DCreate_v2),
    E("cuArrayDestroy", 2000, cuArrayDestroy),
    E("cuMipmappedArrayCreate", 5000, cuMipmappedArrayCreate),
    E("cuMipmappedArrayDestroy", 5000, cuMipmappedArrayDestroy),
    P("cuLaunchKernel", 4000, cuLaunchKernel),
    P("cuLaunchKernelEx", 11060, cuLaunchKernelEx),
    P("cuLaunchCooperativeKernel", 9000, cuLaunchCooperativeKernel),
    P("cuGraphLaunch", 10000, cuGraphLaunch),
    E("cuStreamIsCapturing", 10000, cuStreamIsCapturing),
    E("cuStreamCreate", 2000, cuStreamCreate),
    E("cuStreamDestroy", 2000, cuStreamDestroy),
    E("cuStreamDestroy", 4000, cuStreamDestroy_v2),
    E("cuStreamSynchronize", 2000, cuStreamSynchronize),
    E("cuStreamQuery", 2000, cuStreamQuery),
    E("cuEventCreate", 2000, cuEventCreate),
    E("cuEventDestroy", 2000, cuEventDestroy),
    E("cuEventDestroy", 4000, cuEventDestroy_v2),
    E("cuEventRecord", 2000, cuEventRecord),
    E("cuEventQuery", 2000, cuEventQuery),
    E("cuEventSynchronize", 2000, cuEventSynchronize),
    E("cuEventElapsedTime", 2000, cuEventElapsedTime),
};
#undef E
#undef P

CUresult GetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~static_cast<cuuint64_t>(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                                       CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  const ProcEntry* best = nullptr;
  bool known = false;
  for (const ProcEntry& e : kProcTable) {
    if (strcmp(e.base, symbol) != 0) continue;
    known = true;
    if (e.version <= version && (best == nullptr || e.version > best->version)) best = &e;
  }
  *pfn = nullptr;
  if (best == nullptr) {
    if (status)
      *status =
          known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_ERROR_NOT_FOUND;
  }
  bool ptds = flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  *pfn = ptds && best->ptsz ? best->ptsz : best->fn;
  if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace hami::fakegpu
