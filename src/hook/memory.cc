// Memory hooks: every allocation path is charged to the container's accounting before the
// driver is asked, and every free releases exactly what was charged.
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hooks.h"
#include "log.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {

bool g_graph_memory_seen = false;

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kPoolChunk = 2 * kMiB;
constexpr uint64_t kPoolGrainMax = 64 * kMiB;          // a learned pool growth step is at most this
constexpr uint64_t kDefaultContextBytes = 256 * kMiB;  // when NVML cannot measure it
constexpr uint64_t kMaxContextBytes = 4096 * kMiB;

uint64_t RoundUp(uint64_t v, uint64_t to) { return to ? (v + to - 1) / to * to : v; }

enum Kind { kPtr = 0, kVmm, kArray, kMipmap, kContext, kKinds };

struct Charge {
  int ordinal;
  uint64_t bytes;
  CUmemoryPool pool;  // for async allocations: the pool that served it
};

struct PoolRec {
  CUmemoryPool pool;
  int ordinal;
  uint64_t counted;  // bytes of the pool's reservation charged to us
  uint64_t grain;    // the driver's growth step, learned (0 = not seen yet: kPoolChunk)
};

// What this process has charged, so frees release exactly that.
struct Tracker {
  std::mutex mu;
  std::unordered_map<uint64_t, Charge> maps[kKinds];
  std::vector<PoolRec> pools;
  uint64_t graph_counted[kMaxDevices] = {};
  int primary_refs[kMaxDevices] = {};
  uint64_t primary_cost[kMaxDevices] = {};
};

Tracker& T() {
  static Tracker* t = new Tracker;  // never destroyed: hooks may run during exit
  return *t;
}

pthread_mutex_t g_primary_mu = PTHREAD_MUTEX_INITIALIZER;

enum class Gate { kAccount, kPassThrough, kRefuse };

Gate MemGate(CUresult* refuse) {
  if (!LoadRealCuda() || !EnsureConfig()) {
    *refuse = CUDA_ERROR_NOT_INITIALIZED;
    return Gate::kRefuse;
  }
  if (!g_state.cuda_ready && !EnsureCudaDevices()) {
    if (g_state.error[0]) {
      *refuse = CUDA_ERROR_NOT_INITIALIZED;
      return Gate::kRefuse;
    }
    return Gate::kPassThrough;  // cuInit not called yet: the driver answers
  }
  return g_state.accounting ? Gate::kAccount : Gate::kPassThrough;
}

bool Reserve(int ord, uint64_t bytes) {
  const DeviceState& d = g_state.dev[ord];
  if (d.entry < 0) return d.limit == 0;
  return g_state.acct.Reserve(d.entry, bytes, d.limit);
}

void Release(int ord, uint64_t bytes) {
  if (ord < 0 || ord >= g_state.ndev) return;
  g_state.acct.Release(g_state.dev[ord].entry, bytes);
}

void Track(Kind k, uint64_t key, int ord, uint64_t bytes, CUmemoryPool pool = nullptr) {
  std::lock_guard<std::mutex> g(T().mu);
  T().maps[k][key] = Charge{ord, bytes, pool};
}

bool Untrack(Kind k, uint64_t key, Charge* out) {
  std::lock_guard<std::mutex> g(T().mu);
  auto it = T().maps[k].find(key);
  if (it == T().maps[k].end()) return false;
  *out = it->second;
  T().maps[k].erase(it);
  return true;
}

// Charges one allocation, calls the driver, and tracks or rolls back.
template <typename Call>
CUresult Charged(Kind kind, int ord, uint64_t bytes, Call call, uint64_t* key_out) {
  if (!Reserve(ord, bytes)) {
    VGPU_LOG(kLogInfo, "allocation of %llu bytes on device %d refused: over the %llu MiB limit",
             static_cast<unsigned long long>(bytes), ord,
             static_cast<unsigned long long>(g_state.dev[ord].limit >> 20));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  CUresult r = call();
  if (r != CUDA_SUCCESS) {
    Release(ord, bytes);
    return r;
  }
  Track(kind, *key_out, ord, bytes);
  return r;
}

CUresult Uncharged(Kind kind, uint64_t key, CUresult (*call)(uint64_t)) {
  Charge c;
  bool known = Untrack(kind, key, &c);
  CUresult r = call(key);
  if (!known) return r;
  if (r == CUDA_SUCCESS) {
    Release(c.ordinal, c.bytes);
  } else {
    Track(kind, key, c.ordinal, c.bytes, c.pool);
  }
  return r;
}

size_t ElementBytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    default:
      return 4;  // 32-bit formats; conservative for the rest
  }
}

uint64_t ArrayBytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned channels) {
  uint64_t b = static_cast<uint64_t>(w) * (h ? h : 1) * (d ? d : 1) * (channels ? channels : 1) *
               ElementBytes(f);
  return RoundUp(b, kPoolChunk);
}

// Device memory in use on the physical GPU, from NVML. False when NVML is unavailable.
bool NvmlUsed(const char* uuid, uint64_t* used) {
  static bool inited = LoadRealNvml() && g_nvml.nvmlInit_v2() == NVML_SUCCESS;
  if (!inited) return false;
  nvmlDevice_t h;
  if (g_nvml.nvmlDeviceGetHandleByUUID(uuid, &h) != NVML_SUCCESS) return false;
  nvmlMemory_t m;
  if (g_nvml.nvmlDeviceGetMemoryInfo(h, &m) != NVML_SUCCESS) return false;
  *used = m.used;
  return true;
}

// Whether this process lives in the initial PID namespace, where NVML's process list uses
// the same PIDs as getpid() and can tell exactly what the driver holds for us.
bool InInitialPidNamespace() {
  static int cached = -1;
  if (cached < 0) {
    char buf[64] = {};
    ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);
    cached = n > 0 && strcmp(buf, "pid:[4026531836]") == 0 ? 1 : 0;
  }
  return cached == 1;
}

// NVML's list of processes with a context on device `ord` (host PIDs). False when NVML or
// the list is unavailable, or the list does not fit.
constexpr unsigned kMaxProcs = 64;
bool DriverProcesses(int ord, nvmlProcessInfo_t (&infos)[kMaxProcs], unsigned* count) {
  static bool inited = LoadRealNvml() && g_nvml.nvmlInit_v2() == NVML_SUCCESS;
  if (!inited || !g_nvml.nvmlDeviceGetComputeRunningProcesses_v3) return false;
  nvmlDevice_t h;
  if (g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[ord].uuid, &h) != NVML_SUCCESS) return false;
  *count = kMaxProcs;
  return g_nvml.nvmlDeviceGetComputeRunningProcesses_v3(h, count, infos) == NVML_SUCCESS &&
         *count <= kMaxProcs;
}

// This process's PID as NVML reports it. In the host's PID namespace that is getpid(). In a
// container's own PID namespace NVML still reports host PIDs; the limiter learns ours when
// the process creates a context on a device where it had none: the one PID that joins the
// device's process list across the creation (ChargedContext; the container's other processes
// are kept from creating contexts meanwhile). 0: not known (no context created yet, or
// another container's process joined at the same moment). A forked child starts unknown.
uint32_t g_driver_pid = 0;
pid_t g_driver_pid_of = 0;  // the getpid() that learned it

uint32_t DriverPid() {
  if (InInitialPidNamespace()) return static_cast<uint32_t>(getpid());
  return __atomic_load_n(&g_driver_pid_of, __ATOMIC_ACQUIRE) == getpid()
             ? __atomic_load_n(&g_driver_pid, __ATOMIC_RELAXED)
             : 0;
}

// PIDs in `after` and not in `before`: the one that joined, or 0 when none or several did.
uint32_t JoinedPid(const nvmlProcessInfo_t* before, unsigned nb, const nvmlProcessInfo_t* after,
                   unsigned na) {
  uint32_t joined = 0;
  for (unsigned i = 0; i < na; ++i) {
    bool known = false;
    for (unsigned j = 0; j < nb && !known; ++j) known = before[j].pid == after[i].pid;
    if (known) continue;
    if (joined) return 0;
    joined = after[i].pid;
  }
  return joined;
}

// Device memory the driver reports for this process on device `ord` (contexts, modules,
// pools and allocations alike). False when it cannot be known exactly.
bool ProcessUsed(int ord, uint64_t* used) {
  uint32_t self = DriverPid();
  if (self == 0) return false;
  nvmlProcessInfo_t infos[kMaxProcs];
  unsigned int count = 0;
  if (!DriverProcesses(ord, infos, &count)) return false;
  for (unsigned int i = 0; i < count; ++i) {
    if (infos[i].pid == self) {
      *used = infos[i].usedGpuMemory;
      return true;
    }
  }
  *used = 0;
  return true;
}

uint64_t g_overhead[kMaxDevices];
uint64_t g_last_sync_ns[kMaxDevices];

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Charges memory the driver holds for this process beyond what the hooks counted (context
// growth, lazily loaded modules, pool bookkeeping). Rate-limited unless forced. Returns false
// when the charge did not fit the limit (it is recorded anyway: the memory exists).
bool SyncDriverOverhead(int ord, bool force) {
  const DeviceState& d = g_state.dev[ord];
  if (d.entry < 0) return true;
  uint64_t now = MonoNs();
  if (!force && now - __atomic_load_n(&g_last_sync_ns[ord], __ATOMIC_RELAXED) < 200000000ull)
    return true;
  __atomic_store_n(&g_last_sync_ns[ord], now, __ATOMIC_RELAXED);
  uint64_t real = 0;
  if (!ProcessUsed(ord, &real)) return true;
  uint64_t counted = g_state.acct.MyUsed(d.entry);
  if (real <= counted) return true;
  uint64_t extra = real - counted;
  bool fits = Reserve(ord, extra);
  if (!fits) g_state.acct.Reserve(d.entry, extra, 0);
  __atomic_add_fetch(&g_overhead[ord], extra, __ATOMIC_RELAXED);
  VGPU_LOG(kLogInfo, "device %d: %llu MiB held by the driver for this process charged", ord,
           static_cast<unsigned long long>(extra >> 20));
  return fits;
}

// ---- pools -------------------------------------------------------------------------------

uint64_t PoolReserved(CUmemoryPool pool) {
  cuuint64_t v = 0;
  if (g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v) != CUDA_SUCCESS)
    return 0;
  return v;
}

PoolRec* FindPool(CUmemoryPool pool) {
  for (auto& p : T().pools)
    if (p.pool == pool) return &p;
  return nullptr;
}

// The growth step that explains a pool growing by `grew` bytes for `need`: the smallest power
// of two from 2 MiB up to kPoolGrainMax with RoundUp(need, step) == grew, else kPoolGrainMax
// when the growth stays under it (a cautious guess), else 0 (nothing learned).
uint64_t PoolGrain(uint64_t need, uint64_t grew) {
  for (uint64_t g = kPoolChunk; g <= kPoolGrainMax; g *= 2)
    if (RoundUp(need, g) == grew) return g;
  return grew <= kPoolGrainMax ? kPoolGrainMax : 0;
}

// Brings the charge for `pool` to what the driver says it reserves. Growth beyond the limit
// is charged anyway (the memory exists) and reported as false so the caller can undo.
// `now`: the pool's reservation, when the caller has just read it.
bool ReconcilePoolLocked(PoolRec* p, uint64_t now) {
  bool ok = true;
  if (now > p->counted) {
    uint64_t grow = now - p->counted;
    if (!Reserve(p->ordinal, grow)) {
      ok = false;
      const DeviceState& d = g_state.dev[p->ordinal];
      if (d.entry >= 0) g_state.acct.Reserve(d.entry, grow, 0);
    }
  } else if (now < p->counted) {
    Release(p->ordinal, p->counted - now);
  }
  p->counted = now;
  return ok;
}
bool ReconcilePoolLocked(PoolRec* p) { return ReconcilePoolLocked(p, PoolReserved(p->pool)); }

void ReconcileAllPools() {
  std::lock_guard<std::mutex> g(T().mu);
  for (auto& p : T().pools) ReconcilePoolLocked(&p);
}

// Gives unused pool memory back to the driver (the application's pools cache freed
// blocks), so a tight limit is not consumed by cache.
void TrimAllPools() {
  std::lock_guard<std::mutex> g(T().mu);
  for (auto& p : T().pools) {
    cuuint64_t used = 0;
    g_cuda.cuMemPoolGetAttribute(p.pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
    g_cuda.cuMemPoolTrimTo(p.pool, used);
    ReconcilePoolLocked(&p);
  }
}

CUresult AllocAsync(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream stream,
                    CUresult (*real)(CUdeviceptr*, size_t, CUmemoryPool, CUstream),
                    CUresult (*real_free)(CUdeviceptr, CUstream)) {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  if (gate == Gate::kPassThrough) return real(dptr, size, pool, stream);
  int ord = CurrentOrdinal();
  if (ord < 0) return real(dptr, size, pool, stream);
  if (!pool) {
    CUdevice dev = g_state.dev[ord].handle;
    if (g_cuda.cuDeviceGetMemPool(&pool, dev) != CUDA_SUCCESS)
      return real(dptr, size, pool, stream);
  }
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  if (g_cuda.cuStreamIsCapturing(stream, &cap) == CUDA_SUCCESS &&
      cap == CU_STREAM_CAPTURE_STATUS_ACTIVE) {
    // Captured allocations become graph memory nodes, charged when the graph runs.
    __atomic_store_n(&g_graph_memory_seen, true, __ATOMIC_RELAXED);
    return real(dptr, size, pool, stream);
  }
  // Charge the growth this allocation can cause before asking the driver.
  cuuint64_t used = 0, reserved = 0;
  g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
  g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
  bool first = false;
  uint64_t grain = kPoolChunk;
  {
    std::lock_guard<std::mutex> g(T().mu);
    if (!FindPool(pool)) {
      T().pools.push_back(PoolRec{pool, ord, 0, 0});
      first = true;
    }
    PoolRec* p = FindPool(pool);
    ReconcilePoolLocked(p, reserved);
    if (p->grain) grain = p->grain;
  }
  // Pre-charge the growth in the driver's own steps (learned below), so that a growth which
  // would pass the limit is refused before the driver makes it.
  uint64_t need = used + size > reserved ? RoundUp(used + size - reserved, grain) : 0;
  if (need && !Reserve(ord, need)) {
    TrimAllPools();
    if (!Reserve(ord, need)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  CUresult r = real(dptr, size, pool, stream);
  bool within = true;
  {
    std::lock_guard<std::mutex> g(T().mu);
    PoolRec* p = FindPool(pool);
    // The driver grew by more than asked: it grows in larger steps (32 MiB on an H200).
    uint64_t after = PoolReserved(pool);
    uint64_t grew = after > reserved ? after - reserved : 0;
    if (grew > need) p->grain = std::max(p->grain, PoolGrain(need, grew));
    p->counted += need;  // the pre-charge now belongs to the pool's reservation
    within = ReconcilePoolLocked(p, after);
  }
  // The driver sets up per-pool state on the device at the first allocation, outside the
  // pool's reported reservation.
  // Growing a pool is when the driver takes memory beyond the reservation: check at once.
  if (r == CUDA_SUCCESS && !SyncDriverOverhead(ord, first || need > 0)) within = false;
  if (r != CUDA_SUCCESS) return r;
  if (!within) {
    // The driver grew the pool past the limit (its chunk was larger than our estimate).
    // The free is stream-ordered: until the GPU reaches it the block is in use and a trim
    // keeps it, leaving the pool's growth cached above the limit (seen on an H200: 4108 MiB
    // under a 4096 MiB cap). Wait for it, then give the growth back.
    real_free(*dptr, stream);
    g_cuda.cuCtxSynchronize();
    TrimAllPools();
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  Track(kPtr, *dptr, ord, 0, pool);
  return r;
}

CUresult FreeAsync(CUdeviceptr ptr, CUstream stream, CUresult (*real)(CUdeviceptr, CUstream)) {
  Charge c;
  bool known = g_state.accounting && Untrack(kPtr, ptr, &c);
  CUresult r = real(ptr, stream);
  if (!known) return r;
  if (r != CUDA_SUCCESS) {
    Track(kPtr, ptr, c.ordinal, c.bytes, c.pool);
    return r;
  }
  if (c.pool) {
    std::lock_guard<std::mutex> g(T().mu);
    if (PoolRec* p = FindPool(c.pool)) ReconcilePoolLocked(p);
  } else {
    Release(c.ordinal, c.bytes);  // a plain allocation freed in stream order
  }
  return r;
}

// ---- contexts ----------------------------------------------------------------------------

// Creates a context and charges what it took on the GPU (measured through NVML), refusing
// it when that does not fit the limit.
template <typename Create, typename Destroy>
CUresult ChargedContext(int ord, Create create, Destroy destroy, uint64_t* cost_out) {
  uint64_t before = 0, after = 0;
  // Exact when the driver's per-process figure is readable; else the device-wide change,
  // serialised against the container's other processes (other containers may still add
  // noise: docs/accounting.md).
  g_state.acct.LockCreation();
  uint64_t proc = 0;
  bool exact = ProcessUsed(ord, &proc);
  bool measured = exact || NvmlUsed(g_state.dev[ord].uuid, &before);
  // In a PID namespace of its own, this creation tells which host PID is ours.
  nvmlProcessInfo_t listed[kMaxProcs];
  unsigned nlisted = 0;
  bool learn = !exact && DriverPid() == 0 && DriverProcesses(ord, listed, &nlisted);
  CUresult r = create();
  if (r == CUDA_SUCCESS && learn) {
    nvmlProcessInfo_t now[kMaxProcs];
    unsigned nnow = 0;
    uint32_t pid = DriverProcesses(ord, now, &nnow) ? JoinedPid(listed, nlisted, now, nnow) : 0;
    if (pid) {
      __atomic_store_n(&g_driver_pid, pid, __ATOMIC_RELAXED);
      __atomic_store_n(&g_driver_pid_of, getpid(), __ATOMIC_RELEASE);
      VGPU_LOG(kLogInfo, "device %d: this process is PID %u to the driver", ord, pid);
      exact = true;
    }
  }
  if (r == CUDA_SUCCESS && exact) {
    exact = ProcessUsed(ord, &after);
    const DeviceState& d = g_state.dev[ord];
    uint64_t counted = d.entry >= 0 ? g_state.acct.MyUsed(d.entry) : 0;
    before = counted;
  } else if (r == CUDA_SUCCESS) {
    measured = measured && NvmlUsed(g_state.dev[ord].uuid, &after);
  }
  g_state.acct.UnlockCreation();
  if (r != CUDA_SUCCESS) return r;
  uint64_t cost = measured ? (after > before ? after - before : 0) : kDefaultContextBytes;
  if (cost > kMaxContextBytes) cost = kMaxContextBytes;
  if (!Reserve(ord, cost)) {
    destroy();
    VGPU_LOG(kLogError, "context on device %d needs %llu MiB, over the %llu MiB limit", ord,
             static_cast<unsigned long long>(cost >> 20),
             static_cast<unsigned long long>(g_state.dev[ord].limit >> 20));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *cost_out = cost;
  return CUDA_SUCCESS;
}

template <typename Create>
CUresult CreateContext(CUcontext* pctx, CUdevice dev, Create create) {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = OrdinalOf(dev);
  if (gate == Gate::kPassThrough || ord < 0) return create();
  uint64_t cost = 0;
  CUresult r = ChargedContext(
      ord, create, [&] { g_cuda.cuCtxDestroy_v2(*pctx); }, &cost);
  if (r == CUDA_SUCCESS) Track(kContext, reinterpret_cast<uint64_t>(*pctx), ord, cost);
  return r;
}

// Everything a process charged on a device, dropped when its primary context is reset.
void ReleaseDevice(int ord) {
  std::lock_guard<std::mutex> g(T().mu);
  uint64_t total = 0;
  for (int k : {kPtr, kArray, kMipmap}) {
    for (auto it = T().maps[k].begin(); it != T().maps[k].end();) {
      if (it->second.ordinal == ord) {
        total += it->second.bytes;
        it = T().maps[k].erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = T().pools.begin(); it != T().pools.end();) {
    if (it->ordinal == ord) {
      total += it->counted;
      it = T().pools.erase(it);
    } else {
      ++it;
    }
  }
  total += T().graph_counted[ord];
  T().graph_counted[ord] = 0;
  total += __atomic_exchange_n(&g_overhead[ord], 0, __ATOMIC_RELAXED);
  Release(ord, total);
}

}  // namespace

void ReconcileGraphMemory(int ord) {
  if (ord < 0 || !g_state.accounting) return;
  cuuint64_t reserved = 0;
  if (g_cuda.cuDeviceGetGraphMemAttribute(g_state.dev[ord].handle,
                                          CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
                                          &reserved) != CUDA_SUCCESS)
    return;
  std::lock_guard<std::mutex> g(T().mu);
  uint64_t& counted = T().graph_counted[ord];
  if (reserved > counted) {
    const DeviceState& d = g_state.dev[ord];
    if (!Reserve(ord, reserved - counted) && d.entry >= 0) {
      // The graph already holds the memory; record it so the container's view is true.
      g_state.acct.Reserve(d.entry, reserved - counted, 0);
      VGPU_LOG(kLogWarn, "graph memory on device %d exceeds the limit", ord);
    }
  } else if (reserved < counted) {
    Release(ord, counted - reserved);
  }
  counted = reserved;
}

// ---- hooks -------------------------------------------------------------------------------

CUresult Hook_cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !dptr) return g_cuda.cuMemAlloc_v2(dptr, bytesize);
  SyncDriverOverhead(ord, false);
  return Charged(
      kPtr, ord, RoundUp(bytesize, 512), [&] { return g_cuda.cuMemAlloc_v2(dptr, bytesize); },
      reinterpret_cast<uint64_t*>(dptr));
}

CUresult Hook_cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !dptr) return g_cuda.cuMemAllocManaged(dptr, bytesize, flags);
  // Managed memory can migrate to the device at any time: it is charged as device memory.
  return Charged(
      kPtr, ord, RoundUp(bytesize, 512),
      [&] { return g_cuda.cuMemAllocManaged(dptr, bytesize, flags); },
      reinterpret_cast<uint64_t*>(dptr));
}

CUresult Hook_cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                                 unsigned int elem) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !dptr || !pitch)
    return g_cuda.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
  uint64_t estimate = RoundUp(width, 512) * height;
  if (!Reserve(ord, estimate)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = g_cuda.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
  if (r != CUDA_SUCCESS) {
    Release(ord, estimate);
    return r;
  }
  uint64_t actual = static_cast<uint64_t>(*pitch) * height;  // the real pitch is what counts
  if (actual > estimate && !Reserve(ord, actual - estimate)) {
    g_cuda.cuMemFree_v2(*dptr);
    Release(ord, estimate);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (actual < estimate) Release(ord, estimate - actual);
  Track(kPtr, *dptr, ord, actual);
  return r;
}

CUresult Hook_cuMemFree_v2(CUdeviceptr dptr) noexcept {
  if (!g_state.accounting) return g_cuda.cuMemFree_v2(dptr);
  return Uncharged(kPtr, dptr, [](uint64_t k) { return g_cuda.cuMemFree_v2(k); });
}

CUresult Hook_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                          const CUmemAllocationProp* prop, unsigned long long flags) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = -1;
  if (gate == Gate::kAccount && prop && handle &&
      prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE)
    ord = OrdinalOf(prop->location.id);
  if (ord < 0) return g_cuda.cuMemCreate(handle, size, prop, flags);
  size_t gran = 0;
  if (g_cuda.cuMemGetAllocationGranularity(&gran, prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
      CUDA_SUCCESS)
    gran = kPoolChunk;
  return Charged(
      kVmm, ord, RoundUp(size, gran), [&] { return g_cuda.cuMemCreate(handle, size, prop, flags); },
      reinterpret_cast<uint64_t*>(handle));
}

CUresult Hook_cuMemRelease(CUmemGenericAllocationHandle handle) noexcept {
  if (!g_state.accounting) return g_cuda.cuMemRelease(handle);
  return Uncharged(kVmm, handle, [](uint64_t k) { return g_cuda.cuMemRelease(k); });
}

CUresult Hook_cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream stream) noexcept {
  return AllocAsync(
      dptr, bytesize, nullptr, stream,
      [](CUdeviceptr* p, size_t s, CUmemoryPool, CUstream st) {
        return g_cuda.cuMemAllocAsync(p, s, st);
      },
      g_cuda.cuMemFreeAsync);
}

CUresult Hook_cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream stream) noexcept {
  return AllocAsync(
      dptr, bytesize, nullptr, stream,
      [](CUdeviceptr* p, size_t s, CUmemoryPool, CUstream st) {
        return g_cuda.cuMemAllocAsync_ptsz(p, s, st);
      },
      g_cuda.cuMemFreeAsync_ptsz);
}

CUresult Hook_cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                      CUstream stream) noexcept {
  if (!pool) return g_cuda.cuMemAllocFromPoolAsync(dptr, bytesize, pool, stream);
  return AllocAsync(dptr, bytesize, pool, stream, g_cuda.cuMemAllocFromPoolAsync,
                    g_cuda.cuMemFreeAsync);
}

CUresult Hook_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                           CUstream stream) noexcept {
  if (!pool) return g_cuda.cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, stream);
  return AllocAsync(dptr, bytesize, pool, stream, g_cuda.cuMemAllocFromPoolAsync_ptsz,
                    g_cuda.cuMemFreeAsync_ptsz);
}

CUresult Hook_cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) noexcept {
  return FreeAsync(dptr, stream, g_cuda.cuMemFreeAsync);
}

CUresult Hook_cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) noexcept {
  return FreeAsync(dptr, stream, g_cuda.cuMemFreeAsync_ptsz);
}

CUresult Hook_cuMemPoolTrimTo(CUmemoryPool pool, size_t keep) noexcept {
  CUresult r = g_cuda.cuMemPoolTrimTo(pool, keep);
  if (g_state.accounting) {
    std::lock_guard<std::mutex> g(T().mu);
    if (PoolRec* p = FindPool(pool)) ReconcilePoolLocked(p);
  }
  return r;
}

CUresult Hook_cuMemPoolDestroy(CUmemoryPool pool) noexcept {
  CUresult r = g_cuda.cuMemPoolDestroy(pool);
  if (r == CUDA_SUCCESS && g_state.accounting) {
    std::lock_guard<std::mutex> g(T().mu);
    for (auto it = T().pools.begin(); it != T().pools.end(); ++it) {
      if (it->pool == pool) {
        Release(it->ordinal, it->counted);
        T().pools.erase(it);
        break;
      }
    }
  }
  return r;
}

CUresult Hook_cuArrayCreate_v2(CUarray* handle, const CUDA_ARRAY_DESCRIPTOR* desc) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !desc || !handle) return g_cuda.cuArrayCreate_v2(handle, desc);
  uint64_t bytes = ArrayBytes(desc->Width, desc->Height, 1, desc->Format, desc->NumChannels);
  return Charged(
      kArray, ord, bytes, [&] { return g_cuda.cuArrayCreate_v2(handle, desc); },
      reinterpret_cast<uint64_t*>(handle));
}

CUresult Hook_cuArray3DCreate_v2(CUarray* handle, const CUDA_ARRAY3D_DESCRIPTOR* desc) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !desc || !handle) return g_cuda.cuArray3DCreate_v2(handle, desc);
  uint64_t bytes =
      ArrayBytes(desc->Width, desc->Height, desc->Depth, desc->Format, desc->NumChannels);
  return Charged(
      kArray, ord, bytes, [&] { return g_cuda.cuArray3DCreate_v2(handle, desc); },
      reinterpret_cast<uint64_t*>(handle));
}

CUresult Hook_cuArrayDestroy(CUarray handle) noexcept {
  if (!g_state.accounting) return g_cuda.cuArrayDestroy(handle);
  return Uncharged(kArray, reinterpret_cast<uint64_t>(handle),
                   [](uint64_t k) { return g_cuda.cuArrayDestroy(reinterpret_cast<CUarray>(k)); });
}

CUresult Hook_cuMipmappedArrayCreate(CUmipmappedArray* handle, const CUDA_ARRAY3D_DESCRIPTOR* desc,
                                     unsigned int levels) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = gate == Gate::kAccount ? CurrentOrdinal() : -1;
  if (ord < 0 || !desc || !handle) return g_cuda.cuMipmappedArrayCreate(handle, desc, levels);
  uint64_t bytes = 0;
  size_t w = desc->Width, h = desc->Height, d = desc->Depth;
  for (unsigned l = 0; l < (levels ? levels : 1); ++l) {
    bytes += static_cast<uint64_t>(w ? w : 1) * (h ? h : 1) * (d ? d : 1) *
             (desc->NumChannels ? desc->NumChannels : 1) * ElementBytes(desc->Format);
    w >>= 1;
    h >>= 1;
    d >>= 1;
  }
  return Charged(
      kMipmap, ord, RoundUp(bytes, kPoolChunk),
      [&] { return g_cuda.cuMipmappedArrayCreate(handle, desc, levels); },
      reinterpret_cast<uint64_t*>(handle));
}

CUresult Hook_cuMipmappedArrayDestroy(CUmipmappedArray handle) noexcept {
  if (!g_state.accounting) return g_cuda.cuMipmappedArrayDestroy(handle);
  return Uncharged(kMipmap, reinterpret_cast<uint64_t>(handle), [](uint64_t k) {
    return g_cuda.cuMipmappedArrayDestroy(reinterpret_cast<CUmipmappedArray>(k));
  });
}

// Legacy 32-bit allocation entry points cannot be charged safely alongside 64-bit ones;
// with a limit in force they are refused rather than left as a way around it.
template <typename Call>
CUresult RefusedUnderLimit(Call call) {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  if (gate == Gate::kAccount) return CUDA_ERROR_NOT_SUPPORTED;
  return call();
}

CUresult Hook_cuMemAlloc(unsigned int* dptr, unsigned int bytesize) noexcept {
  return RefusedUnderLimit([&] { return g_cuda.cuMemAlloc(dptr, bytesize); });
}

CUresult Hook_cuMemAllocPitch(unsigned int* dptr, unsigned int* pitch, unsigned int width,
                              unsigned int height, unsigned int elem) noexcept {
  return RefusedUnderLimit(
      [&] { return g_cuda.cuMemAllocPitch(dptr, pitch, width, height, elem); });
}

CUresult Hook_cuArrayCreate(CUarray* handle, const void* desc) noexcept {
  return RefusedUnderLimit([&] { return g_cuda.cuArrayCreate(handle, desc); });
}

CUresult Hook_cuArray3DCreate(CUarray* handle, const void* desc) noexcept {
  return RefusedUnderLimit([&] { return g_cuda.cuArray3DCreate(handle, desc); });
}

// ---- contexts ----------------------------------------------------------------------------

CUresult Hook_cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  int ord = OrdinalOf(dev);
  if (gate == Gate::kPassThrough || ord < 0) return g_cuda.cuDevicePrimaryCtxRetain(pctx, dev);
  // The driver keeps one primary context per device; charge it on the first retain.
  pthread_mutex_lock(&g_primary_mu);
  CUresult r;
  if (T().primary_refs[ord] > 0) {
    r = g_cuda.cuDevicePrimaryCtxRetain(pctx, dev);
    if (r == CUDA_SUCCESS) T().primary_refs[ord]++;
  } else {
    uint64_t cost = 0;
    r = ChargedContext(
        ord, [&] { return g_cuda.cuDevicePrimaryCtxRetain(pctx, dev); },
        [&] { g_cuda.cuDevicePrimaryCtxRelease_v2(dev); }, &cost);
    if (r == CUDA_SUCCESS) {
      T().primary_refs[ord] = 1;
      T().primary_cost[ord] = cost;
    }
  }
  pthread_mutex_unlock(&g_primary_mu);
  return r;
}

namespace {

// After a successful release of the primary context: the last release frees its memory.
void PrimaryReleased(CUdevice dev) {
  int ord = OrdinalOf(dev);
  if (!g_state.accounting || ord < 0) return;
  pthread_mutex_lock(&g_primary_mu);
  if (T().primary_refs[ord] > 0 && --T().primary_refs[ord] == 0) {
    ReleaseDevice(ord);  // the context's memory goes with it
    Release(ord, T().primary_cost[ord]);
    T().primary_cost[ord] = 0;
  }
  pthread_mutex_unlock(&g_primary_mu);
}

// After a successful reset: every allocation of the device is gone.
void PrimaryReset(CUdevice dev) {
  int ord = OrdinalOf(dev);
  if (!g_state.accounting || ord < 0) return;
  pthread_mutex_lock(&g_primary_mu);
  ReleaseDevice(ord);
  Release(ord, T().primary_cost[ord]);
  T().primary_cost[ord] = 0;
  T().primary_refs[ord] = 0;
  pthread_mutex_unlock(&g_primary_mu);
}

}  // namespace

CUresult Hook_cuDevicePrimaryCtxRelease_v2(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxRelease_v2(dev);
  if (r == CUDA_SUCCESS) PrimaryReleased(dev);
  return r;
}

// The pre-11.0 variant the CUDA runtime may still ask cuGetProcAddress for.
CUresult Hook_cuDevicePrimaryCtxRelease(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxRelease(dev);
  if (r == CUDA_SUCCESS) PrimaryReleased(dev);
  return r;
}

CUresult Hook_cuDevicePrimaryCtxReset_v2(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxReset_v2(dev);
  if (r == CUDA_SUCCESS) PrimaryReset(dev);
  return r;
}

CUresult Hook_cuDevicePrimaryCtxReset(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDevicePrimaryCtxReset(dev);
  if (r == CUDA_SUCCESS) PrimaryReset(dev);
  return r;
}

CUresult Hook_cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) noexcept {
  return CreateContext(pctx, dev, [&] { return g_cuda.cuCtxCreate_v2(pctx, flags, dev); });
}

CUresult Hook_cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int num,
                             unsigned int flags, CUdevice dev) noexcept {
  return CreateContext(pctx, dev,
                       [&] { return g_cuda.cuCtxCreate_v3(pctx, params, num, flags, dev); });
}

CUresult Hook_cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                             CUdevice dev) noexcept {
  return CreateContext(pctx, dev, [&] { return g_cuda.cuCtxCreate_v4(pctx, params, flags, dev); });
}

CUresult Hook_cuCtxDestroy_v2(CUcontext ctx) noexcept {
  if (!g_state.accounting) return g_cuda.cuCtxDestroy_v2(ctx);
  return Uncharged(kContext, reinterpret_cast<uint64_t>(ctx), [](uint64_t k) {
    return g_cuda.cuCtxDestroy_v2(reinterpret_cast<CUcontext>(k));
  });
}

CUresult Hook_cuDeviceGraphMemTrim(CUdevice dev) noexcept {
  CUresult r = g_cuda.cuDeviceGraphMemTrim(dev);
  if (r == CUDA_SUCCESS) ReconcileGraphMemory(OrdinalOf(dev));
  return r;
}

// ---- info --------------------------------------------------------------------------------

CUresult Hook_cuMemGetInfo_v2(size_t* free, size_t* total) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  CUresult r = g_cuda.cuMemGetInfo_v2(free, total);
  if (r != CUDA_SUCCESS || gate != Gate::kAccount || !free || !total) return r;
  int ord = CurrentOrdinal();
  if (ord < 0) return r;
  const DeviceState& d = g_state.dev[ord];
  if (d.limit == 0) return r;
  ReconcileAllPools();
  g_state.acct.SweepDeadEvery(200000000ull);
  uint64_t used = g_state.acct.Used(d.entry);
  uint64_t limit = d.limit < *total ? d.limit : *total;
  uint64_t room = used < limit ? limit - used : 0;
  *total = limit;
  *free = room < *free ? room : *free;
  return r;
}

CUresult Hook_cuMemGetInfo(unsigned int* free, unsigned int* total) noexcept {
  size_t f = 0, t = 0;
  CUresult r = Hook_cuMemGetInfo_v2(&f, &t);
  if (r != CUDA_SUCCESS) return r;
  if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
  *free = f > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(f);
  *total = t > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(t);
  return r;
}

CUresult Hook_cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) noexcept {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  CUresult r = g_cuda.cuDeviceTotalMem_v2(bytes, dev);
  if (r != CUDA_SUCCESS || !bytes || !g_state.cuda_ready) return r;
  int ord = OrdinalOf(dev);
  if (ord >= 0 && g_state.dev[ord].limit && g_state.dev[ord].limit < *bytes)
    *bytes = g_state.dev[ord].limit;
  return r;
}

CUresult Hook_cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) noexcept {
  size_t b = 0;
  CUresult r = Hook_cuDeviceTotalMem_v2(&b, dev);
  if (r != CUDA_SUCCESS) return r;
  if (!bytes) return CUDA_ERROR_INVALID_VALUE;
  *bytes = b > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(b);
  return r;
}

}  // namespace hami::vgpu
