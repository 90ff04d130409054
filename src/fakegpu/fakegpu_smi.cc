// fakegpu-smi: a small nvidia-smi stand-in. Like nvidia-smi it dlopen()s libnvidia-ml.so.1
// and resolves every function with dlsym, so an interposer's dlsym / NVML hooks see exactly
// what they would see from nvidia-smi. Output formats: README.md.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "abi/nvml_abi.h"

namespace {

struct Api {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*shutdown)();
  nvmlReturn_t (*driver_version)(char*, unsigned);
  nvmlReturn_t (*cuda_version)(int*);
  nvmlReturn_t (*count)(unsigned*);
  nvmlReturn_t (*handle)(unsigned, nvmlDevice_t*);
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned);
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned);
  nvmlReturn_t (*mem)(nvmlDevice_t, nvmlMemory_t*);
  nvmlReturn_t (*mem_v2)(nvmlDevice_t, nvmlMemory_v2_t*);
  nvmlReturn_t (*procs)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*);
};

template <typename F>
bool Resolve(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) fprintf(stderr, "fakegpu-smi: %s not found: %s\n", name, dlerror());
  return *out != nullptr;
}

int Fail(const char* what, nvmlReturn_t r) {
  fprintf(stderr, "fakegpu-smi: %s failed: NVML error %d\n", what, static_cast<int>(r));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool query = false, v2 = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--query") == 0) {
      query = true;
    } else if (strcmp(argv[i], "--mem-v2") == 0) {
      v2 = true;
    } else {
      fprintf(stderr, "usage: fakegpu-smi [--query] [--mem-v2]\n");
      return 2;
    }
  }
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (lib == nullptr) {
    fprintf(stderr, "fakegpu-smi: cannot load libnvidia-ml.so.1: %s\n", dlerror());
    return 1;
  }
  Api a;
  bool ok = Resolve(lib, "nvmlInit_v2", &a.init) && Resolve(lib, "nvmlShutdown", &a.shutdown) &&
            Resolve(lib, "nvmlSystemGetDriverVersion", &a.driver_version) &&
            Resolve(lib, "nvmlSystemGetCudaDriverVersion", &a.cuda_version) &&
            Resolve(lib, "nvmlDeviceGetCount_v2", &a.count) &&
            Resolve(lib, "nvmlDeviceGetHandleByIndex_v2", &a.handle) &&
            Resolve(lib, "nvmlDeviceGetName", &a.name) &&
            Resolve(lib, "nvmlDeviceGetUUID", &a.uuid) &&
            Resolve(lib, "nvmlDeviceGetMemoryInfo", &a.mem) &&
            Resolve(lib, "nvmlDeviceGetMemoryInfo_v2", &a.mem_v2) &&
            Resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v3", &a.procs);
  if (!ok) return 1;
  if (nvmlReturn_t r = a.init(); r != NVML_SUCCESS) return Fail("nvmlInit_v2", r);
  unsigned n = 0;
  if (nvmlReturn_t r = a.count(&n); r != NVML_SUCCESS) return Fail("nvmlDeviceGetCount_v2", r);
  if (!query) {
    char ver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "?";
    int cuda = 0;
    a.driver_version(ver, sizeof ver);
    a.cuda_version(&cuda);
    printf("Driver Version: %s  CUDA Version: %d.%d\n", ver, cuda / 1000, cuda % 1000 / 10);
  }
  for (unsigned i = 0; i < n; ++i) {
    nvmlDevice_t d;
    if (nvmlReturn_t r = a.handle(i, &d); r != NVML_SUCCESS) return Fail("GetHandleByIndex", r);
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    if (nvmlReturn_t r = a.name(d, name, sizeof name); r != NVML_SUCCESS) return Fail("GetName", r);
    if (nvmlReturn_t r = a.uuid(d, uuid, sizeof uuid); r != NVML_SUCCESS) return Fail("GetUUID", r);
    unsigned long long used, total;
    if (v2) {
      nvmlMemory_v2_t m{};
      m.version = nvmlMemory_v2;
      if (nvmlReturn_t r = a.mem_v2(d, &m); r != NVML_SUCCESS) return Fail("GetMemoryInfo_v2", r);
      used = m.used, total = m.total;
    } else {
      nvmlMemory_t m{};
      if (nvmlReturn_t r = a.mem(d, &m); r != NVML_SUCCESS) return Fail("GetMemoryInfo", r);
      used = m.used, total = m.total;
    }
    if (query) {
      printf("%u,%s,%llu,%llu\n", i, uuid, used >> 20, total >> 20);
      continue;
    }
    printf("GPU %u: %s | %s | %lluMiB / %lluMiB\n", i, name, uuid, used >> 20, total >> 20);
    nvmlProcessInfo_t procs[64];
    unsigned count = 64;
    if (a.procs(d, &count, procs) == NVML_SUCCESS)
      for (unsigned k = 0; k < count; ++k)
        printf("  Process %u: %lluMiB\n", procs[k].pid, procs[k].usedGpuMemory >> 20);
  }
  a.shutdown();
  return 0;
}
