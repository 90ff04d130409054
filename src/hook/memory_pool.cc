// Stream-ordered allocation hooks (cuMemAllocAsync, cuMemAllocFromPoolAsync, their frees and
// the pool calls) and graph memory: charged as the pools' and graphs' reservations the driver
// reports, reconciled after each call (docs/accounting.md).
#include <algorithm>
#include <mutex>

#include "hooks.h"
#include "memory_internal.h"

namespace hami::vgpu {

bool g_graph_memory_seen = false;

namespace {

uint64_t PoolReserved(CUmemoryPool pool) {
  cuuint64_t v = 0;
  if (g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v) != CUDA_SUCCESS)
    return 0;
  return v;
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
      ForceReserve(p->ordinal, grow);
    }
  } else if (now < p->counted) {
    Release(p->ordinal, p->counted - now);
  }
  p->counted = now;
  return ok;
}
bool ReconcilePoolLocked(PoolRec* p) { return ReconcilePoolLocked(p, PoolReserved(p->pool)); }

// Gives unused pool memory back to the driver (the application's pools cache freed
// blocks), so a tight limit is not consumed by cache.
void TrimAllPools() {
  std::lock_guard<std::mutex> g(Book().mu());
  for (auto& p : Book().PoolsLocked()) {
    cuuint64_t used = 0;
    g_cuda.cuMemPoolGetAttribute(p.pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
    g_cuda.cuMemPoolTrimTo(p.pool, used);
    ReconcilePoolLocked(&p);
  }
}

// The pool an async allocation on device `ord` draws from; false to leave it to the driver.
bool ResolvePool(int ord, CUstream stream, CUmemoryPool* pool) {
  if (!*pool && g_cuda.cuDeviceGetMemPool(pool, g_state.dev[ord].handle) != CUDA_SUCCESS)
    return false;
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  if (g_cuda.cuStreamIsCapturing(stream, &cap) == CUDA_SUCCESS &&
      cap == CU_STREAM_CAPTURE_STATUS_ACTIVE) {
    // Captured allocations become graph memory nodes, charged when the graph runs.
    __atomic_store_n(&g_graph_memory_seen, true, __ATOMIC_RELAXED);
    return false;
  }
  return true;
}

// Before the driver is asked: registers the pool, reconciles it with `reserved`, and returns
// the growth step to pre-charge in (*first: the pool is new to us).
uint64_t PreparePool(CUmemoryPool pool, int ord, uint64_t reserved, bool* first) {
  std::lock_guard<std::mutex> g(Book().mu());
  PoolRec* p = Book().AddPoolLocked(pool, ord, first);
  ReconcilePoolLocked(p, reserved);
  return p->grain ? p->grain : kPoolChunk;
}

// After the driver answered: the pre-charge `need` joins the pool's reservation, the growth
// step is learned, and the charge reconciled. False when the pool grew past the limit.
bool SettlePool(CUmemoryPool pool, uint64_t reserved, uint64_t need) {
  std::lock_guard<std::mutex> g(Book().mu());
  PoolRec* p = Book().FindPoolLocked(pool);
  if (p == nullptr) return true;  // dropped meanwhile by a primary-context reset
  // The driver grew by more than asked: it grows in larger steps (32 MiB on an H200).
  uint64_t after = PoolReserved(pool);
  uint64_t grew = after > reserved ? after - reserved : 0;
  if (grew > need) p->grain = std::max(p->grain, PoolGrain(need, grew));
  p->counted += need;  // the pre-charge now belongs to the pool's reservation
  return ReconcilePoolLocked(p, after);
}

CUresult AllocAsync(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream stream,
                    CUresult (*real)(CUdeviceptr*, size_t, CUmemoryPool, CUstream),
                    CUresult (*real_free)(CUdeviceptr, CUstream)) {
  CUresult refuse;
  Gate gate = MemGate(&refuse);
  if (gate == Gate::kRefuse) return refuse;
  if (gate == Gate::kPassThrough) return real(dptr, size, pool, stream);
  int ord = CurrentOrdinal();
  if (ord < 0 || !ResolvePool(ord, stream, &pool)) return real(dptr, size, pool, stream);
  // Charge the growth this allocation can cause before asking the driver.
  cuuint64_t used = 0, reserved = 0;
  g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
  g_cuda.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
  bool first = false;
  uint64_t grain = PreparePool(pool, ord, reserved, &first);
  // Pre-charge the growth in the driver's own steps (learned below), so that a growth which
  // would pass the limit is refused before the driver makes it.
  uint64_t need = used + size > reserved ? RoundUp(used + size - reserved, grain) : 0;
  if (need && !Reserve(ord, need)) {
    TrimAllPools();
    if (!Reserve(ord, need)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  CUresult r = real(dptr, size, pool, stream);
  bool within = SettlePool(pool, reserved, need);
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
  Book().Track(kPtr, *dptr, ord, 0, pool);
  return r;
}

CUresult FreeAsync(CUdeviceptr ptr, CUstream stream, CUresult (*real)(CUdeviceptr, CUstream)) {
  Charge c;
  bool known = g_state.accounting && Book().Untrack(kPtr, ptr, &c);
  CUresult r = real(ptr, stream);
  if (!known) return r;
  if (r != CUDA_SUCCESS) {
    Book().Track(kPtr, ptr, c.ordinal, c.bytes, c.pool);
    return r;
  }
  if (c.pool) {
    std::lock_guard<std::mutex> g(Book().mu());
    if (PoolRec* p = Book().FindPoolLocked(c.pool)) ReconcilePoolLocked(p);
  } else {
    Release(c.ordinal, c.bytes);  // a plain allocation freed in stream order
  }
  return r;
}

}  // namespace

void ReconcileAllPools() {
  std::lock_guard<std::mutex> g(Book().mu());
  for (auto& p : Book().PoolsLocked()) ReconcilePoolLocked(&p);
}

void ReconcileGraphMemory(int ord) {
  if (ord < 0 || !g_state.accounting) return;
  cuuint64_t reserved = 0;
  if (g_cuda.cuDeviceGetGraphMemAttribute(g_state.dev[ord].handle,
                                          CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
                                          &reserved) != CUDA_SUCCESS)
    return;
  std::lock_guard<std::mutex> g(Book().mu());
  uint64_t& counted = Book().GraphCountedLocked(ord);
  if (reserved > counted) {
    if (!Reserve(ord, reserved - counted)) {
      // The graph already holds the memory; record it so the container's view is true.
      ForceReserve(ord, reserved - counted);
      VGPU_LOG(kLogWarn, "graph memory on device %d exceeds the limit", ord);
    }
  } else if (reserved < counted) {
    Release(ord, counted - reserved);
  }
  counted = reserved;
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
    std::lock_guard<std::mutex> g(Book().mu());
    if (PoolRec* p = Book().FindPoolLocked(pool)) ReconcilePoolLocked(p);
  }
  return r;
}

CUresult Hook_cuMemPoolDestroy(CUmemoryPool pool) noexcept {
  CUresult r = g_cuda.cuMemPoolDestroy(pool);
  if (r == CUDA_SUCCESS && g_state.accounting) {
    std::lock_guard<std::mutex> g(Book().mu());
    if (PoolRec* p = Book().FindPoolLocked(pool)) {
      int ord = p->ordinal;
      Release(ord, Book().ErasePoolLocked(pool));
    }
  }
  return r;
}

}  // namespace hami::vgpu
