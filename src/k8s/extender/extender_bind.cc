// Extender (extender.h): kube-scheduler's bind verb. The pod takes its node's turn
// (extender_turns.cc), its GPUs are chosen and counted, the device annotations written with
// phase `allocating`, then the pod bound; a failure anywhere undoes the count and the turn.
#include "k8s/extender/extender.h"

#include "k8s/extender/extender_internal.h"
#include "sched/annotation.h"
#include "sched/quota_filter.h"

namespace hami::k8s {

using extender_internal::Clock;
using extender_internal::NowSeconds;
using extender_internal::ParseRv;
using extender_internal::Seconds;

namespace {

bool UsesGpu(const sched::PodRequest& req) {
  bool gpu = false;
  for (const auto* list : {&req.init_containers, &req.containers}) {
    for (const auto& c : *list) {
      gpu = gpu || c.gpu_count.value_or(0) > 0 || c.memory_mib || c.memory_percent || c.cores;
    }
  }
  return gpu;
}

}  // namespace

StatusOr<Json> Extender::LookupPod(const std::string& ns, const std::string& name,
                                   const std::string& uid) {
  if (pod_reflector_) {
    if (auto cached = pod_reflector_->GetCached(ns + "/" + name);
        cached && (uid.empty() || MetaString(*cached, "uid") == uid)) {
      return *cached;
    }
  }
  auto pod = client_->Get(Resource::Pods(), ns, name);
  if (!pod.ok()) return pod.status();
  if (!uid.empty() && MetaString(*pod, "uid") != uid) {
    return NotFound("pod " + ns + "/" + name + " has uid " + MetaString(*pod, "uid") + ", not " +
                    uid);
  }
  return pod;
}

StatusOr<Json> Extender::Bind(const Json& args) {
  auto start = Clock::now();
  auto str = [&](const char* f) {
    const Json* v = FindField(args, f);
    return (v && v->is_string()) ? v->get<std::string>() : std::string();
  };
  if (!args.is_object()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_requests++;
    return InvalidArgument("ExtenderBindingArgs must be a JSON object");
  }
  std::string ns = str("podNamespace"), name = str("podName"), uid = str("podUID"),
              node = str("node");
  if (ns.empty() || name.empty() || node.empty()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_requests++;
    return InvalidArgument("ExtenderBindingArgs needs podName, podNamespace and node");
  }
  auto finish = [&](const Status& s) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bind_calls++;
    (s.ok() ? counters_.bind_ok : counters_.bind_failed)++;
    counters_.bind_seconds += Seconds(Clock::now() - start);
    return Json{{"error", s.ok() ? "" : s.message()}};
  };

  auto pod = LookupPod(ns, name, uid);
  if (!pod.ok()) return finish(pod.status());
  if (uid.empty()) uid = MetaString(*pod, "uid");
  auto req = PodRequestFromJson(*pod, opts_.names, opts_.memory_factor);
  if (!req.ok()) return finish(req.status());
  if (!UsesGpu(*req)) return finish(client_->Bind(ns, name, uid, node));

  // One pod per node between binding and Allocate (docs/bind-allocate.md).
  if (Status s = AcquireTurn(node, uid); !s.ok()) {
    {
      std::lock_guard<std::mutex> c(counters_mu_);
      counters_.bind_turn_timeouts++;
    }
    return finish(s);
  }
  auto encoded = ReservePlacement(ns, name, uid, node, *req);
  if (!encoded.ok()) return finish(encoded.status());
  uint64_t written_rv = 0;
  Status s = LockAndWriteBinding(ns, name, uid, node, *encoded, &written_rv,
                                 start + opts_.bind_wait_timeout);
  SettleBind(uid, s, written_rv);
  if (!s.ok()) {
    ReleaseTurn(uid);
    Event(*pod, "Warning", "FailedBinding", "hami: binding to " + node + " failed: " + s.message());
  }
  return finish(s);
}

StatusOr<std::string> Extender::ReservePlacement(const std::string& ns, const std::string& name,
                                                 const std::string& uid, const std::string& node,
                                                 const sched::PodRequest& req) {
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  if (pods_.count(uid)) (void)state_.RemovePlacement(uid);  // re-bind replaces
  UncountQuota(uid);
  auto placement = engine_.Place(state_, req, node);
  Status s = placement.ok() ? Status::Ok() : placement.status();
  // The quota re-check under the same lock that records the usage: of two pods racing for the
  // last of a quota, the second sees the first (docs/quotas.md).
  if (s.ok() && opts_.quotas) s = QuotasSynced();
  if (s.ok() && opts_.quotas) s = sched::CheckPlacementQuota({&quotas_, ns}, *placement);
  StatusOr<std::string> enc = s.ok() ? sched::EncodePlacement(*placement) : s;
  if (s.ok() && !enc.ok()) s = enc.status();
  if (s.ok()) s = state_.AddPlacement(uid, node, *placement);
  if (!s.ok()) {
    pods_.erase(uid);
    lock.unlock();
    ReleaseTurn(uid);
    return Status(s.code(), "cannot place " + ns + "/" + name + " on " + node + ": " + s.message());
  }
  CountQuota(uid, ns, *placement);
  PodRecord& r = pods_[uid];
  r.ns = ns;
  r.name = name;
  r.node = node;
  r.placement = *placement;
  binding_.insert(uid);
  return enc;
}

Status Extender::WriteBinding(const std::string& ns, const std::string& name,
                              const std::string& uid, const std::string& node,
                              const std::string& encoded, uint64_t* written_rv) {
  std::string now = NowSeconds();
  Json patch = {{"metadata",
                 {{"uid", uid},
                  {"labels", {{kVgpuNodeAnnotation, node}}},
                  {"annotations",
                   {{sched::kDevicesToAllocateAnnotation, encoded},
                    {sched::kDevicesAllocatedAnnotation, encoded},
                    {kVgpuNodeAnnotation, node},
                    {kVgpuTimeAnnotation, now},
                    {kBindTimeAnnotation, now},
                    {kBindPhaseAnnotation, "allocating"}}}}}};
  auto patched = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge, patch);
  if (!patched.ok()) return patched.status();
  *written_rv = ParseRv(MetaString(*patched, "resourceVersion"));
  Status s = client_->Bind(ns, name, uid, node);
  if (!s.ok()) {
    // The pod carries annotations for a node it is not bound to: mark them failed so neither
    // the device plugin nor a restarted scheduler counts them.
    auto f = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                            {{"metadata", {{"annotations", {{kBindPhaseAnnotation, "failed"}}}}}});
    // Ignore this attempt's own `allocating` version in any case (+1 when the failed mark
    // could not be written).
    *written_rv = f.ok() ? ParseRv(MetaString(*f, "resourceVersion")) : *written_rv + 1;
  }
  return s;
}

Status Extender::LockAndWriteBinding(const std::string& ns, const std::string& name,
                                     const std::string& uid, const std::string& node,
                                     const std::string& encoded, uint64_t* written_rv,
                                     Clock::time_point deadline) {
  std::string lock;
  if (WantsHamiLock(node)) {
    ReleaseQueuedHamiLocks();  // a previous attempt's, still queued (extender_nodelock.cc)
    auto taken = TakeHamiLock(node, ns, name, deadline);
    if (!taken.ok()) return taken.status();
    lock = *taken;
    // Remembered before the pod is written: the turn may end (and queue the release) as soon
    // as the watch sees the device plugin's answer.
    std::lock_guard<std::mutex> l(lock_mu_);
    hami_locks_[uid] = {node, lock};
  }
  Status s = WriteBinding(ns, name, uid, node, encoded, written_rv);
  if (!s.ok() && !lock.empty()) {
    {
      std::lock_guard<std::mutex> l(lock_mu_);
      hami_locks_.erase(uid);
    }
    ReleaseHamiLock(node, lock);  // as HAMi's scheduler does when its bind fails
  }
  return s;
}

void Extender::SettleBind(const std::string& uid, const Status& s, uint64_t written_rv) {
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  binding_.erase(uid);
  if (!s.ok()) {
    (void)state_.RemovePlacement(uid);
    UncountQuota(uid);
    pods_.erase(uid);
    if (written_rv != 0) failed_rv_[uid] = written_rv;
  } else if (auto rec = pods_.find(uid); rec != pods_.end()) {
    rec->second.min_rv = written_rv;
  }
}

}  // namespace hami::k8s
