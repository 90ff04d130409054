// In-memory KubeApi for tests: pods with resource versions, conflict injection, and a record
// of node annotations.
#pragma once

#include <mutex>

#include "deviceplugin/kube_api.h"

namespace hami::deviceplugin {

class FakeKubeApi final : public KubeApi {
 public:
  void AddPod(PodInfo pod) {
    std::lock_guard lock(mu_);
    if (pod.resource_version.empty()) pod.resource_version = std::to_string(++version_);
    pods_.push_back(std::move(pod));
  }
  std::optional<PodInfo> GetPod(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    for (const auto& p : pods_) {
      if (p.ns == ns && p.name == name) return p;
    }
    return std::nullopt;
  }
  // The next `n` conditional pod patches fail with kAborted after bumping the version, as if
  // someone else had written the pod in between.
  void InjectConflicts(int n) {
    std::lock_guard lock(mu_);
    conflicts_ = n;
  }
  // The next `n` pod lists fail with kUnavailable.
  void InjectListFailures(int n) {
    std::lock_guard lock(mu_);
    list_failures_ = n;
  }
  std::map<std::string, std::string> NodeAnnotations(const std::string& node) {
    std::lock_guard lock(mu_);
    return nodes_[node];
  }
  int node_patches() {
    std::lock_guard lock(mu_);
    return node_patches_;
  }

  StatusOr<std::vector<PodInfo>> ListPodsOnNode(const std::string& node) override {
    std::lock_guard lock(mu_);
    if (list_failures_ > 0) {
      --list_failures_;
      return Unavailable("API server unavailable (injected)");
    }
    std::vector<PodInfo> out;
    for (const auto& p : pods_) {
      if (p.node_name == node) out.push_back(p);
    }
    return out;
  }
  Status PatchPodAnnotations(const std::string& ns, const std::string& name,
                             const std::string& resource_version,
                             const AnnotationPatch& patch) override {
    std::lock_guard lock(mu_);
    for (auto& p : pods_) {
      if (p.ns != ns || p.name != name) continue;
      if (conflicts_ > 0) {
        --conflicts_;
        p.resource_version = std::to_string(++version_);
        return Aborted("conflict (injected)");
      }
      if (!resource_version.empty() && resource_version != p.resource_version) {
        return Aborted("conflict: pod " + ns + "/" + name + " is at " + p.resource_version);
      }
      for (const auto& [k, v] : patch) {
        if (v) {
          p.annotations[k] = *v;
        } else {
          p.annotations.erase(k);
        }
      }
      p.resource_version = std::to_string(++version_);
      return Status::Ok();
    }
    return NotFound("pod " + ns + "/" + name);
  }
  Status PatchNodeAnnotations(const std::string& node, const AnnotationPatch& patch) override {
    return PatchNodeAnnotationsAt(node, "", patch);
  }
  StatusOr<NodeMeta> GetNode(const std::string& node) override {
    std::lock_guard lock(mu_);
    return NodeMeta{nodes_[node], std::to_string(node_versions_[node])};
  }
  Status PatchNodeAnnotationsAt(const std::string& node, const std::string& resource_version,
                                const AnnotationPatch& patch) override {
    std::lock_guard lock(mu_);
    if (!resource_version.empty() && resource_version != std::to_string(node_versions_[node])) {
      return Aborted("conflict: node " + node + " is at " + std::to_string(node_versions_[node]));
    }
    ++node_patches_;
    ++node_versions_[node];
    for (const auto& [k, v] : patch) {
      if (v) {
        nodes_[node][k] = *v;
      } else {
        nodes_[node].erase(k);
      }
    }
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::vector<PodInfo> pods_;
  std::map<std::string, std::map<std::string, std::string>> nodes_;
  std::map<std::string, int> node_versions_;
  int version_ = 100;
  int conflicts_ = 0;
  int list_failures_ = 0;
  int node_patches_ = 0;
};

}  // namespace hami::deviceplugin
