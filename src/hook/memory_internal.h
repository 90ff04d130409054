// Shared by the memory hook files: memory.cc (allocation and info hooks), memory_pool.cc
// (stream-ordered pools and graph memory), memory_context.cc (contexts) and memory_driver.cc
// (what the driver reports it holds). Private to libvgpu.so.
#pragma once

#include <stdint.h>

#include "log.h"
#include "memory_book.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {

// What this process has charged (never destroyed: hooks may run during exit).
ChargeBook& Book();

enum class Gate { kAccount, kPassThrough, kRefuse };
// Whether a memory hook charges (kAccount), leaves the call to the driver (kPassThrough: no
// accounting, or cuInit not called yet), or refuses it (*refuse: the configuration failed).
Gate MemGate(CUresult* refuse);

// Charges `bytes` on visible device `ord` unless the container's limit would be passed.
bool Reserve(int ord, uint64_t bytes);
// Charges memory the driver already holds, past the limit if need be (the view stays true).
void ForceReserve(int ord, uint64_t bytes);
void Release(int ord, uint64_t bytes);

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
  Book().Track(kind, *key_out, ord, bytes);
  return r;
}

// Calls the driver's free of `key` and releases its charge when that succeeds.
CUresult Uncharged(Kind kind, uint64_t key, CUresult (*call)(uint64_t));

// ---- memory_driver.cc: what the driver holds ----------------------------------------------
inline constexpr unsigned kMaxProcs = 64;
// Device memory in use on the physical GPU, from NVML. False when NVML is unavailable.
bool NvmlUsed(const char* uuid, uint64_t* used);
// NVML's list of processes with a context on device `ord` (host PIDs). False when NVML or
// the list is unavailable, or the list does not fit.
bool DriverProcesses(int ord, nvmlProcessInfo_t (&infos)[kMaxProcs], unsigned* count);
// Records the PID NVML reports for this process (learned at a context creation).
void LearnDriverPid(uint32_t pid);
// Device memory the driver reports for this process on device `ord`. False when it cannot be
// known exactly.
bool ProcessUsed(int ord, uint64_t* used);
// Charges memory the driver holds for this process beyond what the hooks counted (context
// growth, lazily loaded modules, pool bookkeeping). Rate-limited unless forced. False when
// the charge did not fit the limit (it is recorded anyway: the memory exists).
bool SyncDriverOverhead(int ord, bool force);
// The overhead charged by SyncDriverOverhead on device `ord`, forgotten (to release).
uint64_t TakeDriverOverhead(int ord);

// ---- memory_pool.cc -----------------------------------------------------------------------
// Brings every pool's charge to what the driver says it reserves.
void ReconcileAllPools();

// ---- memory_context.cc --------------------------------------------------------------------
// Everything a process charged on a device, dropped when its primary context goes.
void ReleaseDevice(int ord);
// Memory the driver holds for this process beyond the hooks' own charges (charged already):
// adds to it, or gives back up to `bytes` of it (released from the container).
void AddDriverOverhead(int ord, uint64_t bytes);
void ReturnDriverOverhead(int ord, uint64_t bytes);

}  // namespace hami::vgpu
