#include "accounting.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "glibc_compat.h"
#include "log.h"
#include "safe_open.h"

namespace hami::vgpu {
namespace {

static_assert(sizeof(pthread_mutex_t) <= sizeof(hami_shm_header::mutex_storage),
              "mutex must fit its storage");

uint64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

pthread_mutex_t* MutexOf(hami_shm_header* h) {
  return reinterpret_cast<pthread_mutex_t*>(h->mutex_storage);
}

uint64_t Load(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

bool InitHeader(hami_shm_header* h) {
  memset(h, 0, sizeof(*h));
  pthread_mutexattr_t attr;
  if (pthread_mutexattr_init(&attr) != 0) return false;
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(MutexOf(h), &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) return false;
  h->version = HAMI_SHM_VERSION;
  h->header_size = HAMI_SHM_HEADER_SIZE;
  h->slot_size = HAMI_SHM_SLOT_SIZE;
  h->slot_count = HAMI_SHM_DEFAULT_SLOTS;
  h->created_realtime_ns = NowNs(CLOCK_REALTIME);
  __atomic_store_n(&h->magic, HAMI_SHM_MAGIC, __ATOMIC_RELEASE);  // last: marks it complete
  return true;
}

}  // namespace

hami_shm_slot* Accounting::Slot(uint32_t i) const {
  return reinterpret_cast<hami_shm_slot*>(reinterpret_cast<char*>(hdr_) + hdr_->header_size +
                                          static_cast<size_t>(i) * hdr_->slot_size);
}

bool Accounting::TryLockSlotByte(uint32_t i) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start =
      static_cast<off_t>(HAMI_SHM_HEADER_SIZE + static_cast<size_t>(i) * HAMI_SHM_SLOT_SIZE);
  fl.l_len = 1;
  return fcntl(fd_, F_OFD_SETLK, &fl) == 0;
}

void Accounting::UnlockSlotByte(uint32_t i) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start =
      static_cast<off_t>(HAMI_SHM_HEADER_SIZE + static_cast<size_t>(i) * HAMI_SHM_SLOT_SIZE);
  fl.l_len = 1;
  fcntl(fd_, F_OFD_SETLK, &fl);
}

namespace {

// flock with a deadline: true when taken. Only processes of this user can open the file, but
// one that never lets go must not stall the others forever.
bool FlockWithin(int fd, uint32_t timeout_ms) {
  uint64_t deadline = NowNs(CLOCK_MONOTONIC) + static_cast<uint64_t>(timeout_ms) * 1000000ull;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (NowNs(CLOCK_MONOTONIC) >= deadline) return false;
    timespec ts{0, 1000000};  // 1 ms
    nanosleep(&ts, nullptr);
  }
}

// Why an existing file cannot be a valid accounting file of `size` bytes, or nullptr.
const char* HeaderProblem(const hami_shm_header* h, size_t size) {
  if (h->magic != HAMI_SHM_MAGIC)
    return "bad magic (not a HAMi accounting file, or written by an incompatible version)";
  if (h->version != HAMI_SHM_VERSION) return "unsupported version";
  if (h->header_size != HAMI_SHM_HEADER_SIZE || h->slot_size != HAMI_SHM_SLOT_SIZE ||
      h->slot_count == 0 || ShmFileSize(h->slot_count) != size)
    return "inconsistent sizes";
  if (h->device_count > HAMI_SHM_MAX_DEVICES || h->slot_high_water > h->slot_count)
    return "counters out of range";
  return nullptr;
}

}  // namespace

void Accounting::CloseFile() {
  if (hdr_) munmap(hdr_, map_size_);
  hdr_ = nullptr;
  slot_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool Accounting::MapFile(const char* path, char* err, size_t errlen) {
  // flock serialises creation only; the kernel drops it if we die here.
  if (!FlockWithin(fd_, lock_timeout_ms_)) {
    snprintf(err, errlen,
             "accounting file %s: another process has held its creation lock for more than %u "
             "ms; refused",
             path, lock_timeout_ms_);
    return false;
  }
  struct stat st;
  const char* bad = nullptr;
  const size_t expected = ShmFileSize(HAMI_SHM_DEFAULT_SLOTS);
  bool fresh = false;
  size_t size = 0;
  if (StatFd(fd_, &st) != 0) {
    bad = "stat failed";
  } else {
    fresh = st.st_size == 0;
    size = fresh ? expected : static_cast<size_t>(st.st_size);
    if (fresh && ftruncate(fd_, static_cast<off_t>(expected)) != 0) bad = "cannot size it";
  }
  if (!bad && size < sizeof(hami_shm_header)) bad = "smaller than its header";
  void* p = MAP_FAILED;
  if (!bad) p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (!bad && p == MAP_FAILED) bad = "mmap failed";
  if (!bad) {
    hdr_ = static_cast<hami_shm_header*>(p);
    map_size_ = size;
    if (fresh && !InitHeader(hdr_)) bad = "cannot initialise its mutex";
    if (!fresh) bad = HeaderProblem(hdr_, size);
  }
  flock(fd_, LOCK_UN);
  if (!bad) return true;
  snprintf(
      err, errlen,
      "accounting file %s is corrupt or unusable: %s (remove it when no process of the container "
      "runs)",
      path, bad);
  return false;
}

bool Accounting::TakeSlot(const char* path, char* err, size_t errlen) {
  // Take the first slot whose OFD lock is free. A free lock on a live-marked slot means its
  // owner died: reclaim before reuse.
  for (uint32_t i = 0; i < hdr_->slot_count; ++i) {
    if (!TryLockSlotByte(i)) continue;
    if (!Lock()) {
      UnlockSlotByte(i);
      snprintf(err, errlen, "accounting file %s: its lock is unusable or held by a stuck process",
               path);
      return false;
    }
    hami_shm_slot* s = Slot(i);
    if (s->state != 0) {
      for (uint32_t d = 0; d < HAMI_SHM_MAX_DEVICES; ++d) {
        uint64_t u = s->used[d];
        uint64_t total = hdr_->devices[d].used_bytes;
        hdr_->devices[d].used_bytes = total > u ? total - u : 0;
      }
    }
    memset(s, 0, sizeof(*s));
    s->pid = static_cast<int32_t>(getpid());
    s->start_realtime_ns = NowNs(CLOCK_REALTIME);
    s->state = 1;
    if (hdr_->slot_high_water < i + 1) hdr_->slot_high_water = i + 1;
    hdr_->generation++;
    Unlock();
    slot_ = s;
    slot_index_ = static_cast<int>(i);
    return true;
  }
  snprintf(err, errlen, "accounting file %s: all %u process slots are held by live processes", path,
           hdr_->slot_count);
  return false;
}

bool Accounting::Open(const char* path, char* err, size_t errlen) {
  // Created private to this user; an existing file must be a regular file of this user (or
  // root) that no one else can write, reached without following a link: another user's file
  // or a link to one is refused (docs/accounting.md, "Who may share a file").
  SafeOpenOptions opt{true, true, true};
  fd_ = SafeOpen(path, opt, "accounting file", err, errlen);
  if (fd_ < 0) return false;
  if (!MapFile(path, err, errlen) || !TakeSlot(path, err, errlen)) {
    CloseFile();
    return false;
  }
  return true;
}

bool Accounting::Lock() {
  // Uncontended (the usual case): no clock read on the allocation path.
  int rc = pthread_mutex_trylock(MutexOf(hdr_));
  if (rc == EBUSY) {
    // A bounded wait: a holder that never lets go (stuck, or one that unmapped the file while
    // holding the lock, which a robust mutex cannot detect) makes callers fail closed.
    timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += static_cast<time_t>(lock_timeout_ms_ / 1000);
    deadline.tv_nsec += static_cast<long>(lock_timeout_ms_ % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000L;
    }
    while ((rc = pthread_mutex_timedlock(MutexOf(hdr_), &deadline)) == EINTR) {
    }
  }
  if (rc == EOWNERDEAD) {
    // The previous holder died inside the critical section: the slots are the truth.
    VGPU_LOG(kLogWarn, "accounting: previous lock holder died; rebuilding totals");
    RebuildTotalsLocked();
    pthread_mutex_consistent(MutexOf(hdr_));
    return true;
  }
  if (rc == ETIMEDOUT) {
    VGPU_LOG(kLogError,
             "accounting: lock held by another process for more than %u ms (stuck, or it "
             "unmapped the file while holding it); refusing the allocation",
             lock_timeout_ms_);
    return false;
  }
  if (rc != 0) {
    VGPU_LOG(kLogError, "accounting: mutex lock failed (%d); refusing allocations", rc);
    return false;
  }
  return true;
}

void Accounting::Unlock() { pthread_mutex_unlock(MutexOf(hdr_)); }

void Accounting::RebuildTotalsLocked() {
  uint64_t sums[HAMI_SHM_MAX_DEVICES] = {};
  uint32_t hw = hdr_->slot_high_water;
  if (hw > hdr_->slot_count) hw = hdr_->slot_count;
  for (uint32_t i = 0; i < hw; ++i) {
    hami_shm_slot* s = Slot(i);
    if (s->state == 0) continue;
    for (int d = 0; d < HAMI_SHM_MAX_DEVICES; ++d) sums[d] += s->used[d];
  }
  for (int d = 0; d < HAMI_SHM_MAX_DEVICES; ++d) Store(&hdr_->devices[d].used_bytes, sums[d]);
  hdr_->generation++;
}

int Accounting::FindDevice(const char* uuid) const {
  if (!hdr_) return -1;
  uint32_t n = __atomic_load_n(&hdr_->device_count, __ATOMIC_ACQUIRE);
  for (uint32_t d = 0; d < n && d < HAMI_SHM_MAX_DEVICES; ++d) {
    if (strncmp(hdr_->devices[d].uuid, uuid, HAMI_SHM_UUID_LEN) == 0) return static_cast<int>(d);
  }
  return -1;
}

int Accounting::DeviceEntry(const char* uuid, uint64_t total_bytes) {
  int found = FindDevice(uuid);
  if (found >= 0 || !hdr_) return found;
  if (!Lock()) return -1;
  found = FindDevice(uuid);
  if (found < 0 && hdr_->device_count < HAMI_SHM_MAX_DEVICES) {
    hami_shm_device* d = &hdr_->devices[hdr_->device_count];
    snprintf(d->uuid, sizeof(d->uuid), "%s", uuid);
    d->total_bytes = total_bytes;
    found = static_cast<int>(hdr_->device_count);
    __atomic_store_n(&hdr_->device_count, hdr_->device_count + 1, __ATOMIC_RELEASE);
  }
  Unlock();
  return found;
}

void Accounting::SetDeviceInfo(int dev, uint64_t limit, uint32_t sm_limit, uint32_t priority) {
  if (!hdr_ || dev < 0) return;
  hami_shm_device* d = &hdr_->devices[dev];
  Store(&d->mem_limit_bytes, limit);
  __atomic_store_n(&d->sm_limit_percent, sm_limit, __ATOMIC_RELEASE);
  __atomic_store_n(&d->priority, priority, __ATOMIC_RELEASE);
}

bool Accounting::Reserve(int dev, uint64_t bytes, uint64_t limit) {
  if (!hdr_ || dev < 0 || dev >= HAMI_SHM_MAX_DEVICES) return false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!Lock()) return false;
    hami_shm_device* d = &hdr_->devices[dev];
    uint64_t used = d->used_bytes;
    bool fits = limit == 0 || (bytes <= limit && used <= limit - bytes);
    if (fits) {
      Store(&slot_->used[dev], slot_->used[dev] + bytes);
      Store(&d->used_bytes, used + bytes);
      hdr_->generation++;
      Unlock();
      return true;
    }
    Unlock();
    // Over the limit: memory of dead processes may still be counted.
    if (attempt == 0 && SweepDead() == 0) return false;
  }
  return false;
}

void Accounting::Release(int dev, uint64_t bytes) {
  if (!hdr_ || dev < 0 || dev >= HAMI_SHM_MAX_DEVICES || bytes == 0) return;
  if (!Lock()) return;
  hami_shm_device* d = &hdr_->devices[dev];
  uint64_t mine = slot_->used[dev];
  uint64_t take = bytes < mine ? bytes : mine;
  Store(&slot_->used[dev], mine - take);
  Store(&d->used_bytes, d->used_bytes > take ? d->used_bytes - take : 0);
  hdr_->generation++;
  Unlock();
}

uint64_t Accounting::Used(int dev) const {
  if (!hdr_ || dev < 0 || dev >= HAMI_SHM_MAX_DEVICES) return 0;
  return Load(&hdr_->devices[dev].used_bytes);
}

uint64_t Accounting::MyUsed(int dev) const {
  if (!slot_ || dev < 0 || dev >= HAMI_SHM_MAX_DEVICES) return 0;
  return Load(&slot_->used[dev]);
}

int Accounting::SweepDead() {
  if (!hdr_) return 0;
  __atomic_store_n(&last_sweep_ns_, NowNs(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
  int reclaimed = 0;
  uint32_t hw = __atomic_load_n(&hdr_->slot_high_water, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < hw && i < hdr_->slot_count; ++i) {
    if (static_cast<int>(i) == slot_index_) continue;  // our own OFD lock would "succeed"
    hami_shm_slot* s = Slot(i);
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == 0) continue;
    if (!TryLockSlotByte(i)) continue;  // owner alive
    if (Lock()) {
      if (s->state != 0) {
        for (int d = 0; d < HAMI_SHM_MAX_DEVICES; ++d) {
          uint64_t u = s->used[d];
          uint64_t total = hdr_->devices[d].used_bytes;
          Store(&hdr_->devices[d].used_bytes, total > u ? total - u : 0);
        }
        VGPU_LOG(kLogInfo, "accounting: reclaimed slot %u of dead pid %d", i, s->pid);
        memset(s, 0, sizeof(*s));
        hdr_->generation++;
        ++reclaimed;
      }
      Unlock();
    }
    UnlockSlotByte(i);
  }
  return reclaimed;
}

void Accounting::LockCreation() {
  if (fd_ < 0) return;
  // Context creations take up to seconds each; past a long bound, measure without the lock
  // (a device-wide measurement then may include another creation: it over-counts).
  creation_locked_ = FlockWithin(fd_, kCreationLockTimeoutMs);
  if (!creation_locked_)
    VGPU_LOG(kLogWarn, "accounting: context-creation lock not free after %u ms; going on",
             kCreationLockTimeoutMs);
}

void Accounting::UnlockCreation() {
  if (fd_ >= 0 && creation_locked_) flock(fd_, LOCK_UN);
  creation_locked_ = false;
}

void Accounting::SweepDeadEvery(uint64_t interval_ns) {
  if (NowNs(CLOCK_MONOTONIC) - __atomic_load_n(&last_sweep_ns_, __ATOMIC_RELAXED) >= interval_ns)
    SweepDead();
}

void Accounting::DetachAfterFork() {
  // The child shares the parent's open file description, and with it the slot lock; closing
  // our descriptor leaves the parent as the only holder.
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  hdr_ = nullptr;
  slot_ = nullptr;
  slot_index_ = -1;
}

}  // namespace hami::vgpu
