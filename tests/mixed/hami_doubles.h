// Test doubles of HAMi's components for the mixed-deployment tests (issue 13): a kubelet with
// HAMi's NVIDIA device plugin behind it, and HAMi's scheduler's Bind. They follow what HAMi's
// source does (pkg/util/nodelock/nodelock.go, pkg/util/util.go GetPendingPod /
// GetAllocatePodByNode, the plugin's Allocate and PodAllocationTrySuccess/Failed, the
// scheduler's Bind), written from those facts, not copied.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client/kube_client.h"
#include "k8s/client/reflector.h"
#include "k8s/testing/sim_kubelet.h"  // Segments

namespace hami::mixed {

using k8s::Json;
using k8s::KubeClient;

inline constexpr char kLockKey[] = "hami.io/mutex.lock";
inline constexpr char kToAllocate[] = "hami.io/vgpu-devices-to-allocate";
inline constexpr char kAllocated[] = "hami.io/vgpu-devices-allocated";

// HAMi's ParseNodeLock: no ',' -> a bare time; otherwise exactly three parts.
struct HamiLock {
  bool ok = false;
  std::chrono::system_clock::time_point time;
  std::string ns, name;
};
HamiLock ParseHamiLock(const std::string& value);

// HAMi's ReleaseNodeLock: removes the lock when it ends in ",<ns>,<name>" (or always when
// `skip_owner_check`), conditional on the node's resourceVersion, retried.
Status HamiReleaseNodeLock(KubeClient& c, const std::string& node, const std::string& ns,
                           const std::string& name, bool skip_owner_check);

// What one container got.
struct Served {
  std::string admitted_uid;  // the pod kubelet was admitting
  std::string served_uid;    // the pod whose devices Allocate handed out
  std::string devices;       // what was handed out
  std::string expected;      // what the scheduler wrote for that container
};

// kubelet admitting bound pods one at a time and HAMi's device plugin serving each GPU
// container: the pod is the one the node lock names, else (no lock) the first pod on the node
// in bind-phase allocating with a bind-time; its next non-empty segment is handed out and
// erased; once none is left, bind-phase success and the lock is released (owner-checked); on
// an error bind-phase failed and the lock released.
class SimHamiPlugin {
 public:
  explicit SimHamiPlugin(KubeClient* client);
  ~SimHamiPlugin();
  void Start();
  void Stop();
  std::vector<Served> served() const;
  std::vector<std::string> errors() const;
  int failures() const { return failures_.load(); }
  // Allocate calls that found no lock and fell back to HAMi's pod list.
  int lock_misses() const { return lock_misses_.load(); }

 private:
  void Loop();
  void Admit(const Json& pod);
  StatusOr<Json> PendingPod(const std::string& node);
  StatusOr<std::pair<std::string, std::string>> Allocate(const std::string& node);

  KubeClient* client_;
  std::unique_ptr<k8s::Reflector> pods_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0}, lock_misses_{0};
  std::set<std::string> done_;
  mutable std::mutex mu_;
  std::vector<Served> served_;
  std::vector<std::string> errors_;
};

// HAMi's scheduler's Bind: LockNode (take a free lock; break one that expired or whose pod is
// gone; otherwise fail "locked within"), then the pod's annotations (devices, vgpu-node,
// bind-phase allocating, bind-time), then the binding; the lock is released when a step fails.
// One difference: HAMi checks the expiry outside its per-node mutex and then removes whatever
// lock is there, so two binds that both saw one expired lock can each take the node (the second
// removing the first's fresh lock); this project's plugin then refuses both pods rather than
// guess. The double holds its per-node mutex over the whole of LockNode, so the test measures
// the pair, not that race.
class SimHamiScheduler {
 public:
  SimHamiScheduler(KubeClient* client, std::chrono::milliseconds expire)
      : client_(client), expire_(expire) {}
  Status LockNode(const std::string& node, const std::string& ns, const std::string& name);
  // One Bind call; kube-scheduler retries a failed one.
  Status Bind(const Json& pod, const std::string& node, const std::string& devices);
  int locked_refusals() const { return refusals_.load(); }
  int broken_locks() const { return broken_.load(); }

 private:
  KubeClient* client_;
  std::chrono::milliseconds expire_;
  std::atomic<int> refusals_{0}, broken_{0};
  std::mutex nodes_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> node_mu_;
};

}  // namespace hami::mixed
