// Cross-process memory accounting over the shared file of a container (vgpu_shm.h).
// Reservations are atomic across processes (one robust process-shared mutex: a holder that
// dies is detected by the next locker, which rebuilds the totals from the slots; one that
// never lets go makes the others fail closed after a bounded wait). Each
// process owns one slot, marked by a write OFD lock on the slot's first byte; the kernel
// drops that lock when the process dies, so liveness needs no PIDs (PID reuse and PID
// namespaces cannot confuse it) and a dead process's usage is reclaimed by the next sweep.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/vgpu_shm.h"

namespace hami::vgpu {

class Accounting {
 public:
  // Maps (creating and initialising when new) the file and takes a slot. False with a
  // message naming the file and the problem (unreadable, corrupt, full).
  // The file is reached without following a link and must be a regular file of this user or
  // root that group and others cannot write; a new one is created 0600.
  bool Open(const char* path, char* err, size_t errlen);
  // How long Lock() and Open() wait for a holder before failing closed (default 5 s).
  void SetLockTimeoutMs(uint32_t ms) { lock_timeout_ms_ = ms ? ms : 1; }
  bool is_open() const { return hdr_ != nullptr; }

  // Index of the device entry for `uuid`, creating it; -1 when the table is full.
  int DeviceEntry(const char* uuid, uint64_t total_bytes);
  // Index of an existing entry or -1.
  int FindDevice(const char* uuid) const;

  // Adds `bytes` to this process's usage of entry `dev` unless the container's total would
  // exceed `limit` (0 = unlimited). Dead processes are swept before giving up. False too when
  // the lock could not be taken within the lock timeout (fail closed).
  bool Reserve(int dev, uint64_t bytes, uint64_t limit);
  void Release(int dev, uint64_t bytes);
  // Container-wide usage of entry `dev` (all live processes).
  uint64_t Used(int dev) const;
  uint64_t MyUsed(int dev) const;
  void SetDeviceInfo(int dev, uint64_t limit, uint32_t sm_limit, uint32_t priority);

  // Serialises context creation among the container's processes (flock on the file; the
  // kernel drops it if the holder dies), so device-wide measurements do not overlap.
  void LockCreation();
  void UnlockCreation();

  // Reclaims the slots of dead processes; returns how many were reclaimed.
  int SweepDead();
  // SweepDead at most once per `interval_ns` (the info paths call it, so a dead process's
  // usage disappears from what everyone sees without waiting for an allocation to fail).
  void SweepDeadEvery(uint64_t interval_ns);
  // Called in a forked child: drops the file so the child never holds the parent's slot.
  void DetachAfterFork();

  hami_shm_header* header() const { return hdr_; }
  int slot_index() const { return slot_index_; }

 private:
  static constexpr uint32_t kCreationLockTimeoutMs = 30000;
  bool MapFile(const char* path, char* err, size_t errlen);
  bool TakeSlot(const char* path, char* err, size_t errlen);
  void CloseFile();
  bool Lock();
  void Unlock();
  void RebuildTotalsLocked();
  bool TryLockSlotByte(uint32_t i);
  void UnlockSlotByte(uint32_t i);
  hami_shm_slot* Slot(uint32_t i) const;

  hami_shm_header* hdr_ = nullptr;
  hami_shm_slot* slot_ = nullptr;
  size_t map_size_ = 0;
  int fd_ = -1;
  int slot_index_ = -1;
  uint64_t last_sweep_ns_ = 0;
  uint32_t lock_timeout_ms_ = 5000;
  bool creation_locked_ = false;
};

// Size of an accounting file with `slots` slots.
inline constexpr size_t ShmFileSize(uint32_t slots) {
  return HAMI_SHM_HEADER_SIZE + static_cast<size_t>(slots) * HAMI_SHM_SLOT_SIZE;
}

}  // namespace hami::vgpu
