// Tunables of the compute limiter (docs/compute-limiter.md, "Configuration"): the HAMI_COMPUTE_*
// variables and HAMI_CONTENTION_DIR, parsed once with the rest of libvgpu.so's configuration.
// A bad value is an error that names the variable (CUDA initialisation is then refused).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hami::vgpu {

struct ComputeConfig {
  bool turns;                 // HAMI_COMPUTE_TURNS: limited containers sharing a GPU take turns
  uint64_t max_turn_ns;       // HAMI_COMPUTE_MAX_TURN_US, 1000..30000
  uint64_t turn_overlap_ns;   // HAMI_COMPUTE_TURN_OVERLAP_US, 0..1000
  bool power;                 // HAMI_COMPUTE_POWER: power probes and the full-duty charge
  uint64_t probe_ns;          // HAMI_COMPUTE_PROBE_MS, 30..1000
  uint64_t probe_every_ns;    // HAMI_COMPUTE_PROBE_EVERY_S, 1..3600
  bool stats;                 // HAMI_COMPUTE_STATS: counters to stderr at exit
  bool pace;                  // HAMI_COMPUTE_PACE: alone on the card, duty-cycle (section 1b)
  uint64_t pace_on_ns;        // HAMI_COMPUTE_PACE_MS, 1..100: a running stretch's length at 50 %
  uint64_t pace_off_ns;       // HAMI_COMPUTE_PACE_OFF_MS, 0..50: shortest pause after one
  bool pace_restart;          // HAMI_COMPUTE_PACE_RESTART: credit a stretch its restart loss
  uint64_t pace_tail;         // HAMI_COMPUTE_PACE_TAIL, 0..2: how a stretch's queued tail counts
  char board_dir[1024];       // HAMI_COMPUTE_BOARD_DIR ("" = abi::kDefaultBoardDir)
  char contention_dir[1024];  // HAMI_CONTENTION_DIR ("" = next to libvgpu.so)
};

// Fills *out from `getenv` (defaults for unset or empty variables). On a bad value returns
// false with a message naming the variable and what it accepts.
bool LoadComputeConfig(const char* (*getenv)(const char* name), ComputeConfig* out, char* err,
                       size_t errlen);

}  // namespace hami::vgpu
