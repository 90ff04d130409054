// NVML through dlopen + dlsym with the prototypes of src/hook/abi/nvml_api.h, so `hami` starts
// on machines without a driver and the fake libnvidia-ml.so.1 can stand in for it.
#include <dlfcn.h>
#include <link.h>

#include "abi/nvml_api.h"
#include "hostd/gpu_source.h"

namespace hami::hostd {
namespace {

struct NvmlFns {
  decltype(&::nvmlInit_v2) init = nullptr;
  decltype(&::nvmlShutdown) shutdown = nullptr;
  decltype(&::nvmlDeviceGetCount_v2) count = nullptr;
  decltype(&::nvmlDeviceGetHandleByIndex_v2) by_index = nullptr;
  decltype(&::nvmlDeviceGetUUID) uuid = nullptr;
  decltype(&::nvmlDeviceGetName) name = nullptr;
  decltype(&::nvmlDeviceGetMemoryInfo) memory = nullptr;
  decltype(&::nvmlDeviceGetNumaNodeId) numa = nullptr;  // optional
};

std::string Err(const char* fn, nvmlReturn_t r) {
  return std::string(fn) + " failed: nvmlReturn " + std::to_string(static_cast<int>(r));
}

class NvmlGpuSource final : public GpuSource {
 public:
  NvmlGpuSource(NvmlFns fns, std::string path, bool fake)
      : fns_(fns), path_(std::move(path)), fake_(fake) {}
  ~NvmlGpuSource() override { fns_.shutdown(); }

  StatusOr<std::vector<HostGpu>> List() override {
    unsigned count = 0;
    nvmlReturn_t r = fns_.count(&count);
    if (r != NVML_SUCCESS) return Unavailable(Err("nvmlDeviceGetCount_v2", r));
    std::vector<HostGpu> out;
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      r = fns_.by_index(i, &dev);
      if (r != NVML_SUCCESS) return Unavailable(Err("nvmlDeviceGetHandleByIndex_v2", r));
      HostGpu g;
      g.index = static_cast<int32_t>(i);
      char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
      r = fns_.uuid(dev, buf, sizeof(buf));
      if (r != NVML_SUCCESS) return Unavailable(Err("nvmlDeviceGetUUID", r));
      g.uuid = buf;
      char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
      if (fns_.name(dev, name, sizeof(name)) == NVML_SUCCESS) g.name = name;
      nvmlMemory_t mem{};
      r = fns_.memory(dev, &mem);
      // A lost GPU stays listed, unhealthy, so its slices keep their records.
      if (r == NVML_ERROR_GPU_IS_LOST) {
        g.healthy = false;
      } else if (r != NVML_SUCCESS) {
        return Unavailable(Err("nvmlDeviceGetMemoryInfo", r));
      }
      g.memory_bytes = mem.total;
      unsigned node = 0;
      if (fns_.numa != nullptr && fns_.numa(dev, &node) == NVML_SUCCESS) {
        g.numa = static_cast<int32_t>(node);
      }
      out.push_back(std::move(g));
    }
    return out;
  }

  std::string Describe() const override {
    return std::string(fake_ ? "fake GPU driver " : "NVML ") + path_;
  }
  bool fake() const override { return fake_; }

 private:
  NvmlFns fns_;
  std::string path_;
  bool fake_;
};

template <typename F>
bool Sym(void* h, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(h, name));
  return out != nullptr;
}

}  // namespace

StatusOr<std::unique_ptr<GpuSource>> OpenNvmlGpuSource(const std::string& library, bool fake) {
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = dlerror();
    return Unavailable("cannot load " + library + ": " + (e ? e : "unknown error"));
  }
  std::string path = library;
  struct link_map* lm = nullptr;
  if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != nullptr && lm->l_name != nullptr &&
      lm->l_name[0] != '\0') {
    path = lm->l_name;
  }
  if (path.find("fakegpu") != std::string::npos) fake = true;
  NvmlFns f;
  const char* missing = nullptr;
  if (!Sym(h, "nvmlInit_v2", f.init)) missing = "nvmlInit_v2";
  if (!Sym(h, "nvmlShutdown", f.shutdown)) missing = "nvmlShutdown";
  if (!Sym(h, "nvmlDeviceGetCount_v2", f.count)) missing = "nvmlDeviceGetCount_v2";
  if (!Sym(h, "nvmlDeviceGetHandleByIndex_v2", f.by_index)) {
    missing = "nvmlDeviceGetHandleByIndex_v2";
  }
  if (!Sym(h, "nvmlDeviceGetUUID", f.uuid)) missing = "nvmlDeviceGetUUID";
  if (!Sym(h, "nvmlDeviceGetName", f.name)) missing = "nvmlDeviceGetName";
  if (!Sym(h, "nvmlDeviceGetMemoryInfo", f.memory)) missing = "nvmlDeviceGetMemoryInfo";
  Sym(h, "nvmlDeviceGetNumaNodeId", f.numa);
  if (missing != nullptr) {
    dlclose(h);
    return Unavailable(path + " lacks " + missing);
  }
  nvmlReturn_t r = f.init();
  if (r != NVML_SUCCESS) {
    dlclose(h);
    return Unavailable(path + ": " + Err("nvmlInit_v2", r));
  }
  // The library stays loaded for the life of the process.
  return std::unique_ptr<GpuSource>(new NvmlGpuSource(f, path, fake));
}

}  // namespace hami::hostd
