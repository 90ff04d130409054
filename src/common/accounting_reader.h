// Reads a container's accounting file (layout: src/hook/include/hami/vgpu_shm.h, written by
// libvgpu.so) for the node monitor and for `hami serve`. The file is written by processes inside
// the container, so nothing in it is trusted: every size and count is checked and a bad file is
// an error value, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hami::accounting {

struct AccountingDevice {
  std::string uuid;
  uint64_t total_bytes = 0;
  uint64_t limit_bytes = 0;
  uint64_t used_bytes = 0;
  uint32_t sm_limit_percent = 0;
  uint32_t priority = 0;
  uint64_t last_kernel_ns = 0;  // CLOCK_REALTIME ns, 0 = never
  uint64_t busy_ns_total = 0;
  uint32_t processes = 0;  // live slots that hold memory on this device
  // HAMi-core's region (hamicore_region.h) splits each process's memory by kind; our own file
  // keeps one total per process, so these stay 0 and has_memory_split false for it.
  bool has_memory_split = false;
  uint64_t context_bytes = 0;
  uint64_t module_bytes = 0;
  uint64_t buffer_bytes = 0;  // HAMi-core's data_size
  // HAMi-core: sum of the live processes' device_util[].sm_util (percent, as HAMi's monitor
  // exports it); meaningful only with has_memory_split (our file has busy_ns_total instead).
  uint64_t sm_util_percent = 0;
};

struct AccountingSnapshot {
  std::vector<AccountingDevice> devices;
  uint32_t live_processes = 0;  // slots in state "live" (liveness is the writer's business)
  uint64_t generation = 0;

  // The device with this UUID, or nullptr.
  const AccountingDevice* Find(std::string_view uuid) const;
};

// Parses the bytes of an accounting file. Errors: kInvalidArgument naming the check that
// failed (magic, version, header/slot sizes, device count, file too short, UUID not terminated
// or not printable).
StatusOr<AccountingSnapshot> ParseAccounting(const void* data, std::size_t size);
// Our layout first (magic "HMAIVGPU"), else HAMi-core's shared region (its initialized_flag;
// hamicore_region.h), else ParseAccounting's "bad magic". Errors: as the parser chosen;
// kNotFound for a HAMi-core-sized file whose initialized_flag is still 0 (being set up).
StatusOr<AccountingSnapshot> ParseAnyAccounting(const void* data, std::size_t size);
// Reads the file through common::ReadFileBounded (no mmap: a truncating writer cannot SIGBUS us;
// no links followed, a FIFO never blocks). Errors: kNotFound when it does not exist (no CUDA
// process started yet), kFailedPrecondition when it is a link, FIFO, directory or other
// non-regular file, kPermissionDenied when it cannot be opened, then as ParseAnyAccounting with
// the path in front (an empty file that no process initialised yet is "too short").
StatusOr<AccountingSnapshot> ReadAccountingFile(const std::string& path);

}  // namespace hami::accounting
