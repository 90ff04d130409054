// Extender (extender.h): the per-node bind turn of docs/bind-allocate.md. One pod per node
// between its bind and the device plugin's Allocate; binds for a busy node wait in ticket order;
// a turn held longer than allocate_timeout is taken back and the pod marked failed.
#include "k8s/extender/extender.h"

#include <algorithm>

#include "k8s/extender/extender_internal.h"

namespace hami::k8s {

using extender_internal::Clock;

Status Extender::AcquireTurn(const std::string& node, const std::string& uid) {
  std::unique_lock<std::mutex> lock(turn_mu_);
  NodeTurn& t = turns_[node];
  if (t.holder == uid) return Status::Ok();
  uint64_t ticket = next_ticket_++;
  t.waiters.push_back(ticket);
  auto deadline = Clock::now() + opts_.bind_wait_timeout;
  bool got = turn_cv_.wait_until(lock, deadline, [&] {
    NodeTurn& tt = turns_[node];
    return tt.holder.empty() && !tt.waiters.empty() && tt.waiters.front() == ticket;
  });
  NodeTurn& tt = turns_[node];
  if (!got) {
    tt.waiters.erase(std::find(tt.waiters.begin(), tt.waiters.end(), ticket));
    std::string holder = tt.holder;
    turn_cv_.notify_all();
    return Unavailable("node " + node + " is busy: pod " + holder +
                       " is still being allocated by the device plugin");
  }
  tt.waiters.pop_front();
  tt.holder = uid;
  tt.since = Clock::now();
  holding_[uid] = node;
  return Status::Ok();
}

void Extender::ReleaseTurn(const std::string& uid) {
  std::lock_guard<std::mutex> lock(turn_mu_);
  auto h = holding_.find(uid);
  if (h == holding_.end()) return;
  auto t = turns_.find(h->second);
  if (t != turns_.end() && t->second.holder == uid) t->second.holder.clear();
  holding_.erase(h);
  turn_cv_.notify_all();
  // The pod's HAMi node lock, if Bind took one, goes with the turn (the device plugin has
  // usually removed it already; the reaper removes it only while it is still this pod's).
  std::lock_guard<std::mutex> l(lock_mu_);
  if (auto held = hami_locks_.find(uid); held != hami_locks_.end()) {
    lock_releases_.push_back(std::move(held->second));
    hami_locks_.erase(held);
    releases_pending_ = true;
    reaper_cv_.notify_all();
  }
}

void Extender::ClaimTurnIfFree(const std::string& node, const std::string& uid,
                               Clock::time_point since) {
  std::lock_guard<std::mutex> lock(turn_mu_);
  NodeTurn& t = turns_[node];
  if (!t.holder.empty() || holding_.count(uid)) return;
  t.holder = uid;
  t.since = since;
  holding_[uid] = node;
}

std::string Extender::TurnHolder(const std::string& node) const {
  std::lock_guard<std::mutex> lock(turn_mu_);
  auto t = turns_.find(node);
  return t == turns_.end() ? std::string() : t->second.holder;
}

void Extender::ReaperLoop() {
  std::unique_lock<std::mutex> lock(reaper_mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, opts_.reaper_interval,
                        [this] { return stopping_ || releases_pending_.load(); });
    if (stopping_) return;
    lock.unlock();
    ReleaseQueuedHamiLocks();
    std::vector<std::pair<std::string, std::string>> expired;  // uid, node
    {
      std::lock_guard<std::mutex> tl(turn_mu_);
      auto now = Clock::now();
      for (const auto& [node, t] : turns_) {
        if (!t.holder.empty() && now - t.since > opts_.allocate_timeout) {
          expired.emplace_back(t.holder, node);
        }
      }
    }
    for (const auto& [uid, node] : expired) {
      {
        // Counted before the pod is patched, so whoever sees the patch sees the count.
        std::lock_guard<std::mutex> c(counters_mu_);
        counters_.allocate_timeouts++;
      }
      std::string ns, name;
      {
        std::shared_lock<std::shared_mutex> sl(state_mu_);
        auto rec = pods_.find(uid);
        if (rec != pods_.end()) {
          ns = rec->second.ns;
          name = rec->second.name;
        }
      }
      if (!name.empty()) {
        FailAllocation(ns, name, uid,
                       "device plugin did not allocate within " +
                           std::to_string(opts_.allocate_timeout.count()) + " ms");
      }
      ReleaseTurn(uid);
    }
    lock.lock();
  }
}

// Marks the pod's allocation failed unless it already finished (success or gone).
void Extender::FailAllocation(const std::string& ns, const std::string& name,
                              const std::string& uid, const std::string& why) {
  auto r = PatchWithRetry(*client_, Resource::Pods(), ns, name, [&](const Json& cur) {
    if (MetaString(cur, "uid") != uid) return StatusOr<Json>(Json::object());
    if (Annotation(cur, kBindPhaseAnnotation) != "allocating") {
      return StatusOr<Json>(Json::object());
    }
    return StatusOr<Json>(
        Json{{"metadata", {{"annotations", {{kBindPhaseAnnotation, "failed"}}}}}});
  });
  if (r.ok()) Event(*r, "Warning", "AllocateTimeout", why);
}

}  // namespace hami::k8s
