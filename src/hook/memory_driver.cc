// Driver-usage queries of the memory hooks: what NVML says the device and this process hold,
// which PID NVML knows this process by, and charging what the driver took beyond the hooks'
// own counts (docs/accounting.md, "What is charged").
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory_internal.h"

namespace hami::vgpu {
namespace {

bool NvmlReady() {
  static bool inited = LoadRealNvml() && g_nvml.nvmlInit_v2() == NVML_SUCCESS;
  return inited;
}

// This process's PID as NVML reports it. In the host's PID namespace that is getpid(). In a
// container's own PID namespace NVML still reports host PIDs; the limiter learns ours when
// the process creates a context on a device where it had none: the one PID that joins the
// device's process list across the creation (ChargedContext; the container's other processes
// are kept from creating contexts meanwhile). 0: not known (no context created yet, or
// another container's process joined at the same moment). A forked child starts unknown.
uint32_t g_driver_pid = 0;
pid_t g_driver_pid_of = 0;  // the getpid() that learned it

uint64_t g_overhead[kMaxDevices];
uint64_t g_last_sync_ns[kMaxDevices];

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

bool NvmlUsed(const char* uuid, uint64_t* used) {
  if (!NvmlReady()) return false;
  nvmlDevice_t h;
  if (g_nvml.nvmlDeviceGetHandleByUUID(uuid, &h) != NVML_SUCCESS) return false;
  nvmlMemory_t m;
  if (g_nvml.nvmlDeviceGetMemoryInfo(h, &m) != NVML_SUCCESS) return false;
  *used = m.used;
  return true;
}

bool DriverProcesses(int ord, nvmlProcessInfo_t (&infos)[kMaxProcs], unsigned* count) {
  if (!NvmlReady() || !g_nvml.nvmlDeviceGetComputeRunningProcesses_v3) return false;
  nvmlDevice_t h;
  if (g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[ord].uuid, &h) != NVML_SUCCESS) return false;
  *count = kMaxProcs;
  return g_nvml.nvmlDeviceGetComputeRunningProcesses_v3(h, count, infos) == NVML_SUCCESS &&
         *count <= kMaxProcs;
}

bool InInitialPidNamespace() {
  static int cached = -1;
  if (cached < 0) {
    char buf[64] = {};
    ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);
    cached = n > 0 && strcmp(buf, "pid:[4026531836]") == 0 ? 1 : 0;
  }
  return cached == 1;
}

uint32_t DriverPid() {
  if (InInitialPidNamespace()) return static_cast<uint32_t>(getpid());
  return __atomic_load_n(&g_driver_pid_of, __ATOMIC_ACQUIRE) == getpid()
             ? __atomic_load_n(&g_driver_pid, __ATOMIC_RELAXED)
             : 0;
}

void LearnDriverPid(uint32_t pid) {
  __atomic_store_n(&g_driver_pid, pid, __ATOMIC_RELAXED);
  __atomic_store_n(&g_driver_pid_of, getpid(), __ATOMIC_RELEASE);
}

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
  if (!fits) ForceReserve(ord, extra);
  __atomic_add_fetch(&g_overhead[ord], extra, __ATOMIC_RELAXED);
  VGPU_LOG(kLogInfo, "device %d: %llu MiB held by the driver for this process charged", ord,
           static_cast<unsigned long long>(extra >> 20));
  return fits;
}

void AddDriverOverhead(int ord, uint64_t bytes) {
  __atomic_add_fetch(&g_overhead[ord], bytes, __ATOMIC_RELAXED);
}

void ReturnDriverOverhead(int ord, uint64_t bytes) {
  uint64_t cur = __atomic_load_n(&g_overhead[ord], __ATOMIC_RELAXED), take;
  do {
    take = bytes < cur ? bytes : cur;
  } while (take && !__atomic_compare_exchange_n(&g_overhead[ord], &cur, cur - take, true,
                                                __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  if (take) Release(ord, take);
}

uint64_t TakeDriverOverhead(int ord) {
  return __atomic_exchange_n(&g_overhead[ord], 0, __ATOMIC_RELAXED);
}

}  // namespace hami::vgpu
