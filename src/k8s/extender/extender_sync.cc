// Extender (extender.h): cluster events from the node and pod watches. Nodes bring their GPUs
// (register annotation, minus the node configuration's hidden devices); pods their placements,
// counted against those GPUs, and after a restart the node turn a pod still allocating holds.
#include "k8s/extender/extender.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "k8s/extender/extender_internal.h"
#include "sched/node_codec.h"

namespace hami::k8s {

using extender_internal::Clock;
using extender_internal::ParseRv;

void Extender::UpsertNode(const Json& node) {
  std::string name = MetaString(node, "name");
  if (name.empty()) return;
  std::string text = Annotation(node, sched::kNodeRegisterAnnotation);
  {
    std::lock_guard<std::mutex> l(lock_mu_);
    node_ours_[name] = OurPluginHandshake(node);
  }
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  if (text.empty()) {
    (void)state_.RemoveNode(name);
    return;
  }
  auto gpus = sched::DecodeNodeRegister(text);
  if (!gpus.ok()) {
    (void)state_.RemoveNode(name);
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
    return;
  }
  sched::NodeInfo info;
  info.name = name;
  auto filter = opts_.device_filters.find(name);
  for (auto& g : *gpus) {
    if (filter != opts_.device_filters.end()) {
      const auto& f = filter->second;
      if (std::find(f.uuids.begin(), f.uuids.end(), g.uuid) != f.uuids.end()) continue;
      if (std::find(f.indexes.begin(), f.indexes.end(), g.index) != f.indexes.end()) continue;
    }
    info.gpus.push_back(std::move(g));
  }
  if (!state_.UpsertNode(std::move(info)).ok()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
  }
}

void Extender::DeleteNode(const Json& node) {
  {
    std::lock_guard<std::mutex> l(lock_mu_);
    node_ours_.erase(MetaString(node, "name"));
  }
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  (void)state_.RemoveNode(MetaString(node, "name"));
}

// Whether a pod event is older than what our last bind of the pod wrote: a version before the
// bind's own write, or the failed mark of a failed attempt (whose failure path released its turn
// and node lock itself). Such an event, delivered late, must not end the turn of a bind that
// came after it: with the turn went that bind's node lock, taken anew.
bool Extender::OlderThanOurBind(const std::string& uid, uint64_t rv) const {
  if (rv == 0) return false;
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  auto rec = pods_.find(uid);
  if (rec != pods_.end() && rv < rec->second.min_rv) return true;
  auto f = failed_rv_.find(uid);
  return f != failed_rv_.end() && rv <= f->second;
}

void Extender::UpsertPod(const Json& pod) {
  std::string uid = MetaString(pod, "uid");
  if (uid.empty()) return;
  std::string phase = Annotation(pod, kBindPhaseAnnotation);
  bool terminated = PodTerminated(pod);
  uint64_t rv = ParseRv(MetaString(pod, "resourceVersion"));
  if ((terminated || phase == "success" || phase == "failed") && !OlderThanOurBind(uid, rv))
    ReleaseTurn(uid);
  std::string node = Annotation(pod, kVgpuNodeAnnotation);
  if (node.empty()) node = PodNodeName(pod);
  auto placement = PlacementFromPod(pod);
  if (!placement.ok()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
  }
  bool claim = false;
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    auto rec = pods_.find(uid);
    if (rec != pods_.end() && rv != 0 && rv < rec->second.min_rv) return;  // stale event
    if (auto f = failed_rv_.find(uid); f != failed_rv_.end()) {
      if (rv != 0 && rv < f->second) return;  // from the failed bind attempt
      failed_rv_.erase(f);
    }
    if (binding_.count(uid)) return;  // our bind decides until it finishes
    bool keep = placement.ok() && placement->has_value() && !node.empty() && !terminated &&
                !(phase == "failed" && PodNodeName(pod).empty());
    if (keep) {
      if (state_.AddPlacement(uid, node, **placement).ok()) {
        PodRecord& r = pods_[uid];
        r.ns = MetaString(pod, "namespace");
        CountQuota(uid, r.ns, **placement);
        r.name = MetaString(pod, "name");
        r.node = node;
        r.placement = **placement;
        claim = phase == "allocating";
      } else {
        std::lock_guard<std::mutex> c(counters_mu_);
        counters_.bad_annotations++;
      }
    } else if (rec != pods_.end() &&
               (terminated || phase == "failed" ||
                (placement.ok() && !placement->has_value() && !PodNodeName(pod).empty()))) {
      (void)state_.RemovePlacement(uid);
      UncountQuota(uid);
      pods_.erase(rec);
    }
  }
  if (claim) {
    // Restart: a pod still allocating holds its node's turn from its bind time.
    auto since = Clock::now();
    std::string bt = Annotation(pod, kBindTimeAnnotation);
    if (long long t = std::atoll(bt.c_str()); t > 0) {
      long long age = static_cast<long long>(std::time(nullptr)) - t;
      if (age > 0) since -= std::chrono::seconds(age);
    }
    ClaimTurnIfFree(node, uid, since);
  }
}

void Extender::DeletePod(const Json& pod) {
  std::string uid = MetaString(pod, "uid");
  if (uid.empty()) return;
  ReleaseTurn(uid);
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  failed_rv_.erase(uid);
  if (binding_.count(uid)) return;
  if (pods_.erase(uid)) (void)state_.RemovePlacement(uid);
  UncountQuota(uid);
}

}  // namespace hami::k8s
