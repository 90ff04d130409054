// Process identity that survives PID reuse: a pid plus its start time since boot, read from
// /proc. The daemon uses it to tell whether the owner of a slice is still the same process.
#pragma once

#include <cstdint>
#include <optional>

namespace hami::hostd {

struct ProcessRef {
  int pid = 0;
  uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
  bool operator==(const ProcessRef&) const = default;
};

// Start time of `pid`; nullopt when there is no such process (or it is a zombie, which has
// already ended for our purposes).
std::optional<uint64_t> ProcessStartTicks(int pid);

// Real uid of `pid` (the Uid: line of /proc/<pid>/status); nullopt when there is no such
// process.
std::optional<uint32_t> ProcessUid(int pid);

// The calling process.
ProcessRef Self();

// True while the same process (pid and start time) exists and has not exited. A ref with
// start_ticks == 0 matches any process with that pid.
bool IsAlive(const ProcessRef& p);

}  // namespace hami::hostd
