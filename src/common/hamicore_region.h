// Reader of HAMi-core's shared region (the `*.cache` file HAMi's libvgpu.so maps in each
// container directory, CUDA_DEVICE_MEMORY_SHARED_CACHE), so the node monitor can run next to
// HAMi-core processes. The file is written by the tenant: every count is checked, nothing crashes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/accounting_reader.h"
#include "common/status.h"

namespace hami::accounting::hamicore {

// Facts about HAMi-core's layout (x86-64/arm64 LP64, `shared_region_t` of HAMi-core's
// src/multiprocess/multiprocess_memory_limit.h, mirrored by HAMi's pkg/monitor/nvidia/v1). Only
// offsets are kept: the struct is never declared here, the bytes are read field by field.
inline constexpr int32_t kMagic = 19920718;  // initialized_flag once the region is set up
inline constexpr uint32_t kSupportedMajor = 1;
inline constexpr std::size_t kMaxDevices = 16;
inline constexpr std::size_t kUuidLen = 96;
inline constexpr std::size_t kMaxProcs = 1024;
// Header: initialized_flag i32 @0, major u32 @4, minor u32 @8, sm_init_flag i32 @12,
// owner_pid (size_t) @16, sem_t (32 bytes) @24, device_num u64 @56, uuids[16][96] @64,
// limit[16] u64 @1600, sm_limit[16] u64 @1728, procs[1024] @1856.
inline constexpr std::size_t kOffMajor = 4;
inline constexpr std::size_t kOffMinor = 8;
inline constexpr std::size_t kOffDeviceNum = 56;
inline constexpr std::size_t kOffUuids = 64;
inline constexpr std::size_t kOffLimit = kOffUuids + kMaxDevices * kUuidLen;  // 1600
inline constexpr std::size_t kOffSmLimit = kOffLimit + kMaxDevices * 8;       // 1728
inline constexpr std::size_t kOffProcs = kOffSmLimit + kMaxDevices * 8;       // 1856
// Process slot: pid i32 @0, hostpid i32 @4, used[16] @8 (device_memory_t, 64 bytes each:
// context_size, module_size, data_size, offset, total, unused[3]), monitorused[16] @1032,
// device_util[16] @1160 (48 bytes each), status i32 @1928, 24 more bytes; 1960 in all.
inline constexpr std::size_t kSlotOffUsed = 8;
inline constexpr std::size_t kDevMemSize = 64;
inline constexpr std::size_t kDevMemOffContext = 0;
inline constexpr std::size_t kDevMemOffModule = 8;
inline constexpr std::size_t kDevMemOffData = 16;
inline constexpr std::size_t kDevMemOffTotal = 32;
inline constexpr std::size_t kSlotOffDevUtil = 1160;
inline constexpr std::size_t kDevUtilSize = 48;  // dec_util, enc_util, sm_util, unused[3]
inline constexpr std::size_t kDevUtilOffSm = 16;
inline constexpr std::size_t kSlotSize = 1960;
// Trailer: proc_num i32, utilization_switch i32, recent_kernel i32, priority i32,
// last_kernel_time i64 (time(NULL): seconds), 32 bytes; the region is 2008952 bytes.
inline constexpr std::size_t kOffProcNum = kOffProcs + kMaxProcs * kSlotSize;  // 2008896
inline constexpr std::size_t kOffPriority = kOffProcNum + 12;
inline constexpr std::size_t kOffLastKernel = kOffProcNum + 16;
inline constexpr std::size_t kRegionSize = kOffLastKernel + 8 + 32;  // 2008952
// HAMi's monitor also knows a version-less "v0" layout (1197896 bytes, no version fields);
// HAMi-core has not written it since the versioned region; named as unsupported.
inline constexpr std::size_t kV0RegionSize = 1197896;

// True when the bytes start with HAMi-core's initialised flag (the dispatch test).
bool LooksLikeRegion(const void* data, std::size_t size);

// Parses a HAMi-core region into the monitor's snapshot: per device (uuids[i] non-empty, i <
// device_num) the uuid, limit[i], sm_limit[i], used = sum over procs[0..proc_num) of
// used[i].total, the context/module/data split, the summed sm_util, processes holding memory on it,
// the region's priority and last kernel time. Errors: kInvalidArgument naming the check (flag,
// unsupported version "major.minor", the v0 layout, size, device_num > 16, proc_num outside
// 0..1024, uuid not terminated or not printable).
StatusOr<AccountingSnapshot> ParseRegion(const void* data, std::size_t size);

}  // namespace hami::accounting::hamicore

namespace hami::accounting::hamicore {
static_assert(kOffProcs == 1856 && kOffProcNum == 2008896 && kRegionSize == 2008952,
              "offsets as HAMi-core lays out shared_region_t on LP64");
}  // namespace hami::accounting::hamicore
