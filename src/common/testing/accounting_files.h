// Test helpers: accounting files in the layout of vgpu_shm.h, for the tests of the reader
// (common/accounting_reader.h) and of its users.
#pragma once

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "abi/vgpu_shm.h"

namespace hami::testing {

struct TestDevice {
  std::string uuid;
  uint64_t limit = 0;
  uint64_t used = 0;
  uint64_t last_kernel_ns = 0;
  uint64_t busy_ns = 0;
  uint32_t priority = 0;
};

inline std::string AccountingBytes(const std::vector<TestDevice>& devs, uint32_t live_slots) {
  std::string buf(HAMI_SHM_HEADER_SIZE + HAMI_SHM_SLOT_SIZE * 4, '\0');
  hami_shm_header h;
  std::memset(&h, 0, sizeof(h));
  h.magic = HAMI_SHM_MAGIC;
  h.version = HAMI_SHM_VERSION;
  h.header_size = HAMI_SHM_HEADER_SIZE;
  h.slot_size = HAMI_SHM_SLOT_SIZE;
  h.slot_count = 4;
  h.device_count = static_cast<uint32_t>(devs.size());
  h.slot_high_water = live_slots;
  h.generation = 7;
  for (std::size_t i = 0; i < devs.size(); ++i) {
    std::snprintf(h.devices[i].uuid, HAMI_SHM_UUID_LEN, "%s", devs[i].uuid.c_str());
    h.devices[i].total_bytes = 16ull << 30;
    h.devices[i].mem_limit_bytes = devs[i].limit;
    h.devices[i].used_bytes = devs[i].used;
    h.devices[i].last_kernel_ns = devs[i].last_kernel_ns;
    h.devices[i].busy_ns_total = devs[i].busy_ns;
    h.devices[i].priority = devs[i].priority;
    h.devices[i].sm_limit_percent = 30;
  }
  std::memcpy(buf.data(), &h, sizeof(h));
  for (uint32_t s = 0; s < live_slots; ++s) {
    hami_shm_slot slot;
    std::memset(&slot, 0, sizeof(slot));
    slot.state = 1;
    slot.pid = 100 + static_cast<int32_t>(s);
    std::memcpy(buf.data() + HAMI_SHM_HEADER_SIZE + s * HAMI_SHM_SLOT_SIZE, &slot, sizeof(slot));
  }
  return buf;
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace hami::testing
