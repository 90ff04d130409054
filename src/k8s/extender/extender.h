// The scheduler extender's logic without HTTP: cluster state fed by node and pod watches,
// kube-scheduler's filter / prioritize / bind verbs (extender v1 JSON in and out), the per-node
// bind turn of docs/bind-allocate.md and the scheduler metrics (SPEC 2.8).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "k8s/client/kube_client.h"
#include "k8s/client/reflector.h"
#include "k8s/extender/pod_request.h"
#include "sched/engine.h"
#include "sched/quota.h"

namespace hami::k8s {

// GPUs a node's configuration (nodeconfig filterdevices) hides from scheduling.
struct DeviceFilter {
  std::vector<std::string> uuids;
  std::vector<int> indexes;
};

// Whether Bind takes HAMi's node lock hami.io/mutex.lock (docs/bind-allocate.md, "Next to
// HAMi's device plugin"): kAuto on nodes whose device plugin is not this project's (told by the
// node's handshake annotation), kHami on every node, kOff never.
enum class NodeLockMode { kAuto, kHami, kOff };
// "auto" | "hami" | "off". Errors: kInvalidArgument naming the value.
StatusOr<NodeLockMode> ParseNodeLockMode(const std::string& text);
// When the node's `hami.io/node-handshake` is in this project's device plugin's form,
// "Reported_<YYYY-MM-DD HH:MM:SS>" (UTC), that time; HAMi's plugin writes "Reported <Go time>".
std::optional<std::chrono::system_clock::time_point> OurPluginHandshake(const Json& node);
// This project's plugin refreshes its handshake every 30 s; one older than three refreshes (or
// from the future by as much) no longer proves it runs there (HAMi's newer plugins do not
// rewrite the handshake, so one left behind by a replaced plugin must age out).
inline constexpr std::chrono::seconds kOurHandshakeFresh{90};
// True when the node's handshake is this project's plugin's and fresh at `now`.
bool NodeRunsOurDevicePlugin(const Json& node, std::chrono::system_clock::time_point now);

struct ExtenderOptions {
  ResourceNames names;
  double memory_factor = 1;
  sched::SchedulerConfig sched;  // defaults and policies
  std::string scheduler_name = "hami-scheduler";
  // HAMi-compatible: filter answers only the best node (kube-scheduler then cannot rank).
  bool single_node_filter = false;
  // How long a bind waits for its node's turn (keep below kube-scheduler's extender timeout).
  std::chrono::milliseconds bind_wait_timeout{20000};
  // A pod `allocating` longer than this is marked failed and its node's turn released.
  std::chrono::milliseconds allocate_timeout{60000};
  std::chrono::milliseconds reaper_interval{1000};
  std::map<std::string, DeviceFilter> device_filters;  // node name -> hidden GPUs
  std::string component = "hami-scheduler";
  bool record_events = true;
  NodeLockMode node_lock = NodeLockMode::kAuto;
  // HAMi's NodeLockTimeout: a lock older than this is broken ($HAMI_NODELOCK_EXPIRE, 5 min).
  std::chrono::milliseconds node_lock_expire{300000};
  // Enforce HAMi's GPU quotas (limits.<resource> of ResourceQuota objects, docs/quotas.md).
  bool quotas = true;
};

struct ExtenderCounters {
  uint64_t filter_calls = 0, prioritize_calls = 0, bind_calls = 0;
  uint64_t bind_ok = 0, bind_failed = 0, bind_turn_timeouts = 0, allocate_timeouts = 0;
  uint64_t node_locks_taken = 0, node_locks_broken = 0, node_locks_busy = 0;
  uint64_t bad_requests = 0, bad_annotations = 0, bad_quotas = 0;
  double filter_seconds = 0, prioritize_seconds = 0, bind_seconds = 0;
};

class Extender {
 public:
  Extender(ExtenderOptions options, KubeClient* client);
  ~Extender();  // Stops.

  // Starts the node and pod reflectors and the allocate-timeout reaper.
  void Start();
  void Stop();
  // True once nodes and pods have been listed and replayed.
  bool Ready() const;
  bool WaitReady(std::chrono::milliseconds timeout) const;

  // Cluster events (the reflectors call these; tests may too).
  void UpsertNode(const Json& node);
  void DeleteNode(const Json& node);
  void UpsertPod(const Json& pod);
  void DeletePod(const Json& pod);
  void UpsertQuota(const Json& quota);  // a ResourceQuota (extender_quota.cc)
  void DeleteQuota(const Json& quota);

  // kube-scheduler verbs. Errors (kInvalidArgument) only for bodies that are not extender
  // arguments at all; problems with the pod go into the result's "error" field.
  StatusOr<Json> Filter(const Json& args);      // ExtenderArgs -> ExtenderFilterResult
  StatusOr<Json> Prioritize(const Json& args);  // ExtenderArgs -> HostPriorityList
  StatusOr<Json> Bind(const Json& args);        // ExtenderBindingArgs -> ExtenderBindingResult

  // Prometheus text exposition of the scheduler metrics.
  std::string Metrics() const;

  // Quotas (docs/quotas.md). Ok unless the resolved pod asks more than the whole quota of its
  // namespace, so it could never be scheduled (the webhook denies it); kResourceExhausted
  // naming the namespace, resource and numbers otherwise.
  Status CheckQuotaEverFits(const std::string& ns, const sched::ResolvedPod& pod) const;
  // Limits and usage of every namespace with a quota.
  std::vector<sched::QuotaBook::Row> QuotaSnapshot() const;

  // Introspection for tests and the benchmark.
  std::map<std::string, std::vector<sched::GpuUsage>> UsageSnapshot() const;
  std::size_t node_count() const;
  std::size_t placement_count() const;
  std::string TurnHolder(const std::string& node) const;  // pod uid or ""
  ExtenderCounters counters() const;
  const ExtenderOptions& options() const { return opts_; }

 private:
  struct PodRecord {
    std::string ns, name, node;
    sched::PodPlacement placement;
    uint64_t min_rv = 0;  // ignore watch events older than our own write
  };
  struct NodeTurn {
    std::string holder;  // pod uid
    std::chrono::steady_clock::time_point since;
    std::deque<uint64_t> waiters;
  };

  StatusOr<Json> FilterOrPrioritize(const Json& args, bool prioritize);
  Status AcquireTurn(const std::string& node, const std::string& uid);
  bool OlderThanOurBind(const std::string& uid, uint64_t rv) const;
  void ReleaseTurn(const std::string& uid);
  void ClaimTurnIfFree(const std::string& node, const std::string& uid,
                       std::chrono::steady_clock::time_point since);
  void ReaperLoop();
  void FailAllocation(const std::string& ns, const std::string& name, const std::string& uid,
                      const std::string& why);
  void Event(const Json& pod, const std::string& type, const std::string& reason,
             const std::string& message);
  StatusOr<Json> LookupPod(const std::string& ns, const std::string& name, const std::string& uid);
  // Bind's steps: count the pod's GPUs on the node (on error the turn is released), write the
  // annotations and the binding, then settle the count with the outcome.
  StatusOr<std::string> ReservePlacement(const std::string& ns, const std::string& name,
                                         const std::string& uid, const std::string& node,
                                         const sched::PodRequest& req);
  Status WriteBinding(const std::string& ns, const std::string& name, const std::string& uid,
                      const std::string& node, const std::string& encoded, uint64_t* written_rv);
  void SettleBind(const std::string& uid, const Status& s, uint64_t written_rv);
  // HAMi's node lock (extender_nodelock.cc). TakeHamiLock waits for another pod's live lock
  // until `deadline` and breaks a stale one; returns the value written. ReleaseHamiLock removes
  // the lock only while it still has exactly that value.
  bool WantsHamiLock(const std::string& node);
  StatusOr<std::string> TakeHamiLock(const std::string& node, const std::string& ns,
                                     const std::string& name,
                                     std::chrono::steady_clock::time_point deadline);
  bool HamiLockBreakable(const std::string& value, const std::string& ns, const std::string& name,
                         std::string* why);
  void ReleaseHamiLock(const std::string& node, const std::string& value);
  void ReleaseQueuedHamiLocks();
  // Bind's lock step and the binding write, undoing the lock when the write fails.
  Status LockAndWriteBinding(const std::string& ns, const std::string& name, const std::string& uid,
                             const std::string& node, const std::string& encoded,
                             uint64_t* written_rv, std::chrono::steady_clock::time_point deadline);
  // Quota hooks, called with state_mu_ held exclusively (extender_quota.cc).
  void CountQuota(const std::string& uid, const std::string& ns,
                  const sched::PodPlacement& placement);
  void UncountQuota(const std::string& uid);
  // Ok when the quota state can be trusted: quotas off, or quotas and pods listed.
  Status QuotasSynced() const;

  ExtenderOptions opts_;
  KubeClient* client_;
  sched::Engine engine_;

  mutable std::shared_mutex state_mu_;
  sched::ClusterState state_;
  sched::QuotaBook quotas_;  // namespace quotas and the usage of placed pods, under state_mu_
  std::unordered_map<std::string, PodRecord> pods_;  // uid -> record (placed pods)
  std::set<std::string> binding_;                    // uids with a bind in flight
  // After a failed bind: ignore watch events of the pod older than our "failed" write, so the
  // delayed `allocating` event of that attempt cannot count it again.
  std::unordered_map<std::string, uint64_t> failed_rv_;

  mutable std::mutex turn_mu_;
  std::condition_variable turn_cv_;
  std::unordered_map<std::string, NodeTurn> turns_;       // node -> turn
  std::unordered_map<std::string, std::string> holding_;  // uid -> node
  uint64_t next_ticket_ = 0;

  struct HeldLock {
    std::string node, value;
  };
  std::mutex lock_mu_;  // guards the three below (a leaf)
  // node -> the time of this project's plugin's handshake (nullopt: another form)
  std::unordered_map<std::string, std::optional<std::chrono::system_clock::time_point>> node_ours_;
  std::unordered_map<std::string, HeldLock> hami_locks_;  // uid -> the lock Bind wrote
  std::vector<HeldLock> lock_releases_;                   // for the reaper to remove
  std::atomic<bool> releases_pending_{false};
  std::mutex release_mu_;  // one ReleaseQueuedHamiLocks at a time (taken before lock_mu_)

  mutable std::mutex counters_mu_;
  ExtenderCounters counters_;

  std::unique_ptr<Reflector> node_reflector_, pod_reflector_, quota_reflector_;
  std::thread reaper_;
  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
};

// Case-insensitive member lookup (Go's encoding/json accepts any case: "Pod" and "pod").
const Json* FindField(const Json& obj, std::string_view name);

}  // namespace hami::k8s
