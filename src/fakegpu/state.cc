#include "fakegpu/state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace hami::fakegpu {

namespace {
constexpr uint64_t kMagic = 0x31555047454B4146ull;  // "FAKEGPU1"
constexpr uint32_t kVersion = 1;
constexpr int kSlots = 4096;
constexpr int kRing = 1024;
}  // namespace

struct Interval {
  std::atomic<uint64_t> start, end;
};

struct DeviceShared {
  std::atomic<uint64_t> busy_until;
  std::atomic<uint64_t> busy_total;
  std::atomic<uint64_t> ring_head;
  std::atomic<uint32_t> unhealthy;
  std::atomic<uint32_t> xid;
  std::atomic<uint64_t> xid_seq;
  Interval ring[kRing];
};

struct Slot {
  std::atomic<int32_t> pid;  // 0: free
  uint32_t pad;
  std::atomic<uint64_t> start_ticks;  // /proc/<pid>/stat starttime, against pid reuse
  std::atomic<uint64_t> used[kMaxDevices];
};

struct StateFile {
  uint64_t magic;
  uint32_t version;
  uint32_t size;
  std::atomic<uint32_t> slot_hwm;
  uint32_t pad;
  union {
    pthread_mutex_t mu;
    char mu_storage[64];
  };
  DeviceShared dev[kMaxDevices];
  Slot slots[kSlots];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(pthread_mutex_t) <= 64);

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

namespace {

// Start time (clock ticks since boot) and liveness of pid from /proc/<pid>/stat.
// Returns false when the process is gone or a zombie (the real driver frees memory at exit,
// before the parent reaps).
bool ProcStat(pid_t pid, uint64_t* start_ticks) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT && errno != ESRCH;  // unreadable: assume alive
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* p = strrchr(buf, ')');
  if (p == nullptr || p[1] == 0 || p[2] == 0) return true;
  char state = p[2];
  if (state == 'Z' || state == 'X' || state == 'x') return false;
  // Fields after ')': 3 state ... 22 starttime.
  p += 2;
  for (int field = 3; field < 22 && *p; ++p)
    if (*p == ' ') ++field;
  *start_ticks = strtoull(p, nullptr, 10);
  return true;
}

bool Alive(pid_t pid, uint64_t start_ticks) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  uint64_t now_start = start_ticks;
  if (!ProcStat(pid, &now_start)) return false;
  return now_start == start_ticks;
}

void InitFile(StateFile* f) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&f->mu, &a);
  pthread_mutexattr_destroy(&a);
  f->version = kVersion;
  f->size = sizeof(StateFile);
  __atomic_store_n(&f->magic, kMagic, __ATOMIC_RELEASE);
}

}  // namespace

std::string SharedState::DefaultPath() {
  const char* p = getenv("FAKEGPU_STATE");
  if (p != nullptr && p[0] != 0) return p;
  return "/tmp/fakegpu-" + std::to_string(getuid()) + ".state";
}

StatusOr<std::unique_ptr<SharedState>> SharedState::Open(const std::string& path) {
  auto fail = [&](const char* what) {
    return Status(StatusCode::kUnavailable,
                  "fakegpu state " + path + ": " + what + ": " + strerror(errno));
  };
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open");
  // flock only serialises initialisation; the kernel drops it if the holder dies.
  if (flock(fd, LOCK_EX) != 0) {
    Status s = fail("flock");
    close(fd);
    return s;
  }
  struct stat st;
  bool fresh = false;
  if (fstat(fd, &st) != 0) {
    Status s = fail("stat");
    close(fd);
    return s;
  }
  if (st.st_size == 0) {
    if (ftruncate(fd, sizeof(StateFile)) != 0) {
      Status s = fail("ftruncate");
      close(fd);
      return s;
    }
    fresh = true;
  } else if (static_cast<size_t>(st.st_size) != sizeof(StateFile)) {
    close(fd);
    return Status(StatusCode::kFailedPrecondition,
                  "fakegpu state " + path + ": wrong size (not a state file of this version)");
  }
  void* m = mmap(nullptr, sizeof(StateFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    Status s = fail("mmap");
    close(fd);
    return s;
  }
  auto* f = static_cast<StateFile*>(m);
  uint64_t magic = __atomic_load_n(&f->magic, __ATOMIC_ACQUIRE);
  if (fresh || magic == 0) {
    InitFile(f);  // magic 0: a creator died before finishing
  } else if (magic != kMagic || f->version != kVersion || f->size != sizeof(StateFile)) {
    munmap(m, sizeof(StateFile));
    close(fd);
    return Status(StatusCode::kFailedPrecondition,
                  "fakegpu state " + path + ": not a fakegpu state file of this version");
  }
  flock(fd, LOCK_UN);
  close(fd);
  return std::unique_ptr<SharedState>(new SharedState(path, f));
}

SharedState::~SharedState() { munmap(f_, sizeof(StateFile)); }

void SharedState::Lock() {
  int r = pthread_mutex_lock(&f_->mu);
  // The previous owner died holding the lock. Every update is a single atomic store, so
  // the data is consistent; the dead process's slot is reaped below.
  if (r == EOWNERDEAD) pthread_mutex_consistent(&f_->mu);
}

void SharedState::Unlock() { pthread_mutex_unlock(&f_->mu); }

void SharedState::ReapDeadLocked() {
  pid_t self = getpid();
  uint32_t hwm = f_->slot_hwm.load();
  for (uint32_t i = 0; i < hwm && i < static_cast<uint32_t>(kSlots); ++i) {
    Slot& s = f_->slots[i];
    pid_t pid = s.pid.load();
    if (pid == 0 || (pid == self && static_cast<int>(i) == own_)) continue;
    if (Alive(pid, s.start_ticks.load())) continue;
    for (auto& u : s.used) u.store(0);
    s.pid.store(0);
  }
}

bool SharedState::OwnSlotValidLocked() {
  if (own_ < 0 || own_pid_ != getpid()) return false;
  Slot& s = f_->slots[own_];
  return s.pid.load() == own_pid_ && s.start_ticks.load() == own_start_;
}

bool SharedState::EnsureSlotLocked() {
  if (OwnSlotValidLocked()) return true;
  pid_t self = getpid();
  uint64_t start = 0;
  ProcStat(self, &start);
  uint32_t hwm = f_->slot_hwm.load();
  int free_slot = -1;
  for (uint32_t i = 0; i < hwm && free_slot < 0; ++i)
    if (f_->slots[i].pid.load() == 0) free_slot = static_cast<int>(i);
  if (free_slot < 0) {
    if (hwm >= static_cast<uint32_t>(kSlots)) return false;
    free_slot = static_cast<int>(hwm);
    f_->slot_hwm.store(hwm + 1);
  }
  Slot& s = f_->slots[free_slot];
  for (auto& u : s.used) u.store(0);
  s.start_ticks.store(start);
  s.pid.store(self);
  own_ = free_slot, own_pid_ = self, own_start_ = start;
  return true;
}

bool SharedState::Charge(int dev, uint64_t bytes, uint64_t capacity) {
  if (dev < 0 || dev >= kMaxDevices) return false;
  Lock();
  ReapDeadLocked();
  bool ok = EnsureSlotLocked();
  if (ok) {
    uint64_t total = 0;
    uint32_t hwm = f_->slot_hwm.load();
    for (uint32_t i = 0; i < hwm; ++i)
      if (f_->slots[i].pid.load() != 0) total += f_->slots[i].used[dev].load();
    ok = total <= capacity && bytes <= capacity - total;
    if (ok) f_->slots[own_].used[dev].fetch_add(bytes);
  }
  Unlock();
  return ok;
}

void SharedState::Uncharge(int dev, uint64_t bytes) {
  if (dev < 0 || dev >= kMaxDevices) return;
  Lock();
  if (OwnSlotValidLocked()) {
    auto& u = f_->slots[own_].used[dev];
    u.store(u.load() > bytes ? u.load() - bytes : 0);
  }
  Unlock();
}

uint64_t SharedState::DeviceUsed(int dev) {
  if (dev < 0 || dev >= kMaxDevices) return 0;
  Lock();
  ReapDeadLocked();
  uint64_t total = 0;
  uint32_t hwm = f_->slot_hwm.load();
  for (uint32_t i = 0; i < hwm; ++i)
    if (f_->slots[i].pid.load() != 0) total += f_->slots[i].used[dev].load();
  Unlock();
  return total;
}

uint64_t SharedState::OwnUsed(int dev) {
  if (dev < 0 || dev >= kMaxDevices) return 0;
  Lock();
  uint64_t v = OwnSlotValidLocked() ? f_->slots[own_].used[dev].load() : 0;
  Unlock();
  return v;
}

std::vector<ProcessUsage> SharedState::Processes(int dev) {
  std::vector<ProcessUsage> out;
  if (dev < 0 || dev >= kMaxDevices) return out;
  Lock();
  ReapDeadLocked();
  uint32_t hwm = f_->slot_hwm.load();
  for (uint32_t i = 0; i < hwm; ++i) {
    pid_t pid = f_->slots[i].pid.load();
    uint64_t used = f_->slots[i].used[dev].load();
    if (pid != 0 && used > 0) out.push_back({pid, used});
  }
  Unlock();
  return out;
}

uint64_t SharedState::Schedule(int dev, uint64_t duration_ns) {
  DeviceShared& d = f_->dev[dev];
  uint64_t now = MonotonicNs();
  uint64_t old = d.busy_until.load();
  uint64_t start, end;
  do {
    start = old > now ? old : now;
    end = start + duration_ns;
  } while (!d.busy_until.compare_exchange_weak(old, end));
  d.busy_total.fetch_add(duration_ns);
  // Record the busy run for utilization: extend the newest run when this kernel follows it
  // directly (a saturated device keeps one entry), else start a new entry.
  uint64_t head = d.ring_head.load();
  if (start == old && head > 0) {
    uint64_t expect = start;
    if (d.ring[(head - 1) % kRing].end.compare_exchange_strong(expect, end)) return end;
  }
  Interval& e = d.ring[d.ring_head.fetch_add(1) % kRing];
  e.end.store(0);
  e.start.store(start);
  e.end.store(end);
  return end;
}

uint64_t SharedState::BusyNsTotal(int dev) { return f_->dev[dev].busy_total.load(); }

unsigned SharedState::Utilization(int dev, uint64_t now, uint64_t window) {
  if (window == 0 || now < window) return 0;
  uint64_t lo = now - window, busy = 0;
  for (const Interval& e : f_->dev[dev].ring) {
    uint64_t s = e.start.load(), t = e.end.load();
    if (t <= s) continue;
    s = s > lo ? s : lo;
    t = t < now ? t : now;
    if (t > s) busy += t - s;
  }
  if (busy > window) busy = window;
  return static_cast<unsigned>((busy * 100 + window / 2) / window);
}

void SharedState::SetHealth(int dev, bool healthy, uint32_t xid) {
  DeviceShared& d = f_->dev[dev];
  d.unhealthy.store(healthy ? 0 : 1);
  if (!healthy) {
    d.xid.store(xid);
    d.xid_seq.fetch_add(1);
  }
}

Health SharedState::GetHealth(int dev) {
  DeviceShared& d = f_->dev[dev];
  return {d.unhealthy.load() == 0, d.xid.load(), d.xid_seq.load()};
}

void SharedState::Reset() {
  Lock();
  for (Slot& s : f_->slots) {
    for (auto& u : s.used) u.store(0);
    s.start_ticks.store(0);
    s.pid.store(0);
  }
  f_->slot_hwm.store(0);
  for (DeviceShared& d : f_->dev) {
    d.busy_until.store(0);
    d.busy_total.store(0);
    d.unhealthy.store(0);
    d.xid.store(0);  // xid_seq stays monotonic so open NVML event sets keep working
    for (Interval& e : d.ring) e.start.store(0), e.end.store(0);
    d.ring_head.store(0);
  }
  Unlock();
}

}  // namespace hami::fakegpu
