// HAMi's node lock, spoken where a HAMi scheduler is on the other side: HAMi's scheduler writes
// node annotation hami.io/mutex.lock = "<RFC3339>,<namespace>,<pod>" at Bind and HAMi's device
// plugin removes it once the pod's devices are allocated (or allocation failed). This project's
// own scheduler takes it only for nodes whose device plugin is HAMi's (--node-lock, docs/bind-
// allocate.md), and this plugin releases it the same way for whichever scheduler took it.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "deviceplugin/kube_api.h"
#include "sched/node_lock.h"

namespace hami::deviceplugin {

// The codec is shared with the scheduler extender (sched/node_lock.h).
using sched::FormatNodeLock;
using sched::kNodeLockAnnotation;
using sched::NodeLock;
using sched::ParseNodeLock;

// Removes the lock on `node` when it names ns/pod (HAMi's owner check), conditionally on the
// node's resourceVersion and retried on conflicts. Returns whether a lock was removed; a lock
// of another pod, a bare-time lock or none at all is left alone.
// Errors: kAborted after repeated conflicts, kNotFound/kUnavailable from the API.
StatusOr<bool> ReleaseHamiNodeLock(KubeApi& api, const std::string& node, const std::string& ns,
                                   const std::string& pod);

}  // namespace hami::deviceplugin
