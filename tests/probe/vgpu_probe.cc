// A small CUDA driver-API program that exercises every allocation path the way applications
// do. The integration tests run it under libvgpu.so against the fake driver; bench/ runs
// the same program on a real GPU. Output is one `key=value` line per fact, for scripts.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "abi/cuda_api.h"
#include "abi/nvml_api.h"

namespace {

constexpr size_t kMiB = 1ull << 20;

#define CHECK(call)                                              \
  do {                                                           \
    CUresult r_ = (call);                                        \
    if (r_ != CUDA_SUCCESS) {                                    \
      printf("error=%d call=%s\n", static_cast<int>(r_), #call); \
      fflush(stdout);                                            \
      exit(3);                                                   \
    }                                                            \
  } while (0)

CUcontext g_ctx;

void Setup(int ordinal) {
  CHECK(cuInit(0));
  CUdevice dev;
  CHECK(cuDeviceGet(&dev, ordinal));
  CHECK(cuDevicePrimaryCtxRetain(&g_ctx, dev));
  CHECK(cuCtxSetCurrent(g_ctx));
}

// Allocates `chunk` bytes through `path` once. Returns the CUresult and a release closure key.
struct Alloc {
  std::string path;
  CUdeviceptr ptr = 0;
  CUmemGenericAllocationHandle handle = 0;
  CUarray array = nullptr;
  CUmipmappedArray mip = nullptr;
};

CUresult AllocOnce(const std::string& path, size_t chunk, Alloc* a) {
  a->path = path;
  if (path == "alloc") return cuMemAlloc_v2(&a->ptr, chunk);
  if (path == "managed") return cuMemAllocManaged(&a->ptr, chunk, CU_MEM_ATTACH_GLOBAL);
  if (path == "pitch") {
    size_t pitch = 0;
    return cuMemAllocPitch_v2(&a->ptr, &pitch, 1000, chunk / 1024, 4);
  }
  if (path == "vmm") {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUdevice dev;
    cuCtxGetDevice(&dev);
    prop.location.id = dev;
    size_t gran = 0;
    CHECK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    size_t size = (chunk + gran - 1) / gran * gran;
    return cuMemCreate(&a->handle, size, &prop, 0);
  }
  if (path == "async") {
    CUresult r = cuMemAllocAsync(&a->ptr, chunk, nullptr);
    if (r == CUDA_SUCCESS) r = cuStreamSynchronize(nullptr);
    return r;
  }
  if (path == "pool") {
    CUdevice dev;
    cuCtxGetDevice(&dev);
    CUmemoryPool pool;
    CHECK(cuDeviceGetDefaultMemPool(&pool, dev));
    CUresult r = cuMemAllocFromPoolAsync(&a->ptr, chunk, pool, nullptr);
    if (r == CUDA_SUCCESS) r = cuStreamSynchronize(nullptr);
    return r;
  }
  if (path == "array") {
    CUDA_ARRAY_DESCRIPTOR d;
    memset(&d, 0, sizeof(d));
    d.Width = 4096;
    d.Height = chunk / (4096 * 4);
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    return cuArrayCreate_v2(&a->array, &d);
  }
  if (path == "array3d") {
    CUDA_ARRAY3D_DESCRIPTOR d;
    memset(&d, 0, sizeof(d));
    d.Width = 256;
    d.Height = 256;
    d.Depth = chunk / (256 * 256 * 4);
    d.Format = CU_AD_FORMAT_UNSIGNED_INT8;
    d.NumChannels = 4;
    return cuArray3DCreate_v2(&a->array, &d);
  }
  if (path == "mipmap") {
    CUDA_ARRAY3D_DESCRIPTOR d;
    memset(&d, 0, sizeof(d));
    d.Width = 4096;
    d.Height = chunk / (4096 * 4);
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    return cuMipmappedArrayCreate(&a->mip, &d, 1);
  }
  fprintf(stderr, "unknown path %s\n", path.c_str());
  exit(2);
}

CUresult FreeOnce(const Alloc& a) {
  if (a.path == "vmm") return cuMemRelease(a.handle);
  if (a.path == "array" || a.path == "array3d") return cuArrayDestroy(a.array);
  if (a.path == "mipmap") return cuMipmappedArrayDestroy(a.mip);
  if (a.path == "async" || a.path == "pool") {
    CUresult r = cuMemFreeAsync(a.ptr, nullptr);
    if (r == CUDA_SUCCESS) r = cuStreamSynchronize(nullptr);
    return r;
  }
  return cuMemFree_v2(a.ptr);
}

void PrintInfo() {
  size_t free = 0, total = 0, dev_total = 0;
  CHECK(cuMemGetInfo_v2(&free, &total));
  CUdevice dev;
  CHECK(cuCtxGetDevice(&dev));
  CHECK(cuDeviceTotalMem_v2(&dev_total, dev));
  printf("total_mib=%zu free_mib=%zu device_total_mib=%zu\n", total / kMiB, free / kMiB,
         dev_total / kMiB);
}

// What the (fake) driver holds for this process, whatever libvgpu believes.
void PrintDriverHeld() {
  using MemUsageFn = CUresult (*)(CUdevice, uint64_t*, uint64_t*);
  if (auto usage = reinterpret_cast<MemUsageFn>(dlsym(RTLD_DEFAULT, "fakegpuMemUsage"))) {
    CUdevice dev;
    uint64_t process = 0;
    if (cuCtxGetDevice(&dev) == CUDA_SUCCESS && usage(dev, &process, nullptr) == CUDA_SUCCESS)
      printf("driver_process_mib=%llu\n", static_cast<unsigned long long>(process / kMiB));
  }
}

// stack KIB: the per-thread stack size raised to KIB (device memory for every resident thread),
// then back to 1 KiB; the result and the memory views after each.
int Stack(size_t kib) {
  CUresult r = cuCtxSetLimit(CU_LIMIT_STACK_SIZE, kib * 1024);
  size_t now = 0;
  CHECK(cuCtxGetLimit(&now, CU_LIMIT_STACK_SIZE));
  printf("set_result=%d stack_bytes=%zu\n", static_cast<int>(r), now);
  PrintInfo();
  PrintDriverHeld();
  fflush(stdout);
  CHECK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1024));
  size_t free = 0, total = 0;
  CHECK(cuMemGetInfo_v2(&free, &total));
  printf("after_reset_free_mib=%zu\n", free / kMiB);
  return 0;
}

int Fill(const std::string& path, size_t chunk_mib, bool free_after, bool wait_stdin) {
  std::vector<Alloc> held;
  CUresult last = CUDA_SUCCESS;
  for (;;) {
    Alloc a;
    last = AllocOnce(path, chunk_mib * kMiB, &a);
    if (last != CUDA_SUCCESS) break;
    held.push_back(a);
  }
  printf("path=%s allocated_mib=%zu stop_error=%d\n", path.c_str(), held.size() * chunk_mib,
         static_cast<int>(last));
  PrintInfo();
  PrintDriverHeld();  // at the cap
  fflush(stdout);
  if (wait_stdin) {  // hold everything until the parent closes our stdin
    char buf[64];
    while (read(0, buf, sizeof(buf)) > 0) {
    }
  }
  if (free_after) {
    for (const Alloc& a : held) CHECK(FreeOnce(a));
    printf("freed=1\n");
    PrintInfo();
  }
  fflush(stdout);
  return 0;
}

int Nvml() {
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!h) {
    printf("nvml=missing\n");
    return 4;
  }
  auto init = reinterpret_cast<nvmlReturn_t (*)()>(dlsym(h, "nvmlInit_v2"));
  auto by_index = reinterpret_cast<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>(
      dlsym(h, "nvmlDeviceGetHandleByIndex_v2"));
  auto info = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*)>(
      dlsym(h, "nvmlDeviceGetMemoryInfo"));
  auto info2 = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_v2_t*)>(
      dlsym(h, "nvmlDeviceGetMemoryInfo_v2"));
  auto count = reinterpret_cast<nvmlReturn_t (*)(unsigned*)>(dlsym(h, "nvmlDeviceGetCount_v2"));
  if (!init || !by_index || !info || !info2 || !count || init() != NVML_SUCCESS) return 5;
  unsigned n = 0;
  count(&n);
  for (unsigned i = 0; i < n; ++i) {
    nvmlDevice_t d;
    if (by_index(i, &d) != NVML_SUCCESS) return 6;
    nvmlMemory_t m;
    nvmlMemory_v2_t m2;
    memset(&m2, 0, sizeof(m2));
    m2.version = nvmlMemory_v2;
    if (info(d, &m) != NVML_SUCCESS || info2(d, &m2) != NVML_SUCCESS) return 7;
    printf(
        "nvml_index=%u total_mib=%llu used_mib=%llu free_mib=%llu v2_total_mib=%llu "
        "v2_used_mib=%llu\n",
        i, m.total / kMiB, m.used / kMiB, m.free / kMiB, m2.total / kMiB, m2.used / kMiB);
  }
  return 0;
}

// Allocates and frees in a tight loop forever (the kill -9 tests stop it at random moments).
int Legacy() {
  unsigned int p = 0;
  CUresult r = cuMemAlloc(&p, 1 << 20);
  printf("legacy_alloc=%d\n", static_cast<int>(r));
  return 0;
}

int Churn(size_t mib) {
  printf("ready=1\n");
  fflush(stdout);
  for (;;) {
    CUdeviceptr p;
    if (cuMemAlloc_v2(&p, mib * kMiB) == CUDA_SUCCESS) cuMemFree_v2(p);
  }
}

int Hold(size_t mib, int seconds) {
  CUdeviceptr p;
  CUresult r = cuMemAlloc_v2(&p, mib * kMiB);
  printf("hold_mib=%zu result=%d\n", mib, static_cast<int>(r));
  fflush(stdout);
  sleep(static_cast<unsigned>(seconds));
  return r == CUDA_SUCCESS ? 0 : 1;
}

// Resolves entry points through cuGetProcAddress the way the CUDA runtime does and checks
// they are the interposed ones (same address as the exported symbol in the global scope).
int ProcAddr() {
  struct Q {
    const char* name;
    int version;
    cuuint64_t flags;
    const char* expect;
  } qs[] = {{"cuMemAlloc", 12000, 0, "cuMemAlloc_v2"},
            {"cuMemAlloc", 3000, 0, "cuMemAlloc"},
            {"cuMemGetInfo", 12000, 0, "cuMemGetInfo_v2"},
            {"cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
             "cuLaunchKernel_ptsz"},
            {"cuLaunchKernel", 12000, 0, "cuLaunchKernel"},
            {"cuMemAllocAsync", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
             "cuMemAllocAsync_ptsz"},
            {"cuGraphLaunch", 12000, 0, "cuGraphLaunch"},
            {"cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2"},
            // Pre-3.2 variants: each must come back intercepted too.
            {"cuCtxCreate", 3000, 0, "cuCtxCreate"},
            {"cuCtxDestroy", 3000, 0, "cuCtxDestroy"},
            {"cuMemFree", 3000, 0, "cuMemFree"}};
  // Under libvgpu.so, every answer must be one of its wrappers, not the driver's function.
  const char* preload = getenv("LD_PRELOAD");
  bool interposed = preload && strstr(preload, "libvgpu") != nullptr;
  int bad = 0;
  for (const Q& q : qs) {
    void* pfn = nullptr;
    CUdriverProcAddressQueryResult st;
    CUresult r = cuGetProcAddress_v2(q.name, &pfn, q.version, q.flags, &st);
    void* want = dlsym(RTLD_DEFAULT, q.expect);
    bool ok = r == CUDA_SUCCESS && pfn && pfn == want;
    Dl_info where;
    if (ok && interposed)
      ok = dladdr(pfn, &where) != 0 && where.dli_fname && strstr(where.dli_fname, "libvgpu");
    printf("procaddr %s v%d flags=%llu -> %s ok=%d\n", q.name, q.version,
           static_cast<unsigned long long>(q.flags), q.expect, ok ? 1 : 0);
    bad += ok ? 0 : 1;
  }
  // Repeated lookups must keep answering (HAMi-core returned NULL on the second one).
  for (int i = 0; i < 3; ++i) {
    void* p = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
    void* h = dlopen("libcuda.so.1", RTLD_NOW);
    void* q = h ? dlsym(h, "cuMemAlloc_v2") : nullptr;
    if (!p || p != q) ++bad;
  }
  printf("procaddr_bad=%d\n", bad);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(
        stderr,
        "usage: vgpu_probe info | fill PATH CHUNK_MIB [free|wait] | nvml | churn MIB | hold MIB "
        "SECONDS | procaddr | init\n"
        "PATH: alloc managed pitch vmm async pool array array3d mipmap\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "nvml") return Nvml();
  if (cmd == "init") {
    CUresult r = cuInit(0);
    printf("init_result=%d\n", static_cast<int>(r));
    return r == CUDA_SUCCESS ? 0 : 1;
  }
  int ordinal = getenv("PROBE_DEVICE") ? atoi(getenv("PROBE_DEVICE")) : 0;
  if (cmd == "device") {
    CHECK(cuInit(0));
    CUdevice dev;
    CUresult r = cuDeviceGet(&dev, ordinal);
    printf("device_result=%d\n", static_cast<int>(r));
    return 0;
  }
  if (cmd == "count") {
    CHECK(cuInit(0));
    int n = -1;
    CUresult r = cuDeviceGetCount(&n);
    printf("count_result=%d count=%d\n", static_cast<int>(r), n);
    return 0;
  }
  if (cmd == "procaddr") {
    CHECK(cuInit(0));
    return ProcAddr();
  }
  Setup(ordinal);
  if (const char* go = getenv("PROBE_GO_FILE")) {  // start racing only when told to
    printf("ready=1\n");
    fflush(stdout);
    while (access(go, F_OK) != 0) usleep(1000);
  }
  if (getenv("PROBE_LAUNCH_FIRST")) {  // one kernel first: lazily loaded module memory
    using KernelCreateFn = CUresult (*)(CUfunction*, uint64_t);
    auto create = reinterpret_cast<KernelCreateFn>(dlsym(RTLD_DEFAULT, "fakegpuKernelCreate"));
    CUfunction fn = nullptr;
    if (!create || create(&fn, 1000) != CUDA_SUCCESS) {
      fprintf(stderr, "PROBE_LAUNCH_FIRST needs the fake driver\n");
      return 3;
    }
    CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr));
    CHECK(cuCtxSynchronize());
  }
  if (cmd == "info") {
    PrintInfo();
    return 0;
  }
  if (cmd == "fill" && argc >= 4)
    return Fill(argv[2], strtoull(argv[3], nullptr, 10), argc >= 5 && !strcmp(argv[4], "free"),
                argc >= 5 && !strcmp(argv[4], "wait"));
  if (cmd == "legacy") return Legacy();
  if (cmd == "stack" && argc >= 3) return Stack(strtoull(argv[2], nullptr, 10));
  if (cmd == "churn" && argc >= 3) return Churn(strtoull(argv[2], nullptr, 10));
  if (cmd == "hold" && argc >= 4) return Hold(strtoull(argv[2], nullptr, 10), atoi(argv[3]));
  fprintf(stderr, "bad arguments\n");
  return 2;
}
