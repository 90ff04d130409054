// NVML hooks: memory info reports the container's slice, so nvidia-smi inside the container
// shows the limit as total memory and the container's usage as used memory.
#include <string.h>

#include "hooks.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu {
namespace {

// Rewrites total/free/used for a device that carries a limit. False leaves them alone.
bool Virtualize(nvmlDevice_t device, unsigned long long* total, unsigned long long* free,
                unsigned long long* used) {
  if (!EnsureConfig()) return false;
  char uuid[96];
  if (g_nvml.nvmlDeviceGetUUID(device, uuid, sizeof(uuid)) != NVML_SUCCESS) return false;
  bool visible = false;
  uint64_t limit = LimitForUuid(uuid, &visible);
  if (!visible || limit == 0) return false;
  int entry = g_state.accounting ? g_state.acct.FindDevice(uuid) : -1;
  if (entry >= 0) g_state.acct.SweepDeadEvery(200000000ull);
  uint64_t mine = entry >= 0 ? g_state.acct.Used(entry) : 0;
  uint64_t cap = limit < *total ? limit : *total;
  uint64_t room = mine < cap ? cap - mine : 0;
  *total = cap;
  *used = mine < cap ? mine : cap;
  *free = room < *free ? room : *free;
  return true;
}

}  // namespace

nvmlReturn_t Hook_nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) noexcept {
  nvmlReturn_t r = g_nvml.nvmlDeviceGetMemoryInfo(device, memory);
  if (r == NVML_SUCCESS && memory) Virtualize(device, &memory->total, &memory->free, &memory->used);
  return r;
}

nvmlReturn_t Hook_nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device,
                                             nvmlMemory_v2_t* memory) noexcept {
  nvmlReturn_t r = g_nvml.nvmlDeviceGetMemoryInfo_v2(device, memory);
  if (r == NVML_SUCCESS && memory &&
      Virtualize(device, &memory->total, &memory->free, &memory->used)) {
    memory->reserved = 0;  // the driver's reservation is outside the slice
  }
  return r;
}

}  // namespace hami::vgpu
