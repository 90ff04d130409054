// Codec of HAMi's node lock, node annotation `hami.io/mutex.lock` = "<RFC3339>,<ns>,<pod>" (or
// HAMi's older bare "<RFC3339>"), shared by the scheduler extender (which takes it next to a
// HAMi device plugin) and the device plugin (which releases it next to a HAMi scheduler).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time_format.h"

namespace hami::sched {

inline constexpr char kNodeLockAnnotation[] = "hami.io/mutex.lock";
// HAMi's NodeLockTimeout default ($HAMI_NODELOCK_EXPIRE, chart value nodeLockExpire).
inline constexpr std::chrono::minutes kNodeLockDefaultExpire{5};

struct NodeLock {
  common::SystemTime time;
  std::string ns, pod;  // both empty in HAMi's older bare-time form
};

// "<RFC3339>,<ns>,<pod>" or a bare "<RFC3339>". Errors: kInvalidArgument naming the annotation
// and the problem (not three parts, a bad time, an empty namespace or pod).
StatusOr<NodeLock> ParseNodeLock(std::string_view value);
// The time of a lock whose owner part is malformed ("<RFC3339>,,p"): HAMi still expires it by
// that time. Errors: kInvalidArgument when the text before the first ',' is no RFC 3339 time.
StatusOr<common::SystemTime> ParseNodeLockTime(std::string_view value);
// "<RFC3339 UTC>,<ns>,<pod>" (a bare time when pod is empty), as HAMi's scheduler writes it.
std::string FormatNodeLock(const NodeLock& lock);
// HAMi's expiry test: strictly older than `expire` at `now`.
bool NodeLockExpired(const NodeLock& lock, common::SystemTime now,
                     std::chrono::milliseconds expire);

}  // namespace hami::sched
