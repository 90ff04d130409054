// Reader of the accounting file (accounting_reader.h).
#include "common/accounting_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "abi/vgpu_shm.h"
#include "common/file_reader.h"
#include "common/hamicore_region.h"

namespace hami::accounting {

const AccountingDevice* AccountingSnapshot::Find(std::string_view uuid) const {
  for (const auto& d : devices) {
    if (d.uuid == uuid) return &d;
  }
  return nullptr;
}

StatusOr<AccountingSnapshot> ParseAccounting(const void* data, std::size_t size) {
  if (size < sizeof(hami_shm_header)) {
    return InvalidArgument("accounting file too short for the header (" + std::to_string(size) +
                           " bytes)");
  }
  hami_shm_header h;
  std::memcpy(&h, data, sizeof(h));
  if (h.magic != HAMI_SHM_MAGIC) return InvalidArgument("accounting file: bad magic");
  if (h.version != HAMI_SHM_VERSION) {
    return InvalidArgument("accounting file: unsupported version " + std::to_string(h.version));
  }
  if (h.header_size != HAMI_SHM_HEADER_SIZE || h.slot_size != HAMI_SHM_SLOT_SIZE) {
    return InvalidArgument("accounting file: header_size " + std::to_string(h.header_size) +
                           " / slot_size " + std::to_string(h.slot_size) + " not as expected");
  }
  if (h.device_count > HAMI_SHM_MAX_DEVICES) {
    return InvalidArgument("accounting file: device_count " + std::to_string(h.device_count) +
                           " > " + std::to_string(HAMI_SHM_MAX_DEVICES));
  }
  if (h.slot_high_water > h.slot_count) {
    return InvalidArgument("accounting file: slot_high_water beyond slot_count");
  }
  const uint64_t needed =
      uint64_t{h.header_size} + uint64_t{h.slot_size} * uint64_t{h.slot_high_water};
  if (needed > size) {
    return InvalidArgument("accounting file: " + std::to_string(size) + " bytes, slots need " +
                           std::to_string(needed));
  }
  AccountingSnapshot s;
  s.generation = h.generation;
  // One pass over the slots: live processes, and per device entry those that hold memory on it.
  uint32_t holders[HAMI_SHM_MAX_DEVICES] = {};
  const auto* base = static_cast<const unsigned char*>(data);
  for (uint32_t k = 0; k < h.slot_high_water; ++k) {
    hami_shm_slot slot;
    std::memcpy(&slot, base + h.header_size + uint64_t{k} * h.slot_size, sizeof(slot));
    if (slot.state != 1) continue;
    ++s.live_processes;
    for (uint32_t i = 0; i < HAMI_SHM_MAX_DEVICES; ++i) {
      if (slot.used[i] > 0) ++holders[i];
    }
  }
  for (uint32_t i = 0; i < h.device_count; ++i) {
    const hami_shm_device& d = h.devices[i];
    if (d.uuid[0] == 0) continue;
    AccountingDevice out;
    const std::size_t len = strnlen(d.uuid, HAMI_SHM_UUID_LEN);
    if (len == HAMI_SHM_UUID_LEN) {
      return InvalidArgument("accounting file: device " + std::to_string(i) +
                             " uuid is not terminated");
    }
    out.uuid.assign(d.uuid, len);
    for (char c : out.uuid) {
      if (c <= 0x20 || c >= 0x7f) {
        return InvalidArgument("accounting file: device " + std::to_string(i) +
                               " uuid has a non-printable byte");
      }
    }
    out.total_bytes = d.total_bytes;
    out.limit_bytes = d.mem_limit_bytes;
    out.used_bytes = d.used_bytes;
    out.sm_limit_percent = d.sm_limit_percent;
    out.priority = d.priority;
    out.last_kernel_ns = d.last_kernel_ns;
    out.busy_ns_total = d.busy_ns_total;
    out.processes = holders[i];
    s.devices.push_back(std::move(out));
  }
  return s;
}

StatusOr<AccountingSnapshot> ParseAnyAccounting(const void* data, std::size_t size) {
  uint64_t magic = 0;
  if (size >= sizeof(magic)) std::memcpy(&magic, data, sizeof(magic));
  if (magic != HAMI_SHM_MAGIC && hamicore::LooksLikeRegion(data, size)) {
    return hamicore::ParseRegion(data, size);
  }
  // HAMi-core sizes its region before it sets initialized_flag (under its lock): a file of
  // exactly that size whose flag is still 0 is "no process initialised it yet", as a missing
  // file is, not a corrupt one.
  if (size == hamicore::kRegionSize && magic == 0) {
    return NotFound("HAMi-core region not initialised yet");
  }
  return ParseAccounting(data, size);
}

StatusOr<AccountingSnapshot> ReadAccountingFile(const std::string& path) {
  // The file lives in a tenant-writable directory: no links, no FIFOs, a bounded read of a
  // header plus the slots a file can claim (a longer file's tail is never looked at). The bound
  // also covers HAMi-core's region (about 2 MB).
  common::ReadFileOptions o;
  o.allow_truncate = true;
  auto bytes = common::ReadFileBounded(
      path, HAMI_SHM_HEADER_SIZE + std::size_t{HAMI_SHM_SLOT_SIZE} * 65536, o);
  if (!bytes.ok()) return bytes.status();
  auto r = ParseAnyAccounting(bytes->data(), bytes->size());
  if (!r.ok()) return Status(r.status().code(), path + ": " + r.status().message());
  return r;
}

}  // namespace hami::accounting
