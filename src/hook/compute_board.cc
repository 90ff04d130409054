#include "compute_board.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "glibc_compat.h"

namespace hami::vgpu {
namespace {

int Clamp(int prio) {
  return prio < 0 ? 0 : (prio >= kBoardPriorities ? kBoardPriorities - 1 : prio);
}

// A whole signed decimal of n characters (not strtoll: see src/hook/glibc_compat.h).
bool ParseLong(const char* s, size_t n, long long* out) {
  size_t i = n > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (n == i || n > 20) return false;
  unsigned long long v = 0;
  for (; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned d = static_cast<unsigned>(s[i] - '0');
    if (v > (static_cast<unsigned long long>(LLONG_MAX) - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = s[0] == '-' ? -static_cast<long long>(v) : static_cast<long long>(v);
  return true;
}

}  // namespace

bool Board::Open(const char* dir, const char* uuid, char* err, size_t errlen) {
  if (mkdir(dir, 0777) == 0) {
    chmod(dir, 01777);  // shared by every user on the host, like /tmp
  } else if (errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    return false;
  }
  char path[1200];
  snprintf(path, sizeof(path), "%s/%s.board", dir, uuid);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return false;
  }
  fchmod(fd, 0666);  // independent of the process umask, which is never changed
  struct stat st;
  if (StatFd(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    return false;
  }
  if (st.st_size < 4096 && ftruncate(fd, 4096) != 0) {  // zero-filled: a valid empty board
    snprintf(err, errlen, "cannot size %s: %s", path, strerror(errno));
    close(fd);
    return false;
  }
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
    return false;
  }
  auto* b = static_cast<BoardLayout*>(m);
  uint64_t zero = 0;
  __atomic_compare_exchange_n(&b->magic, &zero, kBoardMagic, false, __ATOMIC_ACQ_REL,
                              __ATOMIC_ACQUIRE);
  if (__atomic_load_n(&b->magic, __ATOMIC_ACQUIRE) != kBoardMagic) {
    snprintf(err, errlen, "%s is not a GPU board file", path);
    munmap(m, 4096);
    return false;
  }
  b_ = b;
  return true;
}

void Board::MarkActive(uint64_t id, uint64_t now) {
  if (!b_) return;
  // Our entry, else an empty one, else the stalest (entries are hints: losing one to a race
  // only delays contention detection until the next mark).
  int empty = -1, stalest = 0;
  uint64_t oldest = ~0ull;
  for (int i = 0; i < kBoardContainers; ++i) {
    uint64_t cid = __atomic_load_n(&b_->containers[i].id, __ATOMIC_ACQUIRE);
    if (cid == id) {
      __atomic_store_n(&b_->containers[i].last_active, now, __ATOMIC_RELEASE);
      return;
    }
    if (cid == 0 && empty < 0) empty = i;
    uint64_t la = __atomic_load_n(&b_->containers[i].last_active, __ATOMIC_RELAXED);
    if (la < oldest) {
      oldest = la;
      stalest = i;
    }
  }
  int i = empty >= 0 ? empty : stalest;
  uint64_t expect = empty >= 0 ? 0 : __atomic_load_n(&b_->containers[i].id, __ATOMIC_RELAXED);
  if (__atomic_compare_exchange_n(&b_->containers[i].id, &expect, id, false, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE))
    __atomic_store_n(&b_->containers[i].last_active, now, __ATOMIC_RELEASE);
}

bool Board::OthersActive(uint64_t id, uint64_t now, uint64_t window) const {
  if (!b_) return false;
  for (int i = 0; i < kBoardContainers; ++i) {
    uint64_t cid = __atomic_load_n(&b_->containers[i].id, __ATOMIC_ACQUIRE);
    if (cid == 0 || cid == id) continue;
    uint64_t la = __atomic_load_n(&b_->containers[i].last_active, __ATOMIC_ACQUIRE);
    if (la + window >= now) return true;
  }
  return false;
}

void Board::PublishLaunch(int prio, uint64_t now, uint64_t est_ns) {
  if (!b_) return;
  int p = Clamp(prio);
  __atomic_store_n(&b_->prio_last_launch[p], now, __ATOMIC_RELEASE);
  // busy_until = max(busy_until, now) + est: a queue of this priority's estimated work.
  uint64_t cur = __atomic_load_n(&b_->prio_busy_until[p], __ATOMIC_RELAXED);
  for (;;) {
    uint64_t next = (cur > now ? cur : now) + est_ns;
    if (__atomic_compare_exchange_n(&b_->prio_busy_until[p], &cur, next, true, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
      return;
  }
}

uint64_t Board::HigherBusyUntil(int prio, uint64_t now, uint64_t recent) const {
  if (!b_) return 0;
  uint64_t best = 0;
  for (int q = 0; q < Clamp(prio); ++q) {
    uint64_t last = __atomic_load_n(&b_->prio_last_launch[q], __ATOMIC_ACQUIRE);
    // Any process may write the board: ignore launches "from the future" and cap how far
    // ahead a level may claim the GPU, so a corrupt or hostile entry cannot stall us forever.
    if (last == 0 || last + recent < now || last > now + kBoardMaxSkewNs) continue;
    uint64_t bu = __atomic_load_n(&b_->prio_busy_until[q], __ATOMIC_ACQUIRE);
    if (bu < last) bu = last;
    if (bu > now + kBoardMaxClaimNs) bu = now + kBoardMaxClaimNs;
    if (bu > best) best = bu;
  }
  return best;
}

uint64_t Board::TurnAcquire(uint64_t id, uint64_t now, uint64_t max_turn_ns, uint64_t overlap_ns,
                            bool* held_by_other, uint32_t* seq) {
  if (held_by_other) *held_by_other = false;
  if (!b_) return 0;
  constexpr uint64_t kRetryNs = 50000;
  if (seq) *seq = __atomic_load_n(&b_->turn_seq, __ATOMIC_ACQUIRE);
  uint64_t owner = __atomic_load_n(&b_->turn_owner, __ATOMIC_ACQUIRE);
  uint64_t wanted_at = __atomic_load_n(&b_->turn_wanted_at, __ATOMIC_ACQUIRE);
  uint64_t wanted_by = __atomic_load_n(&b_->turn_wanted_by, __ATOMIC_ACQUIRE);
  bool other_waits =
      wanted_by != id && wanted_at <= now + kBoardMaxSkewNs && wanted_at + kTurnLeaseNs > now;
  if (owner == id) {
    // turn_since is when the previous owners' queued work drains (minus the overlap): wait
    // for it, holding the turn; the turn's length counts from there.
    uint64_t since = __atomic_load_n(&b_->turn_since, __ATOMIC_ACQUIRE);
    if (since > now + kTurnMaxDrainNs) since = now;  // corrupt: do not wait on it
    if (since > now) return since - now;
    if (other_waits && now > since + max_turn_ns) {  // a full turn used while others wait
      TurnRelease(id);
      return kRetryNs;
    }
    return 0;
  }
  uint64_t lease = __atomic_load_n(&b_->turn_lease, __ATOMIC_ACQUIRE);
  if (lease > now + kBoardMaxClaimNs) lease = 0;  // corrupt or hostile: treat as lapsed
  if (owner != 0 && lease > now) {
    __atomic_store_n(&b_->turn_wanted_at, now, __ATOMIC_RELEASE);
    __atomic_store_n(&b_->turn_wanted_by, id, __ATOMIC_RELEASE);
    if (held_by_other) *held_by_other = true;
    uint64_t w = lease - now;
    return w < kRetryNs ? kRetryNs : (w > kTurnLeaseNs ? kTurnLeaseNs : w);
  }
  // Free or lapsed. The container that just gave the turn back lets a waiting one go first.
  if (other_waits && __atomic_load_n(&b_->turn_last_owner, __ATOMIC_ACQUIRE) == id) return kRetryNs;
  if (!__atomic_compare_exchange_n(&b_->turn_owner, &owner, id, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return kRetryNs;
  // Another container's queue must drain first; our own (we held the turn last) need not.
  uint64_t drain = __atomic_load_n(&b_->turn_busy_until, __ATOMIC_ACQUIRE);
  if (__atomic_load_n(&b_->turn_last_owner, __ATOMIC_ACQUIRE) == id) drain = 0;
  if (drain > now + kTurnMaxDrainNs) drain = now + kTurnMaxDrainNs;
  uint64_t start = drain > now + overlap_ns ? drain - overlap_ns : now;
  __atomic_store_n(&b_->turn_since, start, __ATOMIC_RELEASE);
  __atomic_store_n(&b_->turn_lease, start + kTurnLeaseNs, __ATOMIC_RELEASE);
  __atomic_store_n(&b_->turn_last_owner, id, __ATOMIC_RELEASE);
  if (wanted_by == id) __atomic_store_n(&b_->turn_wanted_at, 0, __ATOMIC_RELEASE);
  return TurnAcquire(id, now, max_turn_ns, overlap_ns);  // owner now: the drain check
}

void Board::TurnLaunched(uint64_t id, uint64_t now, uint64_t est_ns) {
  if (!b_ || __atomic_load_n(&b_->turn_owner, __ATOMIC_ACQUIRE) != id) return;
  uint64_t cur = __atomic_load_n(&b_->turn_busy_until, __ATOMIC_RELAXED);
  uint64_t next;
  for (;;) {
    next = (cur > now ? cur : now) + est_ns;
    if (next > now + kBoardMaxClaimNs) next = now + kBoardMaxClaimNs;
    if (__atomic_compare_exchange_n(&b_->turn_busy_until, &cur, next, true, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
      break;
  }
  __atomic_store_n(&b_->turn_lease, next + kTurnLeaseNs, __ATOMIC_RELEASE);
}

void Board::TurnRelease(uint64_t id) {
  if (!b_) return;
  uint64_t expect = id;
  if (!__atomic_compare_exchange_n(&b_->turn_owner, &expect, 0, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return;
  __atomic_fetch_add(&b_->turn_seq, 1, __ATOMIC_ACQ_REL);
  // Wake the waiters of every process mapping the board (shared futex: no FUTEX_PRIVATE).
  syscall(SYS_futex, &b_->turn_seq, FUTEX_WAKE, 0x7fffffff, nullptr, nullptr, 0);
}

void Board::TurnWait(uint32_t seq, uint64_t timeout_ns) const {
  if (!b_) return;
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull),
              static_cast<long>(timeout_ns % 1000000000ull)};
  // Returns at once when the counter already moved (EAGAIN), on a wake, or at the timeout.
  syscall(SYS_futex, &b_->turn_seq, FUTEX_WAIT, seq, &ts, nullptr, 0);
}

bool Board::TurnHeldBy(uint64_t id) const {
  return b_ && __atomic_load_n(&b_->turn_owner, __ATOMIC_ACQUIRE) == id;
}

bool ParseContention(const char* text, ContentionInfo* out) {
  ContentionInfo c;
  bool have_active = false, have_updated = false;
  const char* p = text;
  while (*p) {
    const char* eol = strchr(p, '\n');
    size_t len = eol ? static_cast<size_t>(eol - p) : strlen(p);
    if (len > 0 && p[0] != '#') {
      const char* eq = static_cast<const char*>(memchr(p, '=', len));
      if (eq) {
        size_t klen = static_cast<size_t>(eq - p);
        const char* v = eq + 1;
        size_t vlen = len - klen - 1;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ')) --vlen;
        long long x = 0;
        auto key = [&](const char* k) { return klen == strlen(k) && memcmp(p, k, klen) == 0; };
        bool ok = ParseLong(v, vlen, &x);
        if (key("ACTIVE_CONTAINERS")) {
          if (!ok || x < 0 || x > 1000000) return false;
          c.active = static_cast<int>(x);
          have_active = true;
        } else if (key("ACTIVE_HIGH_PRIORITY") && ok && x >= 0 && x <= 1000000) {
          c.active_high = static_cast<int>(x);
        } else if (key("MIN_ACTIVE_PRIORITY") && ok && x >= -1 && x <= 1000000) {
          c.min_priority = static_cast<int>(x);
        } else if (key("UPDATED_UNIX_MS")) {
          if (!ok || x < 0) return false;
          c.updated_ms = x;
          have_updated = true;
        }
      }
    }
    if (!eol) break;
    p = eol + 1;
  }
  if (!have_active || !have_updated) return false;
  *out = c;
  return true;
}

bool ReadContention(const char* path, ContentionInfo* out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return ParseContention(buf, out);
}

}  // namespace hami::vgpu
