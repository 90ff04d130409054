// HAMi's node lock (node_lock.h).
#include "deviceplugin/node_lock.h"

namespace hami::deviceplugin {

StatusOr<NodeLock> ParseNodeLock(std::string_view value) {
  NodeLock lock;
  const std::size_t c1 = value.find(',');
  auto t = common::ParseRfc3339(value.substr(0, c1));
  if (!t.ok())
    return InvalidArgument(std::string(kNodeLockAnnotation) + ": " + t.status().message());
  lock.time = *t;
  if (c1 == std::string_view::npos) return lock;
  const std::size_t c2 = value.find(',', c1 + 1);
  if (c2 == std::string_view::npos || value.find(',', c2 + 1) != std::string_view::npos) {
    return InvalidArgument(std::string(kNodeLockAnnotation) +
                           ": expected <RFC3339>,<namespace>,<pod>");
  }
  lock.ns = std::string(value.substr(c1 + 1, c2 - c1 - 1));
  lock.pod = std::string(value.substr(c2 + 1));
  if (lock.ns.empty() || lock.pod.empty()) {
    return InvalidArgument(std::string(kNodeLockAnnotation) + ": empty namespace or pod");
  }
  return lock;
}

std::string FormatNodeLock(const NodeLock& lock) {
  std::string out = common::FormatRfc3339(lock.time);
  if (!lock.pod.empty()) out += "," + lock.ns + "," + lock.pod;
  return out;
}

StatusOr<bool> ReleaseHamiNodeLock(KubeApi& api, const std::string& node, const std::string& ns,
                                   const std::string& pod) {
  Status last = Status::Ok();
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto meta = api.GetNode(node);
    if (!meta.ok()) return meta.status();
    auto it = meta->annotations.find(kNodeLockAnnotation);
    if (it == meta->annotations.end()) return false;
    auto lock = ParseNodeLock(it->second);
    // Only the owner's release: a malformed lock or another pod's is HAMi's scheduler's to expire.
    if (!lock.ok() || lock->ns != ns || lock->pod != pod) return false;
    AnnotationPatch patch;
    patch[kNodeLockAnnotation] = std::nullopt;
    last = api.PatchNodeAnnotationsAt(node, meta->resource_version, patch);
    if (last.ok()) return true;
    if (last.code() != StatusCode::kAborted) return last;
  }
  return Aborted("releasing " + std::string(kNodeLockAnnotation) + " on " + node +
                 ": node kept changing: " + last.message());
}

}  // namespace hami::deviceplugin
