// A simulated kubelet with the node half of the bind/Allocate protocol (docs/bind-allocate.md)
// for tests: admits pods bound to its nodes one at a time in the order it sees them and calls
// Allocate for every container that asks for GPUs. Allocate, like the real one, gets only the
// device count: it serves the single pod on the node in bind-phase `allocating` whose next
// unserved container asks for that many devices, empties that container's segment of
// `hami.io/vgpu-devices-to-allocate`, and sets bind-phase `success` once all are served. It
// fails (never guesses) when not exactly one pod qualifies. Afterwards the test can check that
// every container got the devices the scheduler chose for it (nothing swapped).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client/kube_client.h"
#include "k8s/client/reflector.h"

namespace hami::k8s::testing {

class SimKubelet {
 public:
  explicit SimKubelet(KubeClient* client, std::string resource_count = "nvidia.com/gpu");
  ~SimKubelet();
  void Start();
  void Stop();

  struct Served {
    std::string pod_uid;     // the pod kubelet was admitting
    std::string served_uid;  // the pod Allocate served
    std::string devices;     // the segment handed out
    std::string expected;    // the segment the scheduler wrote for that container
  };
  std::vector<Served> served() const;
  int failures() const { return failures_.load(); }
  int admitted() const { return admitted_.load(); }
  std::vector<std::string> errors() const;

 private:
  void Loop();
  void Admit(const Json& pod);
  // Returns the segment served, or an error.
  StatusOr<std::pair<std::string, std::string>> Allocate(const std::string& node, int count);

  KubeClient* client_;
  std::string count_name_;
  std::unique_ptr<Reflector> pods_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0}, admitted_{0};
  std::set<std::string> done_;
  mutable std::mutex mu_;
  std::vector<Served> served_;
  std::vector<std::string> errors_;
};

// Splits an annotation into its container segments (without the trailing ';').
std::vector<std::string> Segments(const std::string& annotation);

}  // namespace hami::k8s::testing
