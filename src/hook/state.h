// Process-wide state of libvgpu.so: configuration, the accounting file and the map from
// visible CUDA ordinals to physical GPUs (by UUID). Initialised lazily on the first CUDA or
// NVML call, never from a constructor.
#pragma once

#include <stdint.h>

#include "abi/cuda_abi.h"
#include "accounting.h"
#include "config.h"
#include "device_map.h"

namespace hami::vgpu {

struct DeviceState {
  CUdevice handle;
  char uuid[96];
  uint64_t total;  // physical bytes
  uint64_t limit;  // bytes; 0 = unlimited
  uint32_t sm_limit;
  int entry;  // device entry in the accounting file, -1 when accounting is off
};

struct State {
  Config cfg;
  Accounting acct;
  bool accounting = false;  // the accounting file is open
  bool config_ok = false;
  bool forked_child = false;
  char error[1400] = {};  // why CUDA initialisation is refused
  int ndev = 0;
  bool cuda_ready = false;
  DeviceState dev[kMaxDevices];
};

extern State g_state;

// Reads configuration and opens the accounting file once. False (with g_state.error set and
// logged) means: fail closed, refuse CUDA.
bool EnsureConfig();
// Maps visible devices once the real cuInit has succeeded. False on failure.
bool EnsureCudaDevices();
// Visible ordinal of a CUdevice handle, or -1.
int OrdinalOf(CUdevice d);
// Visible ordinal of the calling thread's current context, or -1.
int CurrentOrdinal();
// This process's PID as NVML reports it: getpid() in the host's PID namespace; in a PID
// namespace of its own, learned at a context creation (memory_context.cc); 0 while unknown
// (memory_driver.cc).
uint32_t DriverPid();
// Whether this process lives in the initial PID namespace, where NVML's process list uses the
// same PIDs as getpid() and lists every process on the card (memory_driver.cc).
bool InInitialPidNamespace();
// Memory limit for the physical GPU with this UUID (used by the NVML path, which may run
// without CUDA); 0 = unlimited. *visible is set false when the UUID is not visible.
uint64_t LimitForUuid(const char* uuid, bool* visible);

}  // namespace hami::vgpu
