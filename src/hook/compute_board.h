// Per-GPU state shared by every container on a host, for what one container's accounting
// file cannot tell: whether another workload uses the GPU (GPU_CORE_UTILIZATION_POLICY=default)
// and until when work of a higher CUDA_TASK_PRIORITY is in flight (priority yielding).
// One 4 KiB mmapped file per GPU, <dir>/<uuid>.board, updated with atomics only: a process
// killed at any instruction leaves it consistent. Also reads the node monitor's contention
// file (<hookPath>/vgpu/contention/<uuid>). docs/compute-limiter.md describes both.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hami::vgpu {

inline constexpr uint64_t kBoardMagic = 0x4452414F42555047ULL;  // "GPUBOARD"
inline constexpr int kBoardPriorities = 8;                      // priorities 0..7 (clamped)
inline constexpr int kBoardContainers = 120;
inline constexpr uint64_t kBoardMaxSkewNs = 10000000;     // launches later than now + 10 ms
inline constexpr uint64_t kBoardMaxClaimNs = 1000000000;  // busy-until at most now + 1 s
inline constexpr uint64_t kTurnLeaseNs = 2000000;         // an owner idle this long loses the turn
inline constexpr uint64_t kTurnMaxDrainNs = 20000000;     // never wait longer for a drain

struct BoardLayout {
  uint64_t magic;
  uint32_t version;
  uint32_t reserved;
  // Per priority level: CLOCK_MONOTONIC until which launched work is estimated to run, and
  // of the last launch.
  uint64_t prio_busy_until[kBoardPriorities];
  uint64_t prio_last_launch[kBoardPriorities];
  struct {
    uint64_t id;           // container identity (device and inode of its accounting file)
    uint64_t last_active;  // CLOCK_MONOTONIC of its last launch
  } containers[kBoardContainers];
  // GPU turn among limited containers that share the GPU (see Board::TurnAcquire). All
  // CLOCK_MONOTONIC; zero in a fresh board = nobody holds the turn.
  uint64_t turn_owner;       // container holding the turn, 0 = free
  uint64_t turn_since;       // when its turn starts (after the previous owners' work drains)
  uint64_t turn_lease;       // the turn lapses at this instant unless the owner launches again
  uint64_t turn_busy_until;  // estimated end of the work the owners queued so far
  uint64_t turn_wanted_at;   // last time a container asked for the turn and had to wait
  uint64_t turn_wanted_by;
  uint64_t turn_last_owner;
  uint32_t turn_seq;  // bumped at every release; waiters sleep on it (futex, shared mapping)
  uint32_t turn_pad;
};
static_assert(sizeof(BoardLayout) <= 4096, "board must fit a page");

class Board {
 public:
  // Maps <dir>/<uuid>.board, creating dir (mode 1777) and file (0666) when missing. False
  // with a message when the directory or file cannot be used or holds something else.
  bool Open(const char* dir, const char* uuid, char* err, size_t errlen);
  // Uses caller-provided memory (tests).
  void Attach(BoardLayout* mem) { b_ = mem; }
  bool is_open() const { return b_ != nullptr; }

  void MarkActive(uint64_t id, uint64_t now);
  // Another container launched within `window` ns of now.
  bool OthersActive(uint64_t id, uint64_t now, uint64_t window) const;
  // Records a launch at priority `prio` whose work is estimated at est_ns.
  void PublishLaunch(int prio, uint64_t now, uint64_t est_ns);
  // Latest busy-until of the priorities more important than `prio` (smaller numbers) that
  // launched within `recent` ns; 0 when none did.
  uint64_t HigherBusyUntil(int prio, uint64_t now, uint64_t recent) const;

  // Turns. Two contexts whose work is queued on a time-sliced GPU at the same time make it
  // switch between them many times a second, and each switch costs the GPU about a tenth of
  // a millisecond (docs/compute-limiter.md). Limited containers that share a GPU therefore
  // take turns: one at a time holds the turn and launches; it gives the turn back when its
  // bucket is empty, or after max_turn_ns while another container waits.
  //
  // TurnAcquire returns 0 when `id` holds the turn and may launch now, else the ns to wait
  // before asking again. A container that just took the turn first waits (holding it) for
  // the previous owner's queued work to drain, less `overlap_ns` (queueing a little before
  // the end lets the GPU switch at once, without preempting anything).
  // When another container holds the turn, *held_by_other is set and *seq is the release
  // counter to pass to TurnWait.
  uint64_t TurnAcquire(uint64_t id, uint64_t now, uint64_t max_turn_ns, uint64_t overlap_ns,
                       bool* held_by_other = nullptr, uint32_t* seq = nullptr);
  // Sleeps until the turn is released (any container) or timeout_ns passes.
  void TurnWait(uint32_t seq, uint64_t timeout_ns) const;
  // The owner queued work estimated at est_ns: extends the drain estimate and the lease.
  void TurnLaunched(uint64_t id, uint64_t now, uint64_t est_ns);
  // Gives the turn back (no-op unless `id` holds it).
  void TurnRelease(uint64_t id);
  bool TurnHeldBy(uint64_t id) const;

 private:
  BoardLayout* b_ = nullptr;
};

// The node monitor's per-GPU contention file (key=value lines, '#' comments).
struct ContentionInfo {
  int active = -1;          // ACTIVE_CONTAINERS
  int active_high = -1;     // ACTIVE_HIGH_PRIORITY
  int min_priority = -1;    // MIN_ACTIVE_PRIORITY
  int64_t updated_ms = -1;  // UPDATED_UNIX_MS
};
// False when ACTIVE_CONTAINERS or UPDATED_UNIX_MS is missing or malformed.
bool ParseContention(const char* text, ContentionInfo* out);
// Reads and parses `path`; false when absent or unparsable.
bool ReadContention(const char* path, ContentionInfo* out);

}  // namespace hami::vgpu
