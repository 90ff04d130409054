// cuGetProcAddress / _v2: versioned entry points, _ptsz variants and the symbol status, and
// that every listed symbol is exported and reachable through it.
#include <dlfcn.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "abi/cuda_api.h"

namespace {

void* Lib() {
  static void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  return h;
}

void* Sym(const char* name) { return dlsym(Lib(), name); }

void* Proc(const char* base, int version, cuuint64_t flags = 0,
           CUdriverProcAddressQueryResult* status = nullptr, CUresult* result = nullptr) {
  void* fn = reinterpret_cast<void*>(1);
  CUdriverProcAddressQueryResult st;
  CUresult r = cuGetProcAddress_v2(base, &fn, version, flags, &st);
  if (status) *status = st;
  if (result) *result = r;
  return fn;
}

TEST(FakeCudaProcAddress, VersionedEntryPoints) {
  ASSERT_NE(Lib(), nullptr);
  struct Case {
    const char* base;
    int version;
    const char* symbol;
  };
  const Case cases[] = {
      {"cuMemAlloc", 3010, "cuMemAlloc"},
      {"cuMemAlloc", 3020, "cuMemAlloc_v2"},
      {"cuMemAlloc", 13000, "cuMemAlloc_v2"},
      {"cuMemGetInfo", 2000, "cuMemGetInfo"},
      {"cuMemGetInfo", 12000, "cuMemGetInfo_v2"},
      {"cuMemAllocPitch", 3000, "cuMemAllocPitch"},
      {"cuMemAllocPitch", 3020, "cuMemAllocPitch_v2"},
      {"cuMemFree", 3000, "cuMemFree"},
      {"cuMemFree", 3020, "cuMemFree_v2"},
      {"cuDeviceTotalMem", 3000, "cuDeviceTotalMem"},
      {"cuDeviceTotalMem", 3020, "cuDeviceTotalMem_v2"},
      {"cuArrayCreate", 3000, "cuArrayCreate"},
      {"cuArrayCreate", 3020, "cuArrayCreate_v2"},
      {"cuArray3DCreate", 3020, "cuArray3DCreate_v2"},
      {"cuCtxCreate", 3010, "cuCtxCreate"},
      {"cuCtxCreate", 3020, "cuCtxCreate_v2"},
      {"cuCtxCreate", 11030, "cuCtxCreate_v2"},
      {"cuCtxCreate", 11040, "cuCtxCreate_v3"},
      {"cuCtxCreate", 12040, "cuCtxCreate_v3"},
      {"cuCtxCreate", 12050, "cuCtxCreate_v4"},
      {"cuDevicePrimaryCtxRelease", 10020, "cuDevicePrimaryCtxRelease"},
      {"cuDevicePrimaryCtxRelease", 11000, "cuDevicePrimaryCtxRelease_v2"},
      {"cuDevicePrimaryCtxReset", 11000, "cuDevicePrimaryCtxReset_v2"},
      {"cuGetProcAddress", 11030, "cuGetProcAddress"},
      {"cuGetProcAddress", 12000, "cuGetProcAddress_v2"},
      {"cuDeviceGetUuid", 11030, "cuDeviceGetUuid"},
      {"cuDeviceGetUuid", 11040, "cuDeviceGetUuid_v2"},
      {"cuInit", 2000, "cuInit"},
  };
  for (const Case& c : cases) {
    CUdriverProcAddressQueryResult st;
    CUresult r;
    void* fn = Proc(c.base, c.version, 0, &st, &r);
    EXPECT_EQ(r, CUDA_SUCCESS) << c.base << "@" << c.version;
    EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SUCCESS);
    ASSERT_NE(Sym(c.symbol), nullptr) << c.symbol;
    EXPECT_EQ(fn, Sym(c.symbol)) << c.base << "@" << c.version << " should be " << c.symbol;
  }
  // The v1 signature answers the same.
  void* fn = nullptr;
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &fn, 12000, 0), CUDA_SUCCESS);
  EXPECT_EQ(fn, Sym("cuMemAlloc_v2"));
  EXPECT_EQ(fn, reinterpret_cast<void*>(&cuMemAlloc_v2));
}

TEST(FakeCudaProcAddress, PerThreadDefaultStream) {
  const char* with_ptsz[] = {"cuLaunchKernel", "cuLaunchKernelEx", "cuLaunchCooperativeKernel",
                             "cuGraphLaunch",  "cuMemAllocAsync",  "cuMemAllocFromPoolAsync",
                             "cuMemFreeAsync"};
  for (const char* base : with_ptsz) {
    std::string ptsz = std::string(base) + "_ptsz";
    EXPECT_EQ(Proc(base, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM), Sym(ptsz.c_str()))
        << base;
    EXPECT_EQ(Proc(base, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM), Sym(base)) << base;
    EXPECT_EQ(Proc(base, 12000, CU_GET_PROC_ADDRESS_DEFAULT), Sym(base)) << base;
  }
  // No _ptsz variant: the plain symbol.
  EXPECT_EQ(Proc("cuMemAlloc", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM),
            Sym("cuMemAlloc_v2"));
}

TEST(FakeCudaProcAddress, NotFoundAndTooOld) {
  CUdriverProcAddressQueryResult st;
  CUresult r;
  EXPECT_EQ(Proc("cuNoSuchThing", 12000, 0, &st, &r), nullptr);
  EXPECT_EQ(r, CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(Proc("cuMemAlloc_v2", 12000, 0, &st, &r), nullptr);  // base names only
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(Proc("cuMemAllocAsync", 11010, 0, &st, &r), nullptr);
  EXPECT_EQ(r, CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  void* fn;
  EXPECT_EQ(cuGetProcAddress_v2("cuInit", nullptr, 12000, 0, &st), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2(nullptr, &fn, 12000, 0, &st), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuInit", &fn, 12000, 8, &st), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress("cuNoSuchThing", &fn, 12000, 0), CUDA_ERROR_NOT_FOUND);
}

// Every symbol of the ABI lists is exported and served for some (version, flags).
TEST(FakeCudaProcAddress, EveryListedSymbolIsReachable) {
  std::vector<const char*> names = {
#define HAMI_CU(name, params, args, ...) #name,
#include "abi/cuda_hooks.def"
#include "abi/cuda_internal.def"
#undef HAMI_CU
  };
  const int versions[] = {2000,  3000,  3020,  4000,  9020,  10020,
                          11000, 11030, 11040, 12000, 12050, 13000};
  for (const char* name : names) {
    void* sym = Sym(name);
    ASSERT_NE(sym, nullptr) << name << " not exported";
    std::string base = name;
    for (const char* suffix : {"_ptsz", "_v2", "_v3", "_v4"})
      if (base.size() > strlen(suffix) && base.ends_with(suffix))
        base.resize(base.size() - strlen(suffix));
    bool found = false;
    for (int v : versions)
      for (cuuint64_t f : {0, 2}) found |= Proc(base.c_str(), v, f) == sym;
    EXPECT_TRUE(found) << name << " is not served by cuGetProcAddress(\"" << base << "\")";
  }
}

TEST(FakeNvmlExports, EveryListedSymbolIsExported) {
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  ASSERT_NE(h, nullptr) << dlerror();
  const char* names[] = {
#define HAMI_NVML(name, params, args) #name,
#include "abi/nvml_hooks.def"
#include "abi/nvml_host.def"
#include "abi/nvml_internal.def"
#undef HAMI_NVML
  };
  for (const char* n : names) EXPECT_NE(dlsym(h, n), nullptr) << n;
  // Internals stay hidden.
  EXPECT_EQ(dlsym(h, "_ZN4hami7fakegpu11MonotonicNsEv"), nullptr);
  EXPECT_EQ(dlsym(Lib(), "_ZN4hami7fakegpu11MonotonicNsEv"), nullptr);
}

}  // namespace
