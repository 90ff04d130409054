#include "fakegpu/state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace hami::fakegpu {

namespace {
constexpr uint64_t kMagic = 0x31555047454B4146ull;  // "FAKEGPU1"
constexpr uint32_t kVersion = 4;                    // 4: busy runs carry their process
constexpr int kSlots = 4096;
constexpr int kRing = 1024;
}  // namespace

struct Interval {
  std::atomic<uint64_t> start, end;
  std::atomic<int32_t> pid;  // whose work (NVML's PID), for per-process utilization
};

struct DeviceShared {
  std::atomic<uint64_t> busy_until;
  std::atomic<uint64_t> busy_total;
  std::atomic<uint64_t> ring_head;
  std::atomic<uint32_t> unhealthy;
  std::atomic<uint32_t> xid;
  std::atomic<uint64_t> xid_seq;
  std::atomic<uint64_t> last_owner;  // owner of the last kernel scheduled (context switches)
  std::atomic<uint64_t> switches;
  Interval ring[kRing];
};

// One process. It owns the slot while it holds an OFD write lock on the slot's first byte;
// the kernel drops the lock when the process dies (before it becomes a zombie), whatever
// its PID namespace, so liveness needs neither kill() nor /proc.
struct Slot {
  std::atomic<int32_t> pid;     // 0: free; display only
  uint32_t pidns;               // its PID namespace (OwnPidNamespace), set with pid
  std::atomic<uint64_t> claim;  // unique per claim, tells a re-claimed slot from ours
  std::atomic<uint64_t> used[kMaxDevices];
};

struct StateFile {
  uint64_t magic;
  uint32_t version;
  uint32_t size;
  std::atomic<uint32_t> slot_hwm;
  uint32_t pad;
  std::atomic<uint64_t> claim_seq;
  char boot_id[40];  // CLOCK_MONOTONIC and the mutex are only meaningful within one boot
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

off_t SlotOffset(const StateFile* f, int i) {
  return reinterpret_cast<const char*>(&f->slots[i]) - reinterpret_cast<const char*>(f);
}

// Slot-lock descriptors of this process. A forked child closes its copies so that a parent
// that dies releases its slots even while the child lives on.
constexpr int kMaxLockFds = 64;
std::atomic<int> g_lock_fds[kMaxLockFds];  // fd + 1; 0 = empty

void CloseLockFdsInChild() {
  for (auto& f : g_lock_fds) {
    int v = f.exchange(0);
    if (v > 0) close(v - 1);
  }
}

void RegisterLockFd(int fd) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, [] { pthread_atfork(nullptr, nullptr, CloseLockFdsInChild); });
  for (auto& f : g_lock_fds) {
    int empty = 0;
    if (f.compare_exchange_strong(empty, fd + 1)) return;
  }
}

void UnregisterLockFd(int fd) {
  for (auto& f : g_lock_fds) {
    int v = fd + 1;
    if (f.compare_exchange_strong(v, 0)) return;
  }
}

bool LockByte(int fd, off_t off, short type, bool query = false) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = off;
  fl.l_len = 1;
  if (query) {
    // True when another open file description holds a lock there (or we cannot tell).
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
    return fl.l_type != F_UNLCK;
  }
  return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void ReadBootId(char out[40]) {
  memset(out, 0, 40);
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, 39);
  close(fd);
  if (n > 0 && out[n - 1] == '\n') out[n - 1] = 0;
}

void InitMutex(StateFile* f) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&f->mu, &a);
  pthread_mutexattr_destroy(&a);
}

void ResetTimeline(DeviceShared& d) {
  d.busy_until.store(0);
  d.busy_total.store(0);
  d.last_owner.store(0);
  d.switches.store(0);
  for (Interval& e : d.ring) e.start.store(0), e.end.store(0), e.pid.store(0);
  d.ring_head.store(0);
}

}  // namespace

std::string SharedState::DefaultPath() {
  const char* p = getenv("FAKEGPU_STATE");
  if (p != nullptr && p[0] != 0) return p;
  return "/tmp/fakegpu-" + std::to_string(getuid()) + ".state";
}

StatusOr<std::unique_ptr<SharedState>> SharedState::Open(const std::string& path) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Unavailable("fakegpu state " + path + ": open: " + strerror(errno));
    StateFile* f = nullptr;
    Status s = MapLocked(path, fd, &f);
    if (s.ok() && f == nullptr) {  // replaced by another process meanwhile; start over
      close(fd);
      continue;
    }
    if (!s.ok()) {
      close(fd);
      return s;
    }
    return std::unique_ptr<SharedState>(new SharedState(path, f, fd));
  }
  return Unavailable("fakegpu state " + path + ": keeps being replaced");
}

// Maps the file open as fd, initialising or upgrading it under flock (which serialises only
// this step and which the kernel drops if the holder dies). *f stays null when the path no
// longer names fd's file, or when fd held a state file of another version that was unlinked
// so that the caller creates a fresh one.
Status SharedState::MapLocked(const std::string& path, int fd, StateFile** out) {
  auto fail = [&](const char* what) {
    Status s = Unavailable("fakegpu state " + path + ": " + what + ": " + strerror(errno));
    flock(fd, LOCK_UN);
    return s;
  };
  if (flock(fd, LOCK_EX) != 0) return Unavailable("fakegpu state " + path + ": flock");
  struct stat st, pst;
  if (fstat(fd, &st) != 0) return fail("stat");
  if (stat(path.c_str(), &pst) != 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev) {
    flock(fd, LOCK_UN);
    return Status::Ok();
  }
  bool fresh = st.st_size == 0;
  if (!fresh) {
    struct {
      uint64_t magic;
      uint32_t version, size;
    } head = {};
    if (pread(fd, &head, sizeof head, 0) < 0) return fail("read");
    if (head.magic != kMagic && head.magic != 0) {
      flock(fd, LOCK_UN);
      return FailedPrecondition("fakegpu state " + path + ": not a fakegpu state file");
    }
    if (head.magic == kMagic && (head.version != kVersion || head.size != sizeof(StateFile) ||
                                 static_cast<size_t>(st.st_size) != sizeof(StateFile))) {
      // Written by another version of the fake: replace it (its users keep the old inode).
      fprintf(stderr, "fakegpu: replacing %s, a state file of another version\n", path.c_str());
      if (unlink(path.c_str()) != 0) return fail("unlink");
      flock(fd, LOCK_UN);
      return Status::Ok();
    }
  }
  if (static_cast<size_t>(st.st_size) != sizeof(StateFile) &&
      ftruncate(fd, sizeof(StateFile)) != 0) {
    return fail("ftruncate");
  }
  void* m = mmap(nullptr, sizeof(StateFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return fail("mmap");
  auto* f = static_cast<StateFile*>(m);
  char boot_id[40];
  ReadBootId(boot_id);
  if (fresh || __atomic_load_n(&f->magic, __ATOMIC_ACQUIRE) == 0) {
    // New, or its creator died before finishing.
    memset(static_cast<void*>(f), 0, sizeof(StateFile));
    InitMutex(f);
    memcpy(f->boot_id, boot_id, sizeof boot_id);
    f->version = kVersion;
    f->size = sizeof(StateFile);
    __atomic_store_n(&f->magic, kMagic, __ATOMIC_RELEASE);
  } else if (memcmp(f->boot_id, boot_id, sizeof boot_id) != 0) {
    // Left over from an earlier boot: its processes are gone (their slot locks with them),
    // but a mutex held at the crash and future timestamps would block us forever.
    InitMutex(f);
    for (DeviceShared& d : f->dev) ResetTimeline(d);
    memcpy(f->boot_id, boot_id, sizeof boot_id);
  }
  flock(fd, LOCK_UN);
  *out = f;
  return Status::Ok();
}

SharedState::~SharedState() {
  // Closing the lock descriptor gives the slot up: the next reaper frees its memory.
  if (lock_fd_ >= 0 && lock_pid_ == getpid()) {
    UnregisterLockFd(lock_fd_);
    close(lock_fd_);
  }
  close(fd_);
  munmap(f_, sizeof(StateFile));
}

uint32_t SharedState::HwmLocked() {
  uint32_t hwm = f_->slot_hwm.load();
  return hwm < static_cast<uint32_t>(kSlots) ? hwm : kSlots;  // never trust the file
}

void SharedState::Lock() {
  int r = pthread_mutex_lock(&f_->mu);
  // The previous owner died holding the lock. Every update is a single atomic store, so
  // the data is consistent; the dead process's slot is reaped below.
  if (r == EOWNERDEAD) pthread_mutex_consistent(&f_->mu);
}

void SharedState::Unlock() { pthread_mutex_unlock(&f_->mu); }

void SharedState::ReapDeadLocked() {
  uint32_t hwm = HwmLocked();
  bool own_valid = OwnSlotValidLocked();
  for (uint32_t i = 0; i < hwm; ++i) {
    Slot& s = f_->slots[i];
    if (s.pid.load() == 0 || (own_valid && static_cast<int>(i) == own_)) continue;
    if (LockByte(fd_, SlotOffset(f_, i), F_WRLCK, /*query=*/true)) continue;  // owner alive
    for (auto& u : s.used) u.store(0);
    s.claim.store(0);
    s.pid.store(0);
  }
}

// The PID the real driver reports for this process (NVML's process lists): its PID in the
// host's namespace. /proc/self resolves in the PID namespace of the procfs instance, so in a
// PID namespace that still sees the host's /proc (a test's `unshare -p` without a new /proc)
// it is the host PID while getpid() is not; elsewhere the two agree.
static int32_t HostPid() {
  char buf[32] = {};
  ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
  long v = n > 0 ? strtol(buf, nullptr, 10) : 0;
  return v > 0 ? static_cast<int32_t>(v) : static_cast<int32_t>(getpid());
}

bool SharedState::OwnSlotValidLocked() {
  if (own_ < 0 || lock_pid_ != getpid()) return false;
  Slot& s = f_->slots[own_];
  return s.pid.load() == host_pid_ && s.claim.load() == own_claim_;
}

bool SharedState::EnsureSlotLocked() {
  if (OwnSlotValidLocked()) return true;
  pid_t self = getpid();
  if (lock_pid_ != self) {  // first claim, or a forked child (its copy was closed at fork)
    char proc_path[64];
    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd_);
    lock_fd_ = open(proc_path, O_RDWR | O_CLOEXEC);  // a new open file description
    if (lock_fd_ < 0) lock_fd_ = open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd_ < 0) return false;
    RegisterLockFd(lock_fd_);
    lock_pid_ = self;
    host_pid_ = HostPid();
    own_ = -1;
  } else if (own_ >= 0) {  // our slot was taken from us (fakegpu-ctl reset)
    LockByte(lock_fd_, SlotOffset(f_, own_), F_UNLCK);
    own_ = -1;
  }
  uint32_t hwm = HwmLocked();
  for (uint32_t i = 0; i <= hwm && i < static_cast<uint32_t>(kSlots); ++i) {
    Slot& s = f_->slots[i];
    if (i < hwm && s.pid.load() != 0) continue;
    if (!LockByte(lock_fd_, SlotOffset(f_, i), F_WRLCK)) continue;  // still held by its owner
    if (i == hwm) f_->slot_hwm.store(hwm + 1);
    for (auto& u : s.used) u.store(0);
    own_claim_ = f_->claim_seq.fetch_add(1) + 1;
    s.claim.store(own_claim_);
    s.pidns = OwnPidNamespace();
    s.pid.store(host_pid_);
    own_ = static_cast<int>(i);
    return true;
  }
  return false;
}

bool SharedState::Charge(int dev, uint64_t bytes, uint64_t capacity) {
  if (dev < 0 || dev >= kMaxDevices) return false;
  Lock();
  ReapDeadLocked();
  bool ok = EnsureSlotLocked();
  if (ok) {
    uint64_t total = 0;
    uint32_t hwm = HwmLocked();
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
  uint32_t hwm = HwmLocked();
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

uint32_t SharedState::OwnPidNamespace() {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

std::vector<ProcessUsage> SharedState::Processes(int dev, uint32_t pidns) {
  std::vector<ProcessUsage> out;
  if (dev < 0 || dev >= kMaxDevices) return out;
  Lock();
  ReapDeadLocked();
  uint32_t hwm = HwmLocked();
  for (uint32_t i = 0; i < hwm; ++i) {
    pid_t pid = f_->slots[i].pid.load();
    uint64_t used = f_->slots[i].used[dev].load();
    if (pid != 0 && used > 0 && (pidns == 0 || f_->slots[i].pidns == pidns))
      out.push_back({pid, used});
  }
  Unlock();
  return out;
}

int32_t SharedState::CallerPid() {
  uint64_t self = static_cast<uint64_t>(getpid());
  uint64_t v = run_pid_.load(std::memory_order_relaxed);
  if (v >> 32 == self) return static_cast<int32_t>(v & 0xffffffffu);
  int32_t host = HostPid();
  run_pid_.store(self << 32 | static_cast<uint32_t>(host), std::memory_order_relaxed);
  return host;
}

uint64_t SharedState::Schedule(int dev, uint64_t duration_ns, uint64_t not_before, uint64_t owner,
                               uint64_t switch_ns, bool overlap_own, int32_t pid) {
  DeviceShared& d = f_->dev[dev];
  if (pid == 0) pid = CallerPid();
  uint64_t now = std::max(MonotonicNs(), not_before);
  uint64_t old = d.busy_until.load();
  uint64_t start, end, until;
  bool sw;
  do {
    // Work of another owner than the last kernel's first pays a context switch (a model:
    // two processes racing here may miscount one switch, which tests tolerate).
    uint64_t last = d.last_owner.load();
    sw = owner != 0 && last != 0 && last != owner;
    bool beside = overlap_own && owner != 0 && last == owner;  // alongside its own kernels
    start = old > now && !beside ? old : now;
    end = start + duration_ns + (sw ? switch_ns : 0);
    until = end > old ? end : old;
  } while (!d.busy_until.compare_exchange_weak(old, until));
  if (owner != 0) d.last_owner.store(owner);
  if (sw) d.switches.fetch_add(1);
  d.busy_total.fetch_add(duration_ns);
  // Record the busy run for utilization: extend the newest run when this kernel of the same
  // process follows it directly (a saturated device keeps one entry), else start a new entry.
  uint64_t head = d.ring_head.load();
  if (start == old && head > 0) {
    Interval& last = d.ring[(head - 1) % kRing];
    uint64_t expect = start;
    if (last.pid.load() == pid && last.end.compare_exchange_strong(expect, end)) return end;
  }
  Interval& e = d.ring[d.ring_head.fetch_add(1) % kRing];
  e.end.store(0);
  e.start.store(start);
  e.pid.store(pid);
  e.end.store(end);
  return end;
}

uint64_t SharedState::BusyUntil(int dev) { return f_->dev[dev].busy_until.load(); }

uint64_t SharedState::StartBound(int dev, uint64_t owner, bool overlap_own) {
  DeviceShared& d = f_->dev[dev];
  if (overlap_own && owner != 0 && d.last_owner.load() == owner) return 0;
  return d.busy_until.load();
}

uint64_t SharedState::BusyNsTotal(int dev) { return f_->dev[dev].busy_total.load(); }

uint64_t SharedState::ContextSwitches(int dev) { return f_->dev[dev].switches.load(); }

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

std::vector<ProcessBusy> SharedState::BusyByProcess(int dev, uint64_t from, uint64_t to) {
  std::vector<ProcessBusy> out;
  if (dev < 0 || dev >= kMaxDevices || to <= from) return out;
  for (const Interval& e : f_->dev[dev].ring) {
    uint64_t s = e.start.load(), t = e.end.load();
    int32_t pid = e.pid.load();
    if (t <= s) continue;
    s = s > from ? s : from;
    t = t < to ? t : to;
    if (t <= s) continue;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const ProcessBusy& p) { return p.pid == pid; });
    if (it == out.end()) {
      out.push_back({pid, t - s});
    } else {
      it->busy_ns += t - s;
    }
  }
  for (ProcessBusy& p : out) p.busy_ns = std::min(p.busy_ns, to - from);
  return out;
}

void SharedState::SetHealth(int dev, bool healthy, uint32_t xid) {
  DeviceShared& d = f_->dev[dev];
  uint32_t was_unhealthy = d.unhealthy.exchange(healthy ? 0 : 1);
  if (!healthy) {
    d.xid.store(xid);
    d.xid_seq.fetch_add(1);
  } else if (was_unhealthy) {
    // Recovery: an event with eventData 0, the signal the device plugin reads as "healthy".
    d.xid.store(0);
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
    s.claim.store(0);
    s.pid.store(0);
  }
  f_->slot_hwm.store(0);
  for (DeviceShared& d : f_->dev) {
    ResetTimeline(d);
    d.unhealthy.store(0);
    d.xid.store(0);  // xid_seq stays monotonic so open NVML event sets keep working
  }
  Unlock();
}

}  // namespace hami::fakegpu
