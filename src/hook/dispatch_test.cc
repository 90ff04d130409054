// What dispatch.cc generates from the one list of entry points (abi/cuda_hooks.def through
// abi/cuda_proc.h), checked without a process: which names must be intercepted for the
// limits to hold, and that the list's columns are consistent.
#include <gtest/gtest.h>
#include <string.h>

#include <set>
#include <string>

#include "abi/cuda_proc.h"

namespace hami::abi {
namespace {

TEST(DispatchTest, MustBeHookedIsEveryLimitRelevantBaseName) {
  const std::set<std::string> expected = {"cuMemAlloc",
                                          "cuMemAllocPitch",
                                          "cuMemAllocManaged",
                                          "cuMemFree",
                                          "cuMemCreate",
                                          "cuMemRelease",
                                          "cuMemAllocAsync",
                                          "cuMemAllocFromPoolAsync",
                                          "cuMemFreeAsync",
                                          "cuMemGetInfo",
                                          "cuDeviceTotalMem",
                                          "cuArrayCreate",
                                          "cuArray3DCreate",
                                          "cuMipmappedArrayCreate",
                                          "cuLaunchKernel",
                                          "cuLaunchKernelEx",
                                          "cuLaunchCooperativeKernel",
                                          "cuGraphLaunch",
                                          "cuLaunch",
                                          "cuLaunchGrid",
                                          "cuLaunchGridAsync",
                                          "cuLaunchCooperativeKernelMultiDevice",
                                          "cuCtxCreate",
                                          "cuCtxSetLimit",
                                          "cuDevicePrimaryCtxRetain",
                                          "cuDevicePrimaryCtxRelease",
                                          "cuDevicePrimaryCtxReset"};
  std::set<std::string> got;
  for (const CuProc& p : kCuHooked)
    if (MustBeHooked(p.base)) got.insert(p.base);
  EXPECT_EQ(got, expected);
  for (const char* no : {"cuInit", "cuMemPoolTrimTo", "cuCtxDestroy", "cuArrayDestroy",
                         "cuMemAlloc_v2", "cuDeviceGetCount", "", "cuNoSuchThing"})
    EXPECT_FALSE(MustBeHooked(no)) << no;
  EXPECT_FALSE(MustBeHooked(nullptr));
}

TEST(DispatchTest, NoLimitRelevantVariantIsLeftUnintercepted) {
  // A variant of a limit-relevant name that libvgpu only calls would be a way around it.
  for (const CuProc& p : kCuInternal) EXPECT_FALSE(MustBeHooked(p.base)) << p.name;
}

TEST(DispatchTest, ColumnsAreConsistent) {
  auto check = [](const CuProc& p) {
    EXPECT_EQ(strncmp(p.name, p.base, strlen(p.base)), 0) << p.name << " vs base " << p.base;
    std::string suffix = p.name + strlen(p.base);
    EXPECT_TRUE(suffix.empty() || suffix == "_ptsz" || suffix == "_v2" || suffix == "_v3" ||
                suffix == "_v4" || suffix == "_v2_ptsz")
        << p.name;
    bool ptsz = suffix.size() >= 5 && suffix.compare(suffix.size() - 5, 5, "_ptsz") == 0;
    EXPECT_EQ(p.role == CuRole::kPtsz, ptsz) << p.name;
    EXPECT_GE(p.since, 2000) << p.name;
    EXPECT_LE(p.since, 13000) << p.name;
  };
  for (const CuProc& p : kCuHooked) check(p);
  for (const CuProc& p : kCuInternal) check(p);
  // A _ptsz variant stands beside the default-stream variant of the same version.
  for (const CuProc& p : kCuHooked) {
    if (p.role != CuRole::kPtsz) continue;
    bool sibling = false;
    for (const CuProc& q : kCuHooked)
      sibling |= q.role != CuRole::kPtsz && strcmp(q.base, p.base) == 0 && q.since == p.since;
    EXPECT_TRUE(sibling) << p.name;
  }
  // No two variants of one base claim the same version.
  std::set<std::pair<std::string, int>> seen;
  auto unique = [&seen](const CuProc& p) {
    if (p.role != CuRole::kPtsz) {
      EXPECT_TRUE(seen.insert({p.base, p.since}).second) << p.name;
    }
  };
  for (const CuProc& p : kCuHooked) unique(p);
  for (const CuProc& p : kCuInternal) unique(p);
}

}  // namespace
}  // namespace hami::abi
