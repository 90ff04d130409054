// What a job started by `hami run` is given: the authoritative limits file
// (docs/limits-file.md) and the environment (LD_PRELOAD of libvgpu.so, the HAMi-core
// variables of SPEC 1.1, CUDA_VISIBLE_DEVICES by UUID).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "hostd/types.h"

namespace hami::hostd {

// Where the job's helpers live; filled by the daemon from its flags.
struct JobContext {
  std::string libvgpu;         // path of libvgpu.so; empty: not known
  std::string driver_lib_dir;  // prepended to LD_LIBRARY_PATH (the fake driver); may be empty
  std::map<std::string, std::string> extra_env;  // e.g. FAKEGPU_CONFIG / FAKEGPU_STATE
};

// The limits file of a slice: CUDA_DEVICE_MEMORY_LIMIT_<i>, CUDA_DEVICE_SM_LIMIT_<i>,
// CUDA_DEVICE_UUID_<i> per device (i = position in CUDA_VISIBLE_DEVICES),
// CUDA_DEVICE_MEMORY_SHARED_CACHE and CUDA_TASK_PRIORITY when given.
std::string FormatLimitsFile(const Slice& slice);

// Reads back a limits file FormatLimitsFile wrote (to adopt an orphaned slice): its devices'
// UUID, memory and cores, in order. Errors: kInvalidArgument naming the line.
StatusOr<std::vector<SliceDevice>> ParseOwnLimitsFile(const std::string& text);

// Variables to set in the job's environment. Keys in `prepend` are colon lists (LD_PRELOAD,
// LD_LIBRARY_PATH) whose value goes in front of what the caller already has.
struct JobEnv {
  std::map<std::string, std::string> set;
  std::map<std::string, std::string> prepend;
};
JobEnv BuildJobEnv(const Slice& slice, const JobContext& ctx);

// Applies a JobEnv to an environment in `KEY=VALUE` form (as from environ).
std::vector<std::string> ApplyJobEnv(const std::vector<std::string>& base, const JobEnv& env);

}  // namespace hami::hostd
