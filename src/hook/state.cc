#include "state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device_map.h"
#include "log.h"
#include "real.h"

namespace hami::vgpu {

State g_state;

namespace {
pthread_once_t g_config_once = PTHREAD_ONCE_INIT;
pthread_mutex_t g_dev_mu = PTHREAD_MUTEX_INITIALIZER;

void AtForkChild() {
  g_state.forked_child = true;
  g_state.acct.DetachAfterFork();
  g_state.accounting = false;
}

void LoadConfigOnce() {
  ConfigSource src{[](const char* n) -> const char* { return getenv(n); }, kFixedLimitsPath,
                   []() -> char** { return environ; }};
  char err[512];
  if (!LoadConfig(src, &g_state.cfg, err, sizeof(err))) {
    snprintf(g_state.error, sizeof(g_state.error), "invalid configuration: %s", err);
    VGPU_LOG(kLogError, "%s; CUDA initialisation refused", g_state.error);
    return;
  }
  g_log_level = g_state.cfg.log_level;
  if (g_state.cfg.oversubscribe) {
    VGPU_LOG(kLogWarn, "CUDA_OVERSUBSCRIBE=true is not supported; memory limits stay hard");
  }
  bool limited = g_state.cfg.AnyMemoryLimit() || g_state.cfg.AnySmLimit();
  if (g_state.acct.Open(g_state.cfg.shm_path, err, sizeof(err))) {
    g_state.accounting = true;
  } else if (limited) {
    snprintf(g_state.error, sizeof(g_state.error), "%s", err);
    VGPU_LOG(kLogError, "%s; limits are configured, so CUDA initialisation is refused", err);
    return;
  } else {
    VGPU_LOG(kLogWarn, "%s; running without shared accounting (no limits configured)", err);
  }
  pthread_atfork(nullptr, nullptr, AtForkChild);
  g_state.config_ok = true;
  VGPU_LOG(kLogInfo, "configured: accounting=%s limits_file=%s", g_state.cfg.shm_path,
           g_state.cfg.from_file ? g_state.cfg.limits_file : "(none)");
}

// Binds a visible ordinal to its limit: by UUID when the limits file names UUIDs (a device
// outside that list gets nothing), else by position.
void ResolveLimit(int i, DeviceState* d) {
  DeviceLimit l = LimitForDevice(g_state.cfg, i, d->uuid);
  if (!l.allocated) {
    VGPU_LOG(kLogError, "device %s is not part of this container's allocation; no memory on it",
             d->uuid);
  }
  d->limit = l.limit;
  d->sm_limit = l.sm_limit;
}

// UUIDs of the devices CUDA would make visible, in visible order, resolved through NVML from
// CUDA_VISIBLE_DEVICES as read once into Config (no getenv per query). Returns the count.
int VisibleUuidsFromNvml(char (&list)[kMaxDevices][96]) {
  if (!LoadRealNvml()) return 0;
  unsigned int n = 0;
  if (g_nvml.nvmlDeviceGetCount_v2(&n) != NVML_SUCCESS) return 0;
  int nlist = 0;
  nvmlDevice_t h = nullptr;
  if (!g_state.cfg.visible_devices_set) {
    for (unsigned int k = 0; k < n && nlist < kMaxDevices; ++k) {
      if (g_nvml.nvmlDeviceGetHandleByIndex_v2(k, &h) != NVML_SUCCESS ||
          g_nvml.nvmlDeviceGetUUID(h, list[nlist], 96) != NVML_SUCCESS)
        break;
      ++nlist;
    }
    return nlist;
  }
  VisibleToken toks[kMaxDevices];
  int ntok = ParseVisibleDevices(g_state.cfg.visible_devices, toks);
  for (int t = 0; t < ntok && nlist < kMaxDevices; ++t) {
    char u[96];
    if (toks[t].is_uuid) {
      size_t len = strlen(toks[t].uuid);
      for (unsigned int k = 0; k < n; ++k) {
        if (g_nvml.nvmlDeviceGetHandleByIndex_v2(k, &h) == NVML_SUCCESS &&
            g_nvml.nvmlDeviceGetUUID(h, u, sizeof(u)) == NVML_SUCCESS &&
            strncmp(u, toks[t].uuid, len) == 0) {
          snprintf(list[nlist++], 96, "%s", u);
          break;
        }
      }
      continue;
    }
    if (static_cast<unsigned long>(toks[t].index) >= n ||
        g_nvml.nvmlDeviceGetHandleByIndex_v2(static_cast<unsigned>(toks[t].index), &h) !=
            NVML_SUCCESS ||
        g_nvml.nvmlDeviceGetUUID(h, u, sizeof(u)) != NVML_SUCCESS)
      break;
    snprintf(list[nlist++], 96, "%s", u);
  }
  return nlist;
}
}  // namespace

bool EnsureConfig() {
  pthread_once(&g_config_once, LoadConfigOnce);
  return g_state.config_ok && !g_state.forked_child;
}

bool EnsureCudaDevices() {
  if (__atomic_load_n(&g_state.cuda_ready, __ATOMIC_ACQUIRE)) return true;
  if (!EnsureConfig()) return false;
  pthread_mutex_lock(&g_dev_mu);
  if (g_state.cuda_ready) {
    pthread_mutex_unlock(&g_dev_mu);
    return true;
  }
  int count = 0;
  if (g_cuda.cuDeviceGetCount(&count) != CUDA_SUCCESS) {
    pthread_mutex_unlock(&g_dev_mu);
    return false;
  }
  if (count > kMaxDevices) {
    VGPU_LOG(kLogWarn, "%d devices visible; only the first %d are managed", count, kMaxDevices);
    count = kMaxDevices;
  }
  const Config& c = g_state.cfg;
  if (c.from_file && !c.have_uuids && c.file_max_index >= count) {
    // A limit for a device that does not exist here: the file was written for another view
    // of the node, so none of its per-device limits can be trusted to land where meant.
    snprintf(g_state.error, sizeof(g_state.error),
             "limits file %s sets a limit for device %d but only %d devices are visible",
             c.limits_file, c.file_max_index, count);
    VGPU_LOG(kLogError, "%s; CUDA initialisation refused", g_state.error);
    pthread_mutex_unlock(&g_dev_mu);
    return false;
  }
  for (int i = 0; i < count; ++i) {
    DeviceState* d = &g_state.dev[i];
    memset(d, 0, sizeof(*d));
    d->entry = -1;
    if (g_cuda.cuDeviceGet(&d->handle, i) != CUDA_SUCCESS) continue;
    CUuuid u;
    CUresult r = g_cuda.cuDeviceGetUuid_v2 ? g_cuda.cuDeviceGetUuid_v2(&u, d->handle)
                                           : g_cuda.cuDeviceGetUuid(&u, d->handle);
    if (r != CUDA_SUCCESS) memset(&u, 0, sizeof(u));
    FormatUuid(u, d->uuid, sizeof(d->uuid));
    size_t total = 0;
    g_cuda.cuDeviceTotalMem_v2(&total, d->handle);
    d->total = total;
    ResolveLimit(i, d);
    if (g_state.accounting) {
      d->entry = g_state.acct.DeviceEntry(d->uuid, d->total);
      if (d->entry < 0 && d->limit != 0) {
        snprintf(g_state.error, sizeof(g_state.error),
                 "accounting file %s: cannot register device %s (its table is full or its lock "
                 "is held by a stuck process)",
                 g_state.cfg.shm_path, d->uuid);
        VGPU_LOG(kLogError, "%s", g_state.error);
        pthread_mutex_unlock(&g_dev_mu);
        return false;
      }
      g_state.acct.SetDeviceInfo(d->entry, d->limit, d->sm_limit,
                                 static_cast<uint32_t>(g_state.cfg.priority));
    }
    VGPU_LOG(kLogInfo, "device %d %s: total %llu MiB, limit %llu MiB, sm %u%%", i, d->uuid,
             static_cast<unsigned long long>(d->total >> 20),
             static_cast<unsigned long long>(d->limit >> 20), d->sm_limit);
  }
  g_state.ndev = count;
  __atomic_store_n(&g_state.cuda_ready, true, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_dev_mu);
  return true;
}

int OrdinalOf(CUdevice d) {
  for (int i = 0; i < g_state.ndev; ++i)
    if (g_state.dev[i].handle == d) return i;
  return -1;
}

int CurrentOrdinal() {
  CUdevice d = 0;
  if (g_cuda.cuCtxGetDevice(&d) != CUDA_SUCCESS) return -1;
  return OrdinalOf(d);
}

uint64_t LimitForUuid(const char* uuid, bool* visible) {
  *visible = false;
  if (g_state.cuda_ready) {
    for (int i = 0; i < g_state.ndev; ++i) {
      if (strcmp(g_state.dev[i].uuid, uuid) == 0) {
        *visible = true;
        return g_state.dev[i].limit;
      }
    }
    return 0;
  }
  const Config& c = g_state.cfg;
  uint64_t limit = 0;
  if (c.have_uuids) {
    *visible = LimitForConfiguredUuid(c, uuid, &limit);
    return limit;
  }
  // Without CUDA and without UUIDs in a limits file, find the device's visible ordinal from
  // CUDA_VISIBLE_DEVICES against NVML's enumeration.
  char list[kMaxDevices][96];
  int nlist = VisibleUuidsFromNvml(list);
  for (int i = 0; i < nlist; ++i) {
    if (strcmp(list[i], uuid) == 0) {
      *visible = true;
      return c.mem_limit[i];
    }
  }
  return 0;
}

}  // namespace hami::vgpu
