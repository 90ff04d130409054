// Reader of HAMi-core's shared region (hamicore_region.h).
#include "common/hamicore_region.h"

#include <cstring>
#include <limits>
#include <string>

namespace hami::accounting::hamicore {
namespace {

template <typename T>
T Load(const unsigned char* base, std::size_t off) {
  T v;
  std::memcpy(&v, base + off, sizeof(v));
  return v;
}

// Saturating: a hostile file may hold counters that would wrap a plain sum.
uint64_t AddSat(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

Status Bad(const std::string& what) { return InvalidArgument("HAMi-core region: " + what); }

// Sums of one device column over the live process slots.
struct Column {
  uint64_t total = 0, context = 0, module = 0, data = 0, sm_util = 0;
  uint32_t holders = 0;
};

Column SumColumn(const unsigned char* b, int32_t proc_num, std::size_t dev) {
  Column c;
  for (int32_t p = 0; p < proc_num; ++p) {
    const std::size_t m = kOffProcs + std::size_t(p) * kSlotSize + kSlotOffUsed + dev * kDevMemSize;
    const uint64_t total = Load<uint64_t>(b, m + kDevMemOffTotal);
    c.total = AddSat(c.total, total);
    c.context = AddSat(c.context, Load<uint64_t>(b, m + kDevMemOffContext));
    c.module = AddSat(c.module, Load<uint64_t>(b, m + kDevMemOffModule));
    c.data = AddSat(c.data, Load<uint64_t>(b, m + kDevMemOffData));
    c.sm_util = AddSat(c.sm_util,
                       Load<uint64_t>(b, kOffProcs + std::size_t(p) * kSlotSize + kSlotOffDevUtil +
                                             dev * kDevUtilSize + kDevUtilOffSm));
    if (total > 0) ++c.holders;
  }
  return c;
}

StatusOr<std::string> Uuid(const unsigned char* b, std::size_t dev) {
  const char* u = reinterpret_cast<const char*>(b + kOffUuids + dev * kUuidLen);
  const std::size_t len = strnlen(u, kUuidLen);
  if (len == kUuidLen) return Bad("device " + std::to_string(dev) + " uuid is not terminated");
  std::string s(u, len);
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) {
      return Bad("device " + std::to_string(dev) + " uuid has a non-printable byte");
    }
  }
  return s;
}

}  // namespace

bool LooksLikeRegion(const void* data, std::size_t size) {
  return size >= sizeof(int32_t) &&
         Load<int32_t>(static_cast<const unsigned char*>(data), 0) == kMagic;
}

StatusOr<AccountingSnapshot> ParseRegion(const void* data, std::size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (!LooksLikeRegion(data, size)) return Bad("initialized_flag is not 19920718");
  if (size == kV0RegionSize) {
    return Bad("the version-less v0 layout (1197896 bytes) is not supported; HAMi-core 1.x is");
  }
  if (size < kOffMinor + 4) return Bad("too short for the version (" + std::to_string(size) + ")");
  const uint32_t major = Load<uint32_t>(b, kOffMajor), minor = Load<uint32_t>(b, kOffMinor);
  if (major != kSupportedMajor) {
    return Bad("unsupported version " + std::to_string(major) + "." + std::to_string(minor) +
               " (supported: 1.x)");
  }
  if (size < kRegionSize) {
    return Bad(std::to_string(size) + " bytes, version " + std::to_string(major) + "." +
               std::to_string(minor) + " needs " + std::to_string(kRegionSize));
  }
  const uint64_t device_num = Load<uint64_t>(b, kOffDeviceNum);
  if (device_num > kMaxDevices) {
    return Bad("device_num " + std::to_string(device_num) + " > " + std::to_string(kMaxDevices));
  }
  const int32_t proc_num = Load<int32_t>(b, kOffProcNum);
  if (proc_num < 0 || std::size_t(proc_num) > kMaxProcs) {
    return Bad("proc_num " + std::to_string(proc_num) + " outside 0.." + std::to_string(kMaxProcs));
  }
  const int32_t priority = Load<int32_t>(b, kOffPriority);
  const int64_t last_s = Load<int64_t>(b, kOffLastKernel);
  // HAMi-core stores time(NULL); anything outside (0, year 2500) is not a timestamp.
  const uint64_t last_ns = last_s > 0 && last_s < 16'725'225'600LL
                               ? static_cast<uint64_t>(last_s) * 1'000'000'000ULL
                               : 0;
  AccountingSnapshot s;
  s.live_processes = static_cast<uint32_t>(proc_num);
  for (std::size_t i = 0; i < device_num; ++i) {
    if (b[kOffUuids + i * kUuidLen] == 0) continue;
    auto uuid = Uuid(b, i);
    if (!uuid.ok()) return uuid.status();
    const Column c = SumColumn(b, proc_num, i);
    AccountingDevice d;
    d.uuid = std::move(*uuid);
    d.limit_bytes = Load<uint64_t>(b, kOffLimit + i * 8);
    const uint64_t sm = Load<uint64_t>(b, kOffSmLimit + i * 8);
    d.sm_limit_percent = sm > 100 ? 100 : static_cast<uint32_t>(sm);
    d.used_bytes = c.total;
    d.processes = c.holders;
    d.priority = priority < 0 ? 0 : static_cast<uint32_t>(priority);
    d.last_kernel_ns = last_ns;
    d.has_memory_split = true;
    d.context_bytes = c.context;
    d.module_bytes = c.module;
    d.buffer_bytes = c.data;
    d.sm_util_percent = c.sm_util;
    s.devices.push_back(std::move(d));
  }
  return s;
}

}  // namespace hami::accounting::hamicore
