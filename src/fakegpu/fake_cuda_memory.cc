// The fake libcuda.so.1's memory entry points: allocations, VMM handles, stream-ordered pools
// and arrays, all charged to the shared state file (see fake_cuda_driver.h).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakegpu/fake_cuda_driver.h"

using namespace hami::fakegpu;          // NOLINT: the C entry points below are thin
using namespace hami::fakegpu::driver;  // NOLINT

extern "C" {

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

}  // extern "C"
