// HAMi's node lock (node_lock.h).
#include "deviceplugin/node_lock.h"

namespace hami::deviceplugin {

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
