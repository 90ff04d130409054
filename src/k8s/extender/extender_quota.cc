// The extender's quota part (docs/quotas.md): ResourceQuota objects into the QuotaBook, the
// usage of placed pods kept next to their placements under the same lock, and the checks the
// webhook and bind make.

#include "common/log.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/quotas.h"

namespace hami::k8s {

void Extender::UpsertQuota(const Json& quota) {
  std::string ns = QuotaNamespace(quota), name = QuotaName(quota);
  if (ns.empty() || name.empty()) return;
  std::string error;
  sched::QuotaLimits limits = QuotaLimitsOrClosed(quota, opts_.names, opts_.memory_factor, &error);
  if (!error.empty()) {
    hami::log::Warn("{}; enforcing 0 for it until it is fixed", error);
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_quotas++;
  }
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  quotas_.SetLimits(ns, name, limits);
}

void Extender::DeleteQuota(const Json& quota) {
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  quotas_.RemoveLimits(QuotaNamespace(quota), QuotaName(quota));
}

void Extender::CountQuota(const std::string& uid, const std::string& ns,
                          const sched::PodPlacement& placement) {
  quotas_.AddUsage(uid, ns, sched::PlacementQuotaUsage(placement));
}

void Extender::UncountQuota(const std::string& uid) { quotas_.RemoveUsage(uid); }

Status Extender::QuotasSynced() const {
  if (!opts_.quotas || !quota_reflector_) return Status::Ok();
  if (quota_reflector_->synced() && pod_reflector_ && pod_reflector_->synced()) {
    return Status::Ok();
  }
  // Until both lists are in, a quota could be missing or its usage undercounted: refuse
  // rather than overshoot (kube-scheduler retries).
  return Unavailable(
      "hami: ResourceQuotas and pods are still being listed; quotas cannot be "
      "checked yet");
}

Status Extender::CheckQuotaEverFits(const std::string& ns, const sched::ResolvedPod& pod) const {
  if (!opts_.quotas) return Status::Ok();
  // Memory given as a percentage counts 0 here: the card is not known, and the webhook must
  // never deny a pod that some card would let fit.
  sched::QuotaAmount asked = sched::RequestQuotaUsage(pod, 0);
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return quotas_.CheckEverFits(ns, asked);
}

std::vector<sched::QuotaBook::Row> Extender::QuotaSnapshot() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return quotas_.Snapshot();
}

}  // namespace hami::k8s
