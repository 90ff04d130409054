// Configuration of libvgpu.so: HAMi-core's environment variables plus the authoritative
// limits file (docs/limits-file.md). Parsed once into fixed-size structs; a bad value is an
// error that names the variable, never a silent default.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/node_layout.h"
#include "compute_config.h"

namespace hami::vgpu {

inline constexpr int kMaxDevices = 16;
inline constexpr uint64_t kNoLimit = 0;

enum class CorePolicy : int { kDefault = 0, kForce = 1, kDisable = 2 };

struct Config {
  // Effective limits per visible CUDA ordinal; 0 = unlimited.
  uint64_t mem_limit[kMaxDevices];
  uint32_t sm_limit[kMaxDevices];
  // UUID bound to a visible ordinal by the limits file ("" when not given).
  char uuid[kMaxDevices][96];
  bool have_uuids;  // the limits file named UUIDs: devices outside that list get no memory
  CorePolicy policy;
  int priority;       // CUDA_TASK_PRIORITY; lower is more important; default 1
  bool priority_set;  // given by the limits file or the environment
  int log_level;
  bool oversubscribe;  // CUDA_OVERSUBSCRIBE (accepted, not implemented: limits stay hard)
  bool from_file;      // a limits file was read
  // Highest device index the limits file sets a per-device key for (-1: none). Without UUIDs
  // it must name a visible device (checked once CUDA enumerates them).
  int file_max_index;
  char shm_path[1024];
  char limits_file[1024];
  ComputeConfig compute;  // the compute limiter's tunables (compute_config.h)
  // The environment's SM limits (0: none), kept for ReloadSmLimits: it may only tighten.
  uint32_t env_sm_limit[kMaxDevices];
  // CUDA_VISIBLE_DEVICES, read once (the NVML path maps devices without CUDA).
  bool visible_devices_set;
  char visible_devices[2048];

  bool AnyMemoryLimit() const;
  bool AnySmLimit() const;
};

// Where configuration comes from; tests substitute both.
struct ConfigSource {
  const char* (*getenv)(const char* name);
  // Path of the authoritative file that wins over HAMI_LIMITS_FILE when it exists.
  const char* fixed_limits_path;
  // The whole environment (may be null), to find keys with an index no device can have.
  char** (*environment)();
};

inline constexpr const char* kFixedLimitsPath = abi::kLimitsMountPath;
inline constexpr const char* kDefaultShmPath = abi::kDefaultShmPath;

// Fills *out. On error returns false and writes a message naming the variable (or file and
// line) into err. The limits file fails closed: it must be a regular file (no link, no
// FIFO) owned by root or by this user and not group/world-writable, with no NUL byte, no
// duplicate or unknown key, no index past 15, and at least one key (docs/limits-file.md).
bool LoadConfig(const ConfigSource& src, Config* out, char* err, size_t errlen);

// Parses limits-file text (at most 16383 bytes) as LoadConfig parses the file, with no
// environment: the same named errors. For the fuzzer and tests.
bool ParseLimitsText(const char* text, size_t len, Config* out, char* err, size_t errlen);

// The SM limits of the limits file chosen at start (start.limits_file), read again while
// the process runs: the node agent resizes a running slice's compute share by rewriting it.
// The same checks as at start (no link, owner root or this user, not group/world-writable,
// no unknown or duplicate key); combined with the environment as at start (which may only
// tighten). Memory limits, policy and priority apply at start only. False with a named error
// when the file cannot be read or parsed or names other device UUIDs than at start; the
// caller then keeps the limits it has (docs/limits-file.md, "Changing the compute share").
bool ReloadSmLimits(const Config& start, uint32_t (&sm_limit)[kMaxDevices], char* err,
                    size_t errlen);

// Integer in [lo, hi].
bool ParseInt(const char* s, long lo, long hi, long* out);

}  // namespace hami::vgpu
