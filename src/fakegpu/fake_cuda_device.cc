// The fake libcuda.so.1's entry points for initialisation, devices, contexts, error strings
// and cuGetProcAddress (see fake_cuda_driver.h).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakegpu/fake_cuda_driver.h"

using namespace hami::fakegpu;          // NOLINT: the C entry points below are thin
using namespace hami::fakegpu::driver;  // NOLINT

extern "C" {

// ---- initialisation and devices ----

CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Lock l(D().mu);
  Driver& d = D();
  if (d.initialized) return CUDA_SUCCESS;
  auto cfg = LoadConfig();
  if (!cfg.ok()) {
    fprintf(stderr, "fakegpu: %s\n", cfg.status().message().c_str());
    return CUDA_ERROR_NO_DEVICE;
  }
  auto st = SharedState::Open(SharedState::DefaultPath());
  if (!st.ok()) {
    fprintf(stderr, "fakegpu: %s\n", st.status().message().c_str());
    return CUDA_ERROR_OPERATING_SYSTEM;
  }
  std::vector<int> visible;
  const char* cvd = getenv("CUDA_VISIBLE_DEVICES");
  if (cvd == nullptr) {
    for (size_t i = 0; i < cfg->devices.size(); ++i) visible.push_back(static_cast<int>(i));
  } else {
    visible = ParseVisibleDevices(cvd, *cfg);
  }
  if (visible.empty()) return CUDA_ERROR_NO_DEVICE;
  d.cfg = std::move(*cfg);
  d.state = std::move(*st);
  d.visible = std::move(visible);
  d.owner = static_cast<uint64_t>(getpid());
  if (const char* sw = getenv("FAKEGPU_CONTEXT_SWITCH_US"))
    d.switch_ns = strtoull(sw, nullptr, 10) * 1000;
  if (const char* p = getenv("FAKEGPU_POWER_SLOWDOWN")) d.power_slowdown = strtod(p, nullptr);
  if (const char* o = getenv("FAKEGPU_STREAM_OVERLAP")) d.stream_overlap = strcmp(o, "1") == 0;
  if (const char* m = getenv("FAKEGPU_LAZY_MODULE_MIB"))
    d.lazy_module_bytes = strtoull(m, nullptr, 10) << 20;
  if (const char* g = getenv("FAKEGPU_COPY_GBPS")) {
    double v = strtod(g, nullptr);
    if (v > 0) d.copy_gbps = v;
  }
  if (const char* w = getenv("FAKEGPU_WAKE_US")) d.wake_ns = strtoull(w, nullptr, 10) * 1000;
  if (const char* w = getenv("FAKEGPU_WAKE_IDLE_MS"))
    d.wake_idle_ns = strtoull(w, nullptr, 10) * 1000000;
  if (const char* w = getenv("FAKEGPU_POWER_WINDOW_US"))
    d.power_window_ns = strtoull(w, nullptr, 10) * 1000;
  d.initialized = true;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(D().visible.size());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* dev, int ordinal) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = CheckDevice(ordinal, nullptr); r != CUDA_SUCCESS) return r;
  *dev = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  snprintf(name, len, "%s", D().cfg.devices[phys].name.c_str());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  memcpy(uuid->bytes, D().cfg.devices[phys].uuid_bytes, 16);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  *bytes = D().cfg.devices[phys].mem_bytes;
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  size_t b = 0;
  CUresult r = cuDeviceTotalMem_v2(&b, dev);
  if (r == CUDA_SUCCESS) *bytes = static_cast<unsigned>(std::min<size_t>(b, UINT_MAX));
  return r;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  const DeviceConfig& c = D().cfg.devices[phys];
  // Per-device values come from the config; the rest are fixed, V100-like.
  struct Fixed {
    int attr, value;
  };
  static constexpr Fixed kFixed[] = {
      {1, 1024},    {2, 1024},     {3, 1024},     {4, 64},    {5, INT_MAX},  // block / grid limits
      {6, 65535},   {7, 65535},    {8, 49152},    {9, 65536}, {10, 32},      // shmem, const, warp
      {12, 65536},  {13, 1530000},                                           // registers, clock kHz
      {18, 0},      {19, 1},       {20, 0},       {31, 1},    {32, 1},       // integrated ... ECC
      {36, 877000}, {37, 4096},    {38, 6291456},                       // memory clock, bus, L2
      {39, 2048},   {40, 6},       {41, 1},                             // threads/SM, copy eng.
      {81, 98304},  {82, 65536},   {83, 1},       {89, 1},    {95, 1},  // per-SM limits ...
      {97, 98304},  {102, 1},      {106, 32},     {115, 1},             // VMM, pools supported
  };
  switch (static_cast<int>(attr)) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *value = c.sms;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
      *value = static_cast<int>(c.pci_bus);
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
      *value = static_cast<int>(c.pci_device);
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
      *value = static_cast<int>(c.pci_domain);
      return CUDA_SUCCESS;
    case 75:
      *value = c.cc_major;
      return CUDA_SUCCESS;  // COMPUTE_CAPABILITY_MAJOR
    case 76:
      *value = c.cc_minor;
      return CUDA_SUCCESS;  // COMPUTE_CAPABILITY_MINOR
    default:
      break;
  }
  for (const Fixed& f : kFixed) {
    if (f.attr == static_cast<int>(attr)) {
      *value = f.value;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// ---- contexts ----

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int phys;
  if (CUresult r = CheckDevice(dev, &phys); r != CUDA_SUCCESS) return r;
  Ctx*& c = D().primary[dev];
  if (c == nullptr) {
    c = new Ctx{dev, phys, true, false, 0, 0, 0};
    D().ctxs.insert(c);
  }
  if (c->refs == 0) {
    if (!ChargeLocked(phys, D().cfg.devices[phys].ctx_mem)) return CUDA_ERROR_OUT_OF_MEMORY;
    c->active = true;
  }
  ++c->refs;
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return PrimaryReleaseCommon(dev); }
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return PrimaryReleaseCommon(dev); }
CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) { return PrimaryResetCommon(dev); }
CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return PrimaryResetCommon(dev); }

CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate(CUcontext* pctx, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int num, unsigned int,
                        CUdevice dev) {
  if (num < 0 || (num > 0 && params == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams*, unsigned int, CUdevice dev) {
  return CtxCreateCommon(pctx, dev);
}
CUresult cuCtxDestroy_v2(CUcontext ctx) { return CtxDestroyCommon(ctx); }
CUresult cuCtxDestroy(CUcontext ctx) { return CtxDestroyCommon(ctx); }

CUresult cuCtxGetCurrent(CUcontext* pctx) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pctx = D().ctxs.count(tls_ctx) ? reinterpret_cast<CUcontext>(tls_ctx) : nullptr;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Ctx* c = reinterpret_cast<Ctx*>(ctx);
  if (c != nullptr && !D().ctxs.count(c)) return CUDA_ERROR_INVALID_CONTEXT;
  tls_ctx = c;
  return CUDA_SUCCESS;
}

// Stack size, printf FIFO and malloc heap take device memory at once, beyond their defaults
// (the stack for every resident thread); the other limits take none.
CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  Lock l(D().mu);
  REQUIRE_INIT();
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (limit > CU_LIMIT_PERSISTING_L2_CACHE_SIZE) return CUDA_ERROR_INVALID_VALUE;
  if (limit > CU_LIMIT_MALLOC_HEAP_SIZE) return CUDA_SUCCESS;
  uint64_t bytes = 0;  // what the three take beyond their defaults, with the new value
  for (int i = 0; i < 3; ++i) {
    const uint64_t v = i == static_cast<int>(limit) ? value : c->limits[i];
    bytes += (v > kLimitDefaults[i] ? v - kLimitDefaults[i] : 0) * (i == 0 ? kResidentThreads : 1);
  }
  if (bytes > c->limit_bytes && !ChargeLocked(c->phys, bytes - c->limit_bytes))
    return CUDA_ERROR_OUT_OF_MEMORY;
  if (bytes < c->limit_bytes) D().state->Uncharge(c->phys, c->limit_bytes - bytes);
  c->limit_bytes = bytes;
  c->limits[limit] = value;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetLimit(size_t* value, CUlimit limit) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (value == nullptr || limit > CU_LIMIT_PERSISTING_L2_CACHE_SIZE)
    return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *value = limit <= CU_LIMIT_MALLOC_HEAP_SIZE ? c->limits[limit] : 0;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* dev) {
  Lock l(D().mu);
  REQUIRE_INIT();
  if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Ctx* c = CurrentLocked();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *dev = c->ordinal;
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
  uint64_t t;
  {
    Lock l(D().mu);
    REQUIRE_INIT();
    Ctx* c = CurrentLocked();
    if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    t = c->tail;
  }
  SleepUntil(t);
  Lock l(D().mu);
  if (Ctx* c = CurrentLocked()) {
    CompletePendingFreesLocked([&](const PendingFree& f) { return f.ctx == c; });
    TrimDeviceLocked(c->phys);
  }
  return CUDA_SUCCESS;
}

// ---- errors ----

namespace {
struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM",
     "OS call failed or operation not supported on this OS"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
const ErrorText* FindError(CUresult e) {
  for (const ErrorText& t : kErrors)
    if (t.code == e) return &t;
  return nullptr;
}
}  // namespace

CUresult cuGetErrorString(CUresult error, const char** str) {
  if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* t = FindError(error);
  *str = t ? t->text : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult error, const char** str) {
  if (str == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* t = FindError(error);
  *str = t ? t->name : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// ---- cuGetProcAddress ----

CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult* symbolStatus) {
  return GetProcAddress(symbol, pfn, cudaVersion, flags, symbolStatus);
}

CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return GetProcAddress(symbol, pfn, cudaVersion, flags, nullptr);
}

}  // extern "C"
