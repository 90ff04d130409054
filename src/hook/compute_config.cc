#include "compute_config.h"

#include <stdio.h>
#include <string.h>

#include "config.h"  // ParseInt

namespace hami::vgpu {
namespace {

constexpr uint64_t kUs = 1000, kMs = 1000 * kUs;

// A switch: "0" or "1" (also false/true, off/on).
bool Flag(const char* name, const char* v, bool* out, char* err, size_t errlen) {
  if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "on")) {
    *out = true;
  } else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "off")) {
    *out = false;
  } else {
    snprintf(err, errlen, "%s=\"%s\" must be 0 or 1", name, v);
    return false;
  }
  return true;
}

// An integer in [lo, hi] times `unit` ns.
bool Range(const char* name, const char* v, long lo, long hi, uint64_t unit, uint64_t* out,
           char* err, size_t errlen) {
  long x = 0;
  if (!ParseInt(v, lo, hi, &x)) {
    snprintf(err, errlen, "%s=\"%s\" must be an integer %ld..%ld", name, v, lo, hi);
    return false;
  }
  *out = static_cast<uint64_t>(x) * unit;
  return true;
}

bool Dir(const char* name, const char* v, char* out, size_t n, char* err, size_t errlen) {
  if (v[0] != '/' || strlen(v) >= n - 64) {  // room for "/<uuid>.board"
    snprintf(err, errlen, "%s=\"%.200s\" must be an absolute path shorter than %zu bytes", name, v,
             n - 64);
    return false;
  }
  snprintf(out, n, "%s", v);
  return true;
}

}  // namespace

bool LoadComputeConfig(const char* (*getenv)(const char* name), ComputeConfig* out, char* err,
                       size_t errlen) {
  *out = ComputeConfig{};
  out->turns = out->power = out->pace = out->pace_restart = true;
  out->pace_on_ns = 40 * kMs;  // the stretch at 50 % (PaceStretchLen)
  out->pace_tail = 2;
  out->pace_off_ns = 10 * kMs;
  out->max_turn_ns = 20 * kMs;
  out->turn_overlap_ns = 200 * kUs;
  out->probe_ns = 200 * kMs;
  out->probe_every_ns = 60000 * kMs;
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv(name);
    return v && *v ? v : nullptr;
  };
  const char* v;
  if ((v = get("HAMI_COMPUTE_TURNS")) && !Flag("HAMI_COMPUTE_TURNS", v, &out->turns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_POWER")) && !Flag("HAMI_COMPUTE_POWER", v, &out->power, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_STATS")) && !Flag("HAMI_COMPUTE_STATS", v, &out->stats, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PACE")) && !Flag("HAMI_COMPUTE_PACE", v, &out->pace, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PACE_MS")) &&
      !Range("HAMI_COMPUTE_PACE_MS", v, 1, 100, kMs, &out->pace_on_ns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PACE_OFF_MS")) &&
      !Range("HAMI_COMPUTE_PACE_OFF_MS", v, 0, 50, kMs, &out->pace_off_ns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PACE_RESTART")) &&
      !Flag("HAMI_COMPUTE_PACE_RESTART", v, &out->pace_restart, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PACE_TAIL")) &&
      !Range("HAMI_COMPUTE_PACE_TAIL", v, 0, 2, 1, &out->pace_tail, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_MAX_TURN_US")) &&
      !Range("HAMI_COMPUTE_MAX_TURN_US", v, 1000, 30000, kUs, &out->max_turn_ns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_TURN_OVERLAP_US")) &&
      !Range("HAMI_COMPUTE_TURN_OVERLAP_US", v, 0, 1000, kUs, &out->turn_overlap_ns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PROBE_MS")) &&
      !Range("HAMI_COMPUTE_PROBE_MS", v, 30, 1000, kMs, &out->probe_ns, err, errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_PROBE_EVERY_S")) &&
      !Range("HAMI_COMPUTE_PROBE_EVERY_S", v, 1, 3600, 1000 * kMs, &out->probe_every_ns, err,
             errlen))
    return false;
  if ((v = get("HAMI_COMPUTE_BOARD_DIR")) &&
      !Dir("HAMI_COMPUTE_BOARD_DIR", v, out->board_dir, sizeof(out->board_dir), err, errlen))
    return false;
  if ((v = get("HAMI_CONTENTION_DIR")) &&
      !Dir("HAMI_CONTENTION_DIR", v, out->contention_dir, sizeof(out->contention_dir), err, errlen))
    return false;
  return true;
}

}  // namespace hami::vgpu
