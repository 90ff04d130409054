// HAMi's node lock, spoken where a HAMi scheduler is on the other side: HAMi's scheduler writes
// node annotation hami.io/mutex.lock = "<RFC3339>,<namespace>,<pod>" at Bind and HAMi's device
// plugin removes it once the pod's devices are allocated (or allocation failed). This project's
// own scheduler never takes it (docs/bind-allocate.md), so without a HAMi scheduler nothing here
// ever patches a node.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time_format.h"
#include "deviceplugin/kube_api.h"

namespace hami::deviceplugin {

inline constexpr char kNodeLockAnnotation[] = "hami.io/mutex.lock";

struct NodeLock {
  common::SystemTime time;
  std::string ns, pod;  // empty in HAMi's older bare-time form
};

// "<RFC3339>,<ns>,<pod>" or a bare "<RFC3339>". Errors: kInvalidArgument naming the problem.
StatusOr<NodeLock> ParseNodeLock(std::string_view value);
std::string FormatNodeLock(const NodeLock& lock);

// Removes the lock on `node` when it names ns/pod (HAMi's owner check), conditionally on the
// node's resourceVersion and retried on conflicts. Returns whether a lock was removed; a lock
// of another pod, a bare-time lock or none at all is left alone.
// Errors: kAborted after repeated conflicts, kNotFound/kUnavailable from the API.
StatusOr<bool> ReleaseHamiNodeLock(KubeApi& api, const std::string& node, const std::string& ns,
                                   const std::string& pod);

}  // namespace hami::deviceplugin
