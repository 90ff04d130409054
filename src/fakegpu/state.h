// The shared state file (FAKEGPU_STATE) that makes every process using it see the same fake
// GPUs: per-process memory charges, the device-wide kernel timeline, health and XID events.
// It survives kill -9 of any user: updates are single atomic stores made under a robust
// process-shared mutex (a dead owner's lock is recovered), or lock-free CAS for the timeline.
// A process owns its slot through an OFD lock, which the kernel drops when it dies.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "fakegpu/config.h"

namespace hami::fakegpu {

struct StateFile;  // the mmapped layout, private to state.cc

struct ProcessUsage {
  pid_t pid;
  uint64_t used;
};

// Device time a process's work ran in a stretch of the timeline (per-process utilization).
struct ProcessBusy {
  int32_t pid;  // as NVML reports it (the host's PID namespace)
  uint64_t busy_ns;
};

struct Health {
  bool healthy;
  uint32_t xid;      // last XID delivered (0 when never unhealthy)
  uint64_t xid_seq;  // bumped on every health transition (recovery delivers xid 0)
};

uint64_t MonotonicNs();

class SharedState {
 public:
  // FAKEGPU_STATE, or /tmp/fakegpu-<uid>.state.
  static std::string DefaultPath();
  // Maps the file, creating and initialising it when missing or empty. Errors: the file
  // cannot be created/mapped, or holds something that is not a compatible state file.
  static StatusOr<std::unique_ptr<SharedState>> Open(const std::string& path);
  ~SharedState();
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  const std::string& path() const { return path_; }

  // Memory. Charge adds `bytes` to this process's use of device `dev` when all live
  // processes together stay within `capacity`; false (and nothing charged) otherwise.
  // Every call first releases the memory of processes that have died.
  bool Charge(int dev, uint64_t bytes, uint64_t capacity);
  void Uncharge(int dev, uint64_t bytes);
  uint64_t DeviceUsed(int dev);
  uint64_t OwnUsed(int dev);
  // Live processes with use > 0; with `pidns` nonzero only those of that PID namespace.
  std::vector<ProcessUsage> Processes(int dev, uint32_t pidns = 0);
  // This process's PID namespace (the low 32 bits of its inode; 0 when unknown).
  static uint32_t OwnPidNamespace();

  // Kernel timeline (CLOCK_MONOTONIC ns). The device runs one kernel at a time for all
  // processes: Schedule reserves [max(now, busy_until, not_before), +duration) and returns
  // its end (not_before: when the stream's previous work ends).
  // `owner` (0 = none) identifies the context: when it differs from the previous kernel's
  // owner the device first spends switch_ns switching (FAKEGPU_CONTEXT_SWITCH_US), counted
  // by ContextSwitches. With `overlap_own` (FAKEGPU_STREAM_OVERLAP) work of the owner whose
  // kernels the device runs now starts at max(now, not_before) and runs alongside them, as
  // kernels of one context on several streams do on a GPU; other owners still wait.
  // The busy run is recorded as work of process `pid` (NVML's PID; 0: the calling process).
  uint64_t Schedule(int dev, uint64_t duration_ns, uint64_t not_before = 0, uint64_t owner = 0,
                    uint64_t switch_ns = 0, bool overlap_own = false, int32_t pid = 0);
  // When new work of `owner` can start on an idle stream: busy_until, or 0 when overlap_own
  // and the device runs that owner's work (see Schedule).
  uint64_t StartBound(int dev, uint64_t owner, bool overlap_own);
  uint64_t ContextSwitches(int dev);
  uint64_t BusyUntil(int dev);    // end of all work scheduled so far
  uint64_t BusyNsTotal(int dev);  // all work ever scheduled, including not yet run
  // Percent of [now - window, now] the device was busy (over the last 1024 busy runs).
  unsigned Utilization(int dev, uint64_t now_ns, uint64_t window_ns);
  // How long the device ran each process's work in [from_ns, to_ns) (over the last 1024 busy
  // runs; a process's overlapping runs, FAKEGPU_STREAM_OVERLAP, at most to_ns - from_ns): one
  // entry per process that ran any, in no particular order.
  std::vector<ProcessBusy> BusyByProcess(int dev, uint64_t from_ns, uint64_t to_ns);

  void SetHealth(int dev, bool healthy, uint32_t xid);
  Health GetHealth(int dev);

  // Forget every process and all timeline and health data (fakegpu-ctl reset).
  void Reset();

 private:
  SharedState(std::string path, StateFile* file, int fd)
      : path_(std::move(path)), f_(file), fd_(fd) {}
  static Status MapLocked(const std::string& path, int fd, StateFile** out);
  void Lock();
  void Unlock();
  void ReapDeadLocked();
  bool EnsureSlotLocked();
  bool OwnSlotValidLocked();
  uint32_t HwmLocked();
  int32_t CallerPid();

  std::string path_;
  StateFile* f_;
  int fd_;                // the mapped file; never holds locks (used to query them)
  int lock_fd_ = -1;      // our own open file description, holding the lock on our slot
  pid_t lock_pid_ = 0;    // process that opened lock_fd_ (a forked child must reopen)
  int32_t host_pid_ = 0;  // this process as NVML reports it (HostPid in state.cc)
  // The same for the timeline (lock-free): (getpid() << 32) | host PID, learned at the first
  // kernel of each process (a forked child learns its own).
  std::atomic<uint64_t> run_pid_{0};
  int own_ = -1;
  uint64_t own_claim_ = 0;
};

}  // namespace hami::fakegpu
