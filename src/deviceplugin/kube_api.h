// What the device plugin needs from the Kubernetes API: the pods bound to this node and
// annotation patches on pods and on the node. KubeClientAdapter (kube_adapter.h) implements
// it over src/k8s/client; FakeKubeApi (fake_kube_api.h) keeps everything in memory for tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::deviceplugin {

struct ContainerInfo {
  std::string name;
  std::map<std::string, std::string> env;     // literal env values of the spec (no valueFrom)
  std::map<std::string, std::string> limits;  // resource limits (falling back to requests)
};

struct PodInfo {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::string node_name;  // spec.nodeName
  bool deleting = false;  // metadata.deletionTimestamp set
  std::map<std::string, std::string> annotations;
  std::vector<ContainerInfo> containers;  // init containers first, then app containers
};

struct NodeMeta {
  std::map<std::string, std::string> annotations;
  std::string resource_version;
};

// A patch value of nullopt removes the annotation.
using AnnotationPatch = std::map<std::string, std::optional<std::string>>;

class KubeApi {
 public:
  virtual ~KubeApi() = default;
  // Pods whose spec.nodeName is `node`. Errors: kUnavailable.
  virtual StatusOr<std::vector<PodInfo>> ListPodsOnNode(const std::string& node) = 0;
  // Patches annotations when the pod is still at `resource_version` (empty: unconditionally).
  // Errors: kAborted on a resourceVersion conflict, kNotFound, kUnavailable.
  virtual Status PatchPodAnnotations(const std::string& ns, const std::string& name,
                                     const std::string& resource_version,
                                     const AnnotationPatch& patch) = 0;
  // Errors: kNotFound, kUnavailable.
  virtual Status PatchNodeAnnotations(const std::string& node, const AnnotationPatch& patch) = 0;
  // The node's annotations and resourceVersion. Errors: kNotFound, kUnavailable.
  virtual StatusOr<NodeMeta> GetNode(const std::string& node) = 0;
  // As PatchNodeAnnotations, only while the node is still at `resource_version`.
  // Errors: kAborted on a conflict, kNotFound, kUnavailable.
  virtual Status PatchNodeAnnotationsAt(const std::string& node,
                                        const std::string& resource_version,
                                        const AnnotationPatch& patch) = 0;
};

}  // namespace hami::deviceplugin
