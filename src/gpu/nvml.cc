// NVML through dlopen + dlsym, with the prototypes of src/abi/nvml_api.h (nvml.h).
#include "gpu/nvml.h"

#include <dlfcn.h>
#include <link.h>

#include <mutex>
#include <optional>
#include <string>

#include "abi/nvml_api.h"

namespace hami::gpu {
namespace {

struct NvmlFns {
#define HAMI_NVML(name, params, args) decltype(&::name) name = nullptr;
#include "abi/nvml_hooks.def"
#include "abi/nvml_host.def"
#include "abi/nvml_internal.def"
#undef HAMI_NVML
};

std::string ErrorName(nvmlReturn_t r) {
  return "nvmlReturn " + std::to_string(static_cast<int>(r));
}

class NvmlBackend final : public Backend {
 public:
  NvmlBackend(void* handle, NvmlFns fns, std::string path, bool fake)
      : handle_(handle), fns_(fns), path_(std::move(path)), fake_(fake) {}
  ~NvmlBackend() override {
    if (events_ != nullptr && fns_.nvmlEventSetFree != nullptr) fns_.nvmlEventSetFree(events_);
    if (fns_.nvmlShutdown != nullptr) fns_.nvmlShutdown();
    // The library stays loaded: other threads' NVML callbacks may still reference it.
    (void)handle_;
  }

  std::string Describe() const override {
    return std::string(fake_ ? "fake GPU driver " : "NVML ") + path_;
  }
  bool fake() const override { return fake_; }

  StatusOr<std::vector<GpuInfo>> ListGpus() override {
    unsigned count = 0;
    nvmlReturn_t r = fns_.nvmlDeviceGetCount_v2(&count);
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetCount_v2: " + ErrorName(r));
    std::vector<GpuInfo> out;
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      r = fns_.nvmlDeviceGetHandleByIndex_v2(i, &dev);
      if (r != NVML_SUCCESS) {
        return Unavailable("nvmlDeviceGetHandleByIndex_v2(" + std::to_string(i) +
                           "): " + ErrorName(r));
      }
      auto info = Info(dev, i);
      if (!info.ok()) return info.status();
      out.push_back(std::move(*info));
    }
    return out;
  }

  StatusOr<GpuUsage> Usage(const std::string& uuid) override {
    nvmlDevice_t dev = nullptr;
    nvmlReturn_t r = fns_.nvmlDeviceGetHandleByUUID(uuid.c_str(), &dev);
    if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT) {
      return NotFound("no GPU " + uuid);
    }
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetHandleByUUID: " + ErrorName(r));
    GpuUsage u;
    nvmlMemory_t mem{};
    r = fns_.nvmlDeviceGetMemoryInfo(dev, &mem);
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetMemoryInfo: " + ErrorName(r));
    u.memory_used_bytes = mem.used;
    u.memory_total_bytes = mem.total;
    nvmlUtilization_t util{};
    if (fns_.nvmlDeviceGetUtilizationRates(dev, &util) == NVML_SUCCESS) {
      u.utilization_percent = util.gpu;
      u.memory_utilization_percent = util.memory;
    }
    return u;
  }

  // Each sensor on its own: NOT_SUPPORTED (or a driver without the entry point) leaves the
  // field unknown; another failure of one sensor does too, and is not fatal to the others.
  StatusOr<GpuTelemetry> Telemetry(const std::string& uuid) override {
    nvmlDevice_t dev = nullptr;
    nvmlReturn_t r = fns_.nvmlDeviceGetHandleByUUID(uuid.c_str(), &dev);
    if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT) {
      return NotFound("no GPU " + uuid);
    }
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetHandleByUUID: " + ErrorName(r));
    GpuTelemetry t;
    unsigned v = 0;
    if (fns_.nvmlDeviceGetTemperature != nullptr &&
        fns_.nvmlDeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS) {
      t.temperature_c = v;
    }
    if (fns_.nvmlDeviceGetPowerUsage != nullptr &&
        fns_.nvmlDeviceGetPowerUsage(dev, &v) == NVML_SUCCESS) {
      t.power_mw = v;
    }
    unsigned long long n = 0;
    if (fns_.nvmlDeviceGetTotalEccErrors != nullptr) {
      if (fns_.nvmlDeviceGetTotalEccErrors(dev, NVML_MEMORY_ERROR_TYPE_CORRECTED,
                                           NVML_AGGREGATE_ECC, &n) == NVML_SUCCESS) {
        t.ecc_corrected = n;
      }
      if (fns_.nvmlDeviceGetTotalEccErrors(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                           NVML_AGGREGATE_ECC, &n) == NVML_SUCCESS) {
        t.ecc_uncorrected = n;
      }
    }
    return t;
  }

  StatusOr<std::vector<MigDevice>> MigDevices() override {
    std::vector<MigDevice> out;
    if (fns_.nvmlDeviceGetMaxMigDeviceCount == nullptr ||
        fns_.nvmlDeviceGetMigDeviceHandleByIndex == nullptr) {
      return out;  // a driver without MIG
    }
    unsigned count = 0;
    nvmlReturn_t r = fns_.nvmlDeviceGetCount_v2(&count);
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetCount_v2: " + ErrorName(r));
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      if (fns_.nvmlDeviceGetHandleByIndex_v2(i, &dev) != NVML_SUCCESS) continue;
      unsigned cur = 0, pending = 0, max = 0;
      if (fns_.nvmlDeviceGetMigMode == nullptr ||
          fns_.nvmlDeviceGetMigMode(dev, &cur, &pending) != NVML_SUCCESS || cur == 0 ||
          fns_.nvmlDeviceGetMaxMigDeviceCount(dev, &max) != NVML_SUCCESS) {
        continue;
      }
      char parent[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
      if (fns_.nvmlDeviceGetUUID(dev, parent, sizeof(parent)) != NVML_SUCCESS) continue;
      for (unsigned k = 0; k < max; ++k) {
        nvmlDevice_t mig = nullptr;
        // NOT_FOUND: an unpopulated slot.
        if (fns_.nvmlDeviceGetMigDeviceHandleByIndex(dev, k, &mig) != NVML_SUCCESS) continue;
        if (auto m = Mig(mig, parent)) out.push_back(std::move(*m));
      }
    }
    return out;
  }

  StatusOr<std::optional<HealthEvent>> WaitHealthEvent(std::chrono::milliseconds timeout) override {
    {
      std::lock_guard lock(mu_);
      if (events_ == nullptr) HAMI_RETURN_IF_ERROR(RegisterEvents());
    }
    nvmlEventData_t data{};
    nvmlReturn_t r =
        fns_.nvmlEventSetWait_v2(events_, &data, static_cast<unsigned>(timeout.count()));
    if (r == NVML_ERROR_TIMEOUT) return std::optional<HealthEvent>();
    if (r != NVML_SUCCESS) return Unavailable("nvmlEventSetWait_v2: " + ErrorName(r));
    if ((data.eventType & nvmlEventTypeXidCriticalError) == 0) return std::optional<HealthEvent>();
    HealthEvent ev;
    ev.xid = data.eventData;
    // eventData 0 is the fake driver's (and a reset's) "recovered" notice.
    ev.healthy = data.eventData == 0;
    if (!ev.healthy && IsApplicationXid(ev.xid)) return std::optional<HealthEvent>();
    char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (data.device != nullptr &&
        fns_.nvmlDeviceGetUUID(data.device, buf, sizeof(buf)) == NVML_SUCCESS) {
      ev.uuid = buf;
    }
    // An event without a device concerns all devices; callers treat an empty uuid so.
    return std::optional<HealthEvent>(ev);
  }

  bool Probe(const std::string& uuid) override {
    nvmlDevice_t dev = nullptr;
    if (fns_.nvmlDeviceGetHandleByUUID(uuid.c_str(), &dev) != NVML_SUCCESS) return false;
    nvmlMemory_t mem{};
    return fns_.nvmlDeviceGetMemoryInfo(dev, &mem) == NVML_SUCCESS;
  }

 private:
  // A MIG device's identity; nullopt when the driver cannot name it.
  std::optional<MigDevice> Mig(nvmlDevice_t mig, const char* parent) {
    MigDevice m;
    m.parent_uuid = parent;
    char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (fns_.nvmlDeviceGetUUID(mig, buf, sizeof(buf)) != NVML_SUCCESS) return std::nullopt;
    m.uuid = buf;
    if (fns_.nvmlDeviceGetGpuInstanceId == nullptr ||
        fns_.nvmlDeviceGetGpuInstanceId(mig, &m.gpu_instance_id) != NVML_SUCCESS ||
        fns_.nvmlDeviceGetComputeInstanceId == nullptr ||
        fns_.nvmlDeviceGetComputeInstanceId(mig, &m.compute_instance_id) != NVML_SUCCESS) {
      return std::nullopt;
    }
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (fns_.nvmlDeviceGetName(mig, name, sizeof(name)) == NVML_SUCCESS) {
      // NVML names a MIG device "<GPU name> MIG <profile>".
      const std::string n = name;
      const std::size_t at = n.rfind(" MIG ");
      if (at != std::string::npos) m.profile = n.substr(at + 5);
    }
    return m;
  }

  StatusOr<GpuInfo> Info(nvmlDevice_t dev, unsigned i) {
    GpuInfo info;
    info.index = i;
    char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    nvmlReturn_t r = fns_.nvmlDeviceGetUUID(dev, buf, sizeof(buf));
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetUUID: " + ErrorName(r));
    info.uuid = buf;
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (fns_.nvmlDeviceGetName(dev, name, sizeof(name)) == NVML_SUCCESS) info.name = name;
    nvmlMemory_t mem{};
    r = fns_.nvmlDeviceGetMemoryInfo(dev, &mem);
    // A lost GPU stays listed, unhealthy, so its slices keep their records.
    if (r == NVML_ERROR_GPU_IS_LOST) {
      info.healthy = false;
    } else if (r != NVML_SUCCESS) {
      return Unavailable("nvmlDeviceGetMemoryInfo: " + ErrorName(r));
    }
    info.memory_bytes = mem.total;
    unsigned numa = 0;
    if (fns_.nvmlDeviceGetNumaNodeId != nullptr &&
        fns_.nvmlDeviceGetNumaNodeId(dev, &numa) == NVML_SUCCESS) {
      info.numa = static_cast<int>(numa);
    }
    unsigned cur = 0, pending = 0;
    if (fns_.nvmlDeviceGetMigMode != nullptr &&
        fns_.nvmlDeviceGetMigMode(dev, &cur, &pending) == NVML_SUCCESS) {
      info.mig_enabled = cur != 0;
    }
    return info;
  }

  Status RegisterEvents() {
    nvmlReturn_t r = fns_.nvmlEventSetCreate(&events_);
    if (r != NVML_SUCCESS) {
      events_ = nullptr;
      return Unavailable("nvmlEventSetCreate: " + ErrorName(r));
    }
    unsigned count = 0;
    if (fns_.nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS) count = 0;
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      if (fns_.nvmlDeviceGetHandleByIndex_v2(i, &dev) != NVML_SUCCESS) continue;
      // A device that refuses XID events is simply not watched (NVIDIA's plugin does the same).
      (void)fns_.nvmlDeviceRegisterEvents(dev, nvmlEventTypeXidCriticalError, events_);
    }
    return Status::Ok();
  }

  void* handle_;
  NvmlFns fns_;
  std::string path_;
  bool fake_;
  std::mutex mu_;
  nvmlEventSet_t events_ = nullptr;
};

}  // namespace

bool IsApplicationXid(uint64_t xid) {
  switch (xid) {
    case 13:   // graphics engine exception
    case 31:   // GPU memory page fault
    case 43:   // GPU stopped processing
    case 45:   // preemptive cleanup
    case 68:   // video processor exception
    case 109:  // context switch timeout
      return true;
    default:
      return false;
  }
}

StatusOr<std::unique_ptr<Backend>> OpenNvml(const std::string& library, bool fake) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return Unavailable("cannot load " + library + ": " + (err != nullptr ? err : "unknown"));
  }
  std::string path = library;
  struct link_map* lm = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm != nullptr && lm->l_name != nullptr &&
      lm->l_name[0] != '\0') {
    path = lm->l_name;
  }
  if (path.find("fakegpu") != std::string::npos) fake = true;
  NvmlFns fns;
#define HAMI_NVML(name, params, args) \
  fns.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));
#include "abi/nvml_hooks.def"
#include "abi/nvml_host.def"
#include "abi/nvml_internal.def"
#undef HAMI_NVML
  for (auto [name, ptr] :
       {std::pair<const char*, void*>{"nvmlInit_v2", (void*)fns.nvmlInit_v2},
        {"nvmlDeviceGetCount_v2", (void*)fns.nvmlDeviceGetCount_v2},
        {"nvmlDeviceGetHandleByIndex_v2", (void*)fns.nvmlDeviceGetHandleByIndex_v2},
        {"nvmlDeviceGetHandleByUUID", (void*)fns.nvmlDeviceGetHandleByUUID},
        {"nvmlDeviceGetUUID", (void*)fns.nvmlDeviceGetUUID},
        {"nvmlDeviceGetName", (void*)fns.nvmlDeviceGetName},
        {"nvmlDeviceGetMemoryInfo", (void*)fns.nvmlDeviceGetMemoryInfo},
        {"nvmlDeviceGetUtilizationRates", (void*)fns.nvmlDeviceGetUtilizationRates},
        {"nvmlEventSetCreate", (void*)fns.nvmlEventSetCreate},
        {"nvmlDeviceRegisterEvents", (void*)fns.nvmlDeviceRegisterEvents},
        {"nvmlEventSetWait_v2", (void*)fns.nvmlEventSetWait_v2},
        {"nvmlShutdown", (void*)fns.nvmlShutdown}}) {
    if (ptr == nullptr) {
      dlclose(handle);
      return Unavailable(path + " lacks " + name);
    }
  }
  nvmlReturn_t r = fns.nvmlInit_v2();
  if (r != NVML_SUCCESS) {
    dlclose(handle);
    return Unavailable(path + ": nvmlInit_v2 failed: " + ErrorName(r));
  }
  return std::unique_ptr<Backend>(new NvmlBackend(handle, fns, path, fake));
}

}  // namespace hami::gpu
