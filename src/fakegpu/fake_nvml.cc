// The fake libnvidia-ml.so.1: the NVML entry points of src/hook/abi/nvml_*.def over the same
// config and shared state file as the fake libcuda.so.1. Like real NVML it enumerates every
// device and ignores CUDA_VISIBLE_DEVICES.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fakegpu/config.h"
#include "fakegpu/state.h"

#pragma GCC visibility push(default)
#include "abi/nvml_api.h"
#pragma GCC visibility pop

namespace hami::fakegpu {
namespace {

constexpr const char* kDriverVersion = "580.65.06";
constexpr int kCudaDriverVersion = 13000;
constexpr uint64_t kUtilWindowNs = 100000000ull;  // NVML-like sample period
// Per-process utilization (nvmlDeviceGetProcessUtilization): the sample period unless
// FAKEGPU_PROCESS_SAMPLE_MS says otherwise, and how many periods the driver keeps.
constexpr uint64_t kProcessSampleNs = 100000000ull;
constexpr uint64_t kKeptSamplePeriods = 50;
constexpr unsigned kNotAvailable = 0xFFFFFFFFu;

struct nvmlDeviceSlot {
  int index;
};

struct EventReg {
  int dev;
  uint64_t seen_seq;
};
struct EventSet {
  std::vector<EventReg> regs;
};

struct Nvml {
  std::mutex mu;
  int refs = 0;
  Config cfg;
  std::unique_ptr<SharedState> state;
  nvmlDeviceSlot devs[kMaxDevices];
  nvmlDeviceSlot migs[kMaxDevices][kMaxMigDevices];  // MIG device handles
  std::unordered_set<EventSet*> sets;
  uint64_t process_sample_ns = kProcessSampleNs;  // 0: per-process utilization not supported
};

Nvml& N() {
  static Nvml* n = new Nvml;  // leaked: no destructor ordering at exit
  return *n;
}

using Lock = std::lock_guard<std::mutex>;

nvmlReturn_t InitCommon() {
  Lock l(N().mu);
  Nvml& n = N();
  if (n.refs == 0) {
    auto cfg = LoadConfig();
    if (!cfg.ok()) {
      fprintf(stderr, "fakegpu: %s\n", cfg.status().message().c_str());
      return NVML_ERROR_UNKNOWN;
    }
    auto st = SharedState::Open(SharedState::DefaultPath());
    if (!st.ok()) {
      fprintf(stderr, "fakegpu: %s\n", st.status().message().c_str());
      return NVML_ERROR_UNKNOWN;
    }
    n.cfg = std::move(*cfg);
    n.state = std::move(*st);
    n.process_sample_ns = kProcessSampleNs;
    if (const char* ms = getenv("FAKEGPU_PROCESS_SAMPLE_MS"))
      n.process_sample_ns = strtoull(ms, nullptr, 10) * 1000000ull;
    for (int i = 0; i < kMaxDevices; ++i) {
      n.devs[i].index = i;
      for (int k = 0; k < kMaxMigDevices; ++k) n.migs[i][k].index = i * kMaxMigDevices + k;
    }
  }
  ++n.refs;
  return NVML_SUCCESS;
}

// Index of a valid device handle, or -1.
int DevIndex(nvmlDevice_t d) {
  auto* p = reinterpret_cast<nvmlDeviceSlot*>(d);
  Nvml& n = N();
  if (p < n.devs || p >= n.devs + n.cfg.devices.size()) return -1;
  return static_cast<int>(p - n.devs);
}

// A MIG device handle's GPU and MIG index, or {-1, -1}.
std::pair<int, int> MigIndex(nvmlDevice_t d) {
  auto* p = reinterpret_cast<nvmlDeviceSlot*>(d);
  Nvml& n = N();
  if (p < &n.migs[0][0] || p >= &n.migs[0][0] + kMaxDevices * kMaxMigDevices) return {-1, -1};
  const int at = static_cast<int>(p - &n.migs[0][0]);
  const int dev = at / kMaxMigDevices, k = at % kMaxMigDevices;
  if (dev >= static_cast<int>(n.cfg.devices.size()) ||
      k >= static_cast<int>(n.cfg.devices[dev].migs.size())) {
    return {-1, -1};
  }
  return {dev, k};
}

// "MIG-" + the parent's UUID with its last 12 digits replaced by the GPU and MIG index, so it is
// stable across processes and unique on the host.
std::string MigUuid(int dev, int k) {
  const std::string& parent = N().cfg.devices[dev].uuid;
  char tail[16];
  snprintf(tail, sizeof tail, "%06x%06x", 0xa00000 + dev, k);
  return "MIG-" + parent.substr(4, parent.size() - 4 - 12) + tail;
}

#define NVML_PROLOGUE() \
  Lock l(N().mu);       \
  if (N().refs == 0) return NVML_ERROR_UNINITIALIZED

#define NVML_DEVICE(device, idx) \
  NVML_PROLOGUE();               \
  int idx = DevIndex(device);    \
  if (idx < 0) return NVML_ERROR_INVALID_ARGUMENT

nvmlReturn_t CopyString(const std::string& s, char* out, unsigned len) {
  if (out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (s.size() + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s.c_str(), s.size() + 1);
  return NVML_SUCCESS;
}

}  // namespace
}  // namespace hami::fakegpu

using namespace hami::fakegpu;  // NOLINT: the C entry points below are thin

extern "C" {

nvmlReturn_t nvmlInit_v2(void) { return InitCommon(); }
nvmlReturn_t nvmlInit(void) { return InitCommon(); }
nvmlReturn_t nvmlInitWithFlags(unsigned int) { return InitCommon(); }

nvmlReturn_t nvmlShutdown(void) {
  NVML_PROLOGUE();
  --N().refs;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  NVML_PROLOGUE();
  return CopyString(kDriverVersion, version, length);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* version) {
  NVML_PROLOGUE();
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *version = kCudaDriverVersion;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  NVML_PROLOGUE();
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *count = static_cast<unsigned>(N().cfg.devices.size());
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  NVML_PROLOGUE();
  if (device == nullptr || index >= N().cfg.devices.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = reinterpret_cast<nvmlDevice_t>(&N().devs[index]);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  NVML_PROLOGUE();
  if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (size_t i = 0; i < N().cfg.devices.size(); ++i) {
    if (strcasecmp(N().cfg.devices[i].uuid.c_str(), uuid) == 0) {
      *device = reinterpret_cast<nvmlDevice_t>(&N().devs[i]);
      return NVML_SUCCESS;
    }
    for (size_t k = 0; k < N().cfg.devices[i].migs.size(); ++k) {
      if (strcasecmp(MigUuid(static_cast<int>(i), static_cast<int>(k)).c_str(), uuid) == 0) {
        *device = reinterpret_cast<nvmlDevice_t>(&N().migs[i][k]);
        return NVML_SUCCESS;
      }
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  NVML_DEVICE(device, i);
  if (index == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *index = static_cast<unsigned>(i);
  return NVML_SUCCESS;
}

// Both also answer for MIG device handles: "MIG-..." and "<GPU name> MIG <profile>", as NVML.
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  NVML_PROLOGUE();
  if (auto [dev, k] = MigIndex(device); dev >= 0) return CopyString(MigUuid(dev, k), uuid, length);
  int i = DevIndex(device);
  if (i < 0) return NVML_ERROR_INVALID_ARGUMENT;
  return CopyString(N().cfg.devices[i].uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  NVML_PROLOGUE();
  if (auto [dev, k] = MigIndex(device); dev >= 0) {
    const DeviceConfig& c = N().cfg.devices[dev];
    return CopyString(c.name + " MIG " + c.migs[k].profile, name, length);
  }
  int i = DevIndex(device);
  if (i < 0) return NVML_ERROR_INVALID_ARGUMENT;
  return CopyString(N().cfg.devices[i].name, name, length);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  NVML_DEVICE(device, i);
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const DeviceConfig& c = N().cfg.devices[i];
  memset(pci, 0, sizeof *pci);
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", c.pci_domain & 0xffff,
           c.pci_bus, c.pci_device, c.pci_function);
  snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", c.pci_domain, c.pci_bus,
           c.pci_device, c.pci_function);
  pci->domain = c.pci_domain;
  pci->bus = c.pci_bus;
  pci->device = c.pci_device;
  pci->pciDeviceId = c.pci_device_id;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device, unsigned int* node) {
  NVML_DEVICE(device, i);
  if (node == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *node = static_cast<unsigned>(N().cfg.devices[i].numa);
  return NVML_SUCCESS;
}

// v1: used includes the driver-reserved memory, free = total - used.
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  NVML_DEVICE(device, i);
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const DeviceConfig& c = N().cfg.devices[i];
  uint64_t used = N().state->DeviceUsed(i) + c.reserved;
  if (used > c.mem_bytes) used = c.mem_bytes;
  memory->total = c.mem_bytes;
  memory->used = used;
  memory->free = c.mem_bytes - used;
  return NVML_SUCCESS;
}

// v2: as v1 plus the reserved amount on its own; used includes it, as NVML documents.
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  NVML_DEVICE(device, i);
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  const DeviceConfig& c = N().cfg.devices[i];
  uint64_t reserved = c.reserved < c.mem_bytes ? c.reserved : c.mem_bytes;
  uint64_t used = N().state->DeviceUsed(i) + reserved;
  if (used > c.mem_bytes) used = c.mem_bytes;
  memory->total = c.mem_bytes;
  memory->reserved = reserved;
  memory->used = used;
  memory->free = c.mem_bytes - used;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* util) {
  NVML_DEVICE(device, i);
  if (util == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  util->gpu = N().state->Utilization(i, MonotonicNs(), kUtilWindowNs);
  util->memory = 0;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  NVML_DEVICE(device, i);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  // FAKEGPU_LIST_OWN_PIDNS=1: as NVML in a container, only the caller's PID namespace's
  // processes (the per-process utilisation still covers every process on the card).
  const char* own = getenv("FAKEGPU_LIST_OWN_PIDNS");
  std::vector<ProcessUsage> procs =
      N().state->Processes(i, own && strcmp(own, "1") == 0 ? SharedState::OwnPidNamespace() : 0);
  unsigned n = static_cast<unsigned>(procs.size());
  if (n > *count || (n > 0 && infos == nullptr)) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned k = 0; k < n; ++k) {
    infos[k].pid = static_cast<unsigned>(procs[k].pid);
    infos[k].usedGpuMemory = procs[k].used;
    infos[k].gpuInstanceId = kNotAvailable;
    infos[k].computeInstanceId = kNotAvailable;
  }
  *count = n;
  return NVML_SUCCESS;
}

// As the driver samples it: per sample period (FAKEGPU_PROCESS_SAMPLE_MS, periods of
// CLOCK_MONOTONIC), one sample for each process whose work ran in it, smUtil the percent of the
// period it ran. A period is published once it is over (NVML's samples lag by up to one
// period) and stamped with its end in microseconds of CLOCK_REALTIME; only samples stamped
// after last_seen are returned, from the last kKeptSamplePeriods periods. None:
// NVML_ERROR_NOT_FOUND. samples NULL or *count too small: NVML_ERROR_INSUFFICIENT_SIZE with
// the number needed in *count.
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t* samples,
                                             unsigned int* count, unsigned long long last_seen) {
  NVML_DEVICE(device, i);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const uint64_t period = N().process_sample_ns;
  if (period == 0) return NVML_ERROR_NOT_SUPPORTED;
  timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  const uint64_t now = MonotonicNs();
  const uint64_t real_ns = static_cast<uint64_t>(rt.tv_sec) * 1000000000ull + rt.tv_nsec;
  const uint64_t last_end = now / period * period;
  std::vector<nvmlProcessUtilizationSample_t> out;
  for (uint64_t k = kKeptSamplePeriods; k-- > 0;) {
    if (last_end < (k + 1) * period) continue;
    const uint64_t end = last_end - k * period;
    const unsigned long long stamp = (real_ns - (now - end)) / 1000;
    if (stamp <= last_seen) continue;
    for (const ProcessBusy& p : N().state->BusyByProcess(i, end - period, end)) {
      nvmlProcessUtilizationSample_t s{};
      s.pid = static_cast<unsigned>(p.pid);
      s.timeStamp = stamp;
      s.smUtil = static_cast<unsigned>((p.busy_ns * 100 + period / 2) / period);
      out.push_back(s);
    }
  }
  const unsigned n = static_cast<unsigned>(out.size());
  if (n == 0) {
    *count = 0;
    return NVML_ERROR_NOT_FOUND;
  }
  if (samples == nullptr || n > *count) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  std::copy(out.begin(), out.end(), samples);
  *count = n;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current,
                                  unsigned int* pending) {
  NVML_DEVICE(device, i);
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (!N().cfg.devices[i].mig_supported) return NVML_ERROR_NOT_SUPPORTED;
  // NVML_DEVICE_MIG_ENABLE (1) when MIG devices are configured, else DISABLE (0).
  *current = *pending = N().cfg.devices[i].migs.empty() ? 0 : 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned int* temp) {
  NVML_DEVICE(device, i);
  if (temp == nullptr || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  *temp = N().cfg.devices[i].temperature_c;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  NVML_DEVICE(device, i);
  if (power == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *power = N().cfg.devices[i].power_mw;
  return NVML_SUCCESS;
}

// Only the aggregate (lifetime) counter is kept; the volatile one reads the same.
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t error_type,
                                         nvmlEccCounterType_t counter, unsigned long long* count) {
  NVML_DEVICE(device, i);
  if (count == nullptr || (counter != NVML_VOLATILE_ECC && counter != NVML_AGGREGATE_ECC)) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  const DeviceConfig& c = N().cfg.devices[i];
  if (!c.ecc_supported) return NVML_ERROR_NOT_SUPPORTED;
  if (error_type == NVML_MEMORY_ERROR_TYPE_CORRECTED) {
    *count = c.ecc_corrected;
  } else if (error_type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED) {
    *count = c.ecc_uncorrected;
  } else {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  NVML_DEVICE(device, i);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (!N().cfg.devices[i].mig_supported) return NVML_ERROR_NOT_SUPPORTED;
  *count = N().cfg.devices[i].migs.empty() ? 0 : kMaxMigDevices;
  return NVML_SUCCESS;
}

// Slots past the configured devices are NOT_FOUND, as NVML answers for unpopulated ones.
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t* mig) {
  NVML_DEVICE(device, i);
  if (mig == nullptr || index >= static_cast<unsigned>(kMaxMigDevices)) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  if (index >= N().cfg.devices[i].migs.size()) return NVML_ERROR_NOT_FOUND;
  *mig = reinterpret_cast<nvmlDevice_t>(&N().migs[i][index]);
  return NVML_SUCCESS;
}

// Instance IDs exist only for MIG device handles (a full GPU is INVALID_ARGUMENT, as NVML).
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  NVML_PROLOGUE();
  auto [dev, k] = MigIndex(device);
  if (dev < 0 || id == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *id = N().cfg.devices[dev].migs[k].gpu_instance;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  NVML_PROLOGUE();
  auto [dev, k] = MigIndex(device);
  if (dev < 0 || id == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *id = N().cfg.devices[dev].migs[k].compute_instance;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  NVML_PROLOGUE();
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  auto* s = new EventSet;
  N().sets.insert(s);
  *set = reinterpret_cast<nvmlEventSet_t>(s);
  return NVML_SUCCESS;
}

// Only XID critical errors are ever delivered; other requested types are accepted and stay
// silent, as on a healthy real GPU.
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types,
                                      nvmlEventSet_t set) {
  NVML_DEVICE(device, i);
  auto* s = reinterpret_cast<EventSet*>(set);
  if (!N().sets.count(s) || types == 0) return NVML_ERROR_INVALID_ARGUMENT;
  if (!(types & nvmlEventTypeXidCriticalError)) return NVML_SUCCESS;
  for (EventReg& r : s->regs)
    if (r.dev == i) return NVML_SUCCESS;
  s->regs.push_back({i, N().state->GetHealth(i).xid_seq});
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data,
                                 unsigned int timeoutms) {
  uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(timeoutms) * 1000000ull;
  auto* s = reinterpret_cast<EventSet*>(set);
  uint64_t poll_ns = 1000000;
  while (true) {
    {
      NVML_PROLOGUE();
      if (!N().sets.count(s) || data == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      for (EventReg& r : s->regs) {
        Health h = N().state->GetHealth(r.dev);
        if (h.xid_seq == r.seen_seq) continue;
        r.seen_seq = h.xid_seq;
        data->device = reinterpret_cast<nvmlDevice_t>(&N().devs[r.dev]);
        data->eventType = nvmlEventTypeXidCriticalError;
        data->eventData = h.xid;
        data->gpuInstanceId = kNotAvailable;
        data->computeInstanceId = kNotAvailable;
        return NVML_SUCCESS;
      }
    }
    uint64_t now = MonotonicNs();
    if (now >= deadline) return NVML_ERROR_TIMEOUT;
    // The state file has no wakeup channel: poll, from 1 ms up to every 8 ms.
    uint64_t nap = std::min<uint64_t>(deadline - now, poll_ns);
    poll_ns = std::min<uint64_t>(poll_ns * 2, 8000000);
    timespec ts{0, static_cast<long>(nap)};
    nanosleep(&ts, nullptr);
  }
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  NVML_PROLOGUE();
  auto* s = reinterpret_cast<EventSet*>(set);
  if (!N().sets.count(s)) return NVML_ERROR_INVALID_ARGUMENT;
  N().sets.erase(s);
  delete s;
  return NVML_SUCCESS;
}

}  // extern "C"
