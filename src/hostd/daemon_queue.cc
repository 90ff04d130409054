// Daemon (daemon.h): the queue's order and the per-user and per-group quotas (docs/quotas.md):
// which waiting request is granted when, and why the others wait; and the per-user caps on
// slices held and requests queued.
#include <set>

#include "hostd/daemon.h"

namespace hami::hostd {

Status Daemon::QuotaAdmitsLocked(const SliceRequest& r, const sched::PodPlacement& p) const {
  if (quotas_.empty()) return Status::Ok();
  return quotas_.Check(r.uid, sched::PlacementQuotaUsage(p));
}

// In order: an entry that does not fit the GPUs stops the queue (first come, first served);
// one that fits but is over its user's or group's quota is passed over with that reason, and
// so are the later entries of the same user, which keep their order behind it.
void Daemon::ProcessQueueLocked() {
  quota_wait_.clear();
  std::set<uint32_t> held;  // users with an entry passed over for quota
  for (size_t i = 0; i < queue_.size();) {
    QueueEntry e = queue_[i];
    uint32_t user = e.request.uid;
    if (held.count(user)) {
      quota_wait_[e.ticket] = "an earlier request of the same user waits for its quota";
      ++i;
      continue;
    }
    std::string why;
    auto placed = PlaceLocked(e.request, &why);
    if (!placed.ok() || !placed->has_value()) return;
    if (Status q = QuotaAdmitsLocked(e.request, **placed); !q.ok()) {
      quota_wait_[e.ticket] = q.message();
      held.insert(user);
      ++i;
      continue;
    }
    auto s = GrantLocked(e.request, **placed, e.ticket);  // removes the entry from queue_
    if (!s.ok()) return;  // database trouble: leave it queued; the next change retries
  }
}

Status Daemon::CheckQuotaLocked(const SliceRequest& r, bool queueing) const {
  int32_t held = 0, waiting = 0;
  for (const auto& s : slices_) held += s.request.uid == r.uid;
  for (const auto& q : queue_) waiting += q.request.uid == r.uid;
  if (!queueing && held >= options_.max_slices_per_user) {
    return ResourceExhausted("uid " + std::to_string(r.uid) + " holds " + std::to_string(held) +
                             " slices, the most one user may hold");
  }
  if (queueing && waiting >= options_.max_queued_per_user) {
    return ResourceExhausted("uid " + std::to_string(r.uid) + " has " + std::to_string(waiting) +
                             " requests waiting, the most one user may queue");
  }
  if (queueing && static_cast<int32_t>(queue_.size()) >= options_.max_queued_total) {
    return ResourceExhausted("the queue is full (" + std::to_string(queue_.size()) +
                             " requests waiting)");
  }
  return Status::Ok();
}

std::string Daemon::QueueReason() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.empty()) return "";
  std::string why;
  auto placed = PlaceLocked(queue_.front().request, &why);
  if (!placed.ok()) return placed.status().message();
  return why;
}

std::string Daemon::QueueReason(int64_t ticket) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = quota_wait_.find(ticket); it != quota_wait_.end()) return it->second;
  }
  return QueueReason();
}

std::vector<HostQuotas::Row> Daemon::QuotaRows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return quotas_.Rows();
}

std::map<int64_t, std::string> Daemon::QuotaWaits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return quota_wait_;
}

}  // namespace hami::hostd
