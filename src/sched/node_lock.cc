// HAMi's node lock codec (node_lock.h).
#include "sched/node_lock.h"

namespace hami::sched {

namespace {
Status LockError(const std::string& what) {
  return InvalidArgument(std::string(kNodeLockAnnotation) + ": " + what);
}
}  // namespace

StatusOr<common::SystemTime> ParseNodeLockTime(std::string_view value) {
  auto t = common::ParseRfc3339(value.substr(0, value.find(',')));
  if (!t.ok()) return LockError(t.status().message());
  return *t;
}

StatusOr<NodeLock> ParseNodeLock(std::string_view value) {
  NodeLock lock;
  auto t = ParseNodeLockTime(value);
  if (!t.ok()) return t.status();
  lock.time = *t;
  const std::size_t c1 = value.find(',');
  if (c1 == std::string_view::npos) return lock;
  const std::size_t c2 = value.find(',', c1 + 1);
  if (c2 == std::string_view::npos || value.find(',', c2 + 1) != std::string_view::npos) {
    return LockError("expected <RFC3339>,<namespace>,<pod>");
  }
  lock.ns = std::string(value.substr(c1 + 1, c2 - c1 - 1));
  lock.pod = std::string(value.substr(c2 + 1));
  if (lock.ns.empty() || lock.pod.empty()) return LockError("empty namespace or pod");
  return lock;
}

std::string FormatNodeLock(const NodeLock& lock) {
  std::string out = common::FormatRfc3339(lock.time);
  if (!lock.pod.empty()) out += "," + lock.ns + "," + lock.pod;
  return out;
}

bool NodeLockExpired(const NodeLock& lock, common::SystemTime now,
                     std::chrono::milliseconds expire) {
  return now - lock.time > expire;
}

}  // namespace hami::sched
