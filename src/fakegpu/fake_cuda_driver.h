// Internal to the fake libcuda.so.1 (fake_cuda_*.cc): the driver's objects, the one Driver
// behind a mutex, and the helpers the entry points share. All *Locked functions expect D().mu
// held. Nothing here is exported (the library is built with hidden visibility).
#pragma once

#include <limits.h>
#include <stdint.h>

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
#include "abi/cuda_api.h"
#include "fakegpu/fakegpu_test_api.h"
#pragma GCC visibility pop

namespace hami::fakegpu::driver {

constexpr int kDriverVersion = 13000;
constexpr uint64_t kGranularity = 2ull << 20;  // VMM and array rounding
constexpr uint64_t kPoolChunk = 32ull << 20;   // pools grow their reservation by this
constexpr uint64_t kPitchAlign = 512;

inline uint64_t RoundUp(uint64_t v, uint64_t a) { return v % a ? v + (a - v % a) : v; }

// cuCtxSetLimit's stack size, printf FIFO and malloc heap: their defaults, and the resident
// threads a stack size is reserved for (an H100's 132 SMs x 2048 threads).
inline constexpr uint64_t kLimitDefaults[3] = {1024, 1ull << 20, 8ull << 20};
inline constexpr uint64_t kResidentThreads = 132 * 2048;
struct Ctx {
  int ordinal;
  int phys;  // config index = state-file device
  bool primary;
  bool active;
  int refs;
  uint64_t tail;          // completion time of the context's latest work (legacy default stream)
  uint64_t module_bytes;  // lazily loaded module memory (FAKEGPU_LAZY_MODULE_MIB)
  // cuCtxSetLimit: stack size, printf FIFO, malloc heap (bytes), and the device memory their
  // growth beyond the defaults holds.
  uint64_t limits[3] = {kLimitDefaults[0], kLimitDefaults[1], kLimitDefaults[2]};
  uint64_t limit_bytes = 0;
};
struct Stream {
  Ctx* ctx;
  uint64_t tail;
};
struct Event {
  unsigned flags;
  bool recorded;
  uint64_t t;
  Ctx* ctx;  // destroyed with it, as the driver's events are
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
  // FAKEGPU_STREAM_OVERLAP=1: this process's kernels on different streams run concurrently.
  bool stream_overlap = false;
  // FAKEGPU_POWER_SLOWDOWN (> 1: a power-capped card): kernels run up to this factor slower
  // when the device was busy for more than 75 % of the last FAKEGPU_POWER_WINDOW_US (50 ms),
  // as a card at its power cap lowers its clock (an H200 running bf16 matmuls: ~1.2).
  double power_slowdown = 1.0;
  uint64_t power_window_ns = 50000000;
  // FAKEGPU_LAZY_MODULE_MIB: device memory a kernel's module takes at its first launch in a
  // context, as CUDA's lazy loading does (CUDA_MODULE_LOADING=LAZY, the default since 12.2).
  uint64_t lazy_module_bytes = 0;
  // FAKEGPU_COPY_GBPS: asynchronous copies and memsets run on a copy engine at this rate
  // (GB/s, default 25): they take stream time but no SM time.
  double copy_gbps = 25.0;
  // FAKEGPU_WAKE_US: a kernel queued on a device idle for FAKEGPU_WAKE_IDLE_MS (default 5)
  // or more runs this much longer, as a card (clocks) and host (caches) woken from idle run
  // their first work slower (0: none).
  uint64_t wake_ns = 0;
  uint64_t wake_idle_ns = 5000000;
};

// Leaked on purpose (no destructor ordering at exit). A forked child starts afresh, like a
// child of a real CUDA process, which must call cuInit itself.
extern Driver* g_driver;
extern thread_local Ctx* tls_ctx;

void LoadDriver();

inline Driver& D() {
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

void SleepUntil(uint64_t t_ns);
CUresult CheckDevice(CUdevice dev, int* phys);
Ctx* CurrentLocked();
bool ChargeLocked(int phys, uint64_t bytes);
uint64_t NewAddressLocked(uint64_t size, bool low32);
CUresult AllocLocked(Ctx* c, uint64_t size, bool low32, CUdeviceptr* out);
void TrimLocked(Pool* p, uint64_t keep);
void TrimDeviceLocked(int phys);
void DeactivateLocked(Ctx* c);
CUresult ResolveStreamLocked(CUstream h, Stream** s, Ctx** c);
inline uint64_t TailOf(Stream* s, Ctx* c) { return s ? s->tail : c->tail; }
void ScheduleLocked(Stream* s, Ctx* c, uint64_t duration);
// An asynchronous copy or memset of `bytes` on `stream` (copy engine time only).
CUresult CopyAsyncCommon(uint64_t bytes, CUstream stream);
CUresult LaunchCommon(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                      unsigned bz, CUstream stream);
CUresult GraphLaunchCommon(CUgraphExec exec, CUstream stream);
CUresult PoolAllocLocked(CUdeviceptr* dptr, size_t size, Pool* p, CUstream stream);
bool FreeLocked(CUdeviceptr dptr);
CUresult FreeAsyncCommon(CUdeviceptr dptr, CUstream stream);
uint64_t ArrayRawBytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned ch);
CUresult ArrayCreateCommon(void** handle, uint64_t raw_bytes);
CUresult ArrayDestroyCommon(void* handle);
CUresult CtxCreateCommon(CUcontext* pctx, CUdevice dev);
CUresult CtxDestroyCommon(CUcontext ctx);
CUresult PrimaryReleaseCommon(CUdevice dev);
CUresult PrimaryResetCommon(CUdevice dev);
CUresult StreamDestroyCommon(CUstream h);
CUresult EventDestroyCommon(CUevent e);
CUresult MemGetInfoCommon(uint64_t* free_b, uint64_t* total_b);
// cuGetProcAddress(_v2): the table of fake_cuda_proc.cc.
CUresult GetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult* status);

}  // namespace hami::fakegpu::driver

#define REQUIRE_INIT() \
  if (!hami::fakegpu::driver::D().initialized) return CUDA_ERROR_NOT_INITIALIZED
