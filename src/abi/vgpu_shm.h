// Layout of the per-container accounting file (CUDA_DEVICE_MEMORY_SHARED_CACHE) that every
// process of a container maps. libvgpu.so writes it; the node monitor and `hami top` read it.
// docs/accounting.md explains the protocol (robust mutex, per-slot OFD locks for liveness).
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAMI_SHM_MAGIC 0x5550475649414D48ULL  // "HMAIVGPU" little-endian
#define HAMI_SHM_VERSION 1u
#define HAMI_SHM_MAX_DEVICES 16
#define HAMI_SHM_UUID_LEN 96
#define HAMI_SHM_DEFAULT_SLOTS 4096
#define HAMI_SHM_HEADER_SIZE 8192
#define HAMI_SHM_SLOT_SIZE 256

// One physical GPU used by the container, keyed by UUID (processes of one container may
// see the GPUs under different ordinals, so ordinals are never stored).
typedef struct hami_shm_device {
  char uuid[HAMI_SHM_UUID_LEN];  // "GPU-..."; empty entry when uuid[0] == 0
  uint64_t total_bytes;          // physical memory of the card
  uint64_t mem_limit_bytes;      // limit in force (last writer wins; 0 = none)
  uint64_t used_bytes;           // sum of live slots' used[]; guarded by the mutex
  uint32_t sm_limit_percent;     // 0 = none
  uint32_t priority;             // CUDA_TASK_PRIORITY of the last process to start
  uint64_t last_kernel_ns;       // CLOCK_REALTIME of the last kernel launch (any process)
  uint64_t busy_ns_total;        // GPU time charged by the compute limiter, monotonic
  uint64_t limiter_state[14];    // owned by the compute limiter (src/hook/compute_*)
} hami_shm_device;

// One process. A slot is owned by whoever holds the write OFD lock on its first byte;
// the kernel drops that lock when the process dies, which is how death is detected.
typedef struct hami_shm_slot {
  uint32_t state;  // 0 free, 1 live
  int32_t pid;     // pid in the writer's namespace (display only, never used for liveness)
  uint64_t start_realtime_ns;
  uint64_t used[HAMI_SHM_MAX_DEVICES];  // bytes counted for this process, per device entry
  uint64_t reserved[14];
} hami_shm_slot;

typedef struct hami_shm_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;  // offset of slot 0
  uint32_t slot_size;
  uint32_t slot_count;
  uint32_t device_count;     // device entries in use
  uint32_t slot_high_water;  // 1 + highest slot index ever taken
  uint64_t generation;       // bumped on every change of used_bytes (cheap change detection)
  uint64_t created_realtime_ns;
  // pthread_mutex_t (robust, process-shared) lives here; opaque to readers.
  unsigned char mutex_storage[64];
  hami_shm_device devices[HAMI_SHM_MAX_DEVICES];
} hami_shm_header;

#ifdef __cplusplus
static_assert(sizeof(hami_shm_slot) == HAMI_SHM_SLOT_SIZE, "slot layout is ABI");
static_assert(sizeof(hami_shm_header) <= HAMI_SHM_HEADER_SIZE, "header must fit");
}
#endif
