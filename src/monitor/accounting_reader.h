// Reads a container's accounting file (src/hook/include/hami/vgpu_shm.h) without trusting
// it: the file is written by processes inside the container, so every size and count is
// checked and a bad file is an error value, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::monitor {

struct AccountingDevice {
  std::string uuid;
  uint64_t total_bytes = 0;
  uint64_t limit_bytes = 0;
  uint64_t used_bytes = 0;
  uint32_t sm_limit_percent = 0;
  uint32_t priority = 0;
  uint64_t last_kernel_ns = 0;  // CLOCK_REALTIME ns, 0 = never
  uint64_t busy_ns_total = 0;
};

struct AccountingSnapshot {
  std::vector<AccountingDevice> devices;
  uint32_t live_processes = 0;  // slots in state "live" (liveness is the writer's business)
  uint64_t generation = 0;
};

// Parses the bytes of an accounting file. Errors: kInvalidArgument naming the check that
// failed (magic, version, header/slot sizes, device count, file too short).
StatusOr<AccountingSnapshot> ParseAccounting(const void* data, std::size_t size);
// Reads the file with pread (no mmap: a truncating writer cannot SIGBUS us).
// Errors: kNotFound when it cannot be opened, then as ParseAccounting.
StatusOr<AccountingSnapshot> ReadAccountingFile(const std::string& path);

}  // namespace hami::monitor
