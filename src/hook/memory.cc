// Memory hooks: every allocation path is charged to the container's accounting before the
// driver is asked, and every free releases exactly what was charged. Pools live in
// memory_pool.cc, contexts in memory_context.cc, driver-usage queries in memory_driver.cc.
#include "hooks.h"
#include "memory_internal.h"

namespace hami::vgpu {

ChargeBook& Book() {
  static ChargeBook* b = new ChargeBook;  // never destroyed: hooks may run during exit
  return *b;
}

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

void ForceReserve(int ord, uint64_t bytes) {
  const DeviceState& d = g_state.dev[ord];
  if (d.entry >= 0) g_state.acct.Reserve(d.entry, bytes, 0);
}

void Release(int ord, uint64_t bytes) {
  if (ord < 0 || ord >= g_state.ndev) return;
  g_state.acct.Release(g_state.dev[ord].entry, bytes);
}

CUresult Uncharged(Kind kind, uint64_t key, CUresult (*call)(uint64_t)) {
  Charge c;
  bool known = Book().Untrack(kind, key, &c);
  CUresult r = call(key);
  if (!known) return r;
  if (r == CUDA_SUCCESS) {
    Release(c.ordinal, c.bytes);
  } else {
    Book().Track(kind, key, c.ordinal, c.bytes, c.pool);
  }
  return r;
}

// ---- allocation hooks --------------------------------------------------------------------

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
  Book().Track(kPtr, *dptr, ord, actual);
  return r;
}

CUresult Hook_cuMemFree_v2(CUdeviceptr dptr) noexcept {
  if (!g_state.accounting) return g_cuda.cuMemFree_v2(dptr);
  return Uncharged(kPtr, dptr, [](uint64_t k) { return g_cuda.cuMemFree_v2(k); });
}

// The pre-3.2 variant the CUDA runtime may ask cuGetProcAddress for: a pointer below 4 GiB
// that was charged is released like cuMemFree_v2's.
CUresult Hook_cuMemFree(unsigned int dptr) noexcept {
  if (!g_state.accounting) return g_cuda.cuMemFree(dptr);
  return Uncharged(kPtr, dptr,
                   [](uint64_t k) { return g_cuda.cuMemFree(static_cast<unsigned int>(k)); });
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
  uint64_t bytes = MipmapBytes(*desc, levels);
  return Charged(
      kMipmap, ord, bytes, [&] { return g_cuda.cuMipmappedArrayCreate(handle, desc, levels); },
      reinterpret_cast<uint64_t*>(handle));
}

CUresult Hook_cuMipmappedArrayDestroy(CUmipmappedArray handle) noexcept {
  if (!g_state.accounting) return g_cuda.cuMipmappedArrayDestroy(handle);
  return Uncharged(kMipmap, reinterpret_cast<uint64_t>(handle), [](uint64_t k) {
    return g_cuda.cuMipmappedArrayDestroy(reinterpret_cast<CUmipmappedArray>(k));
  });
}

namespace {
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

}  // namespace

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
