// Serves kubelet's Allocate for the one pod the scheduler extender is binding to this node
// (docs/bind-allocate.md): finds it, builds the container's environment, mounts and limits
// file, and records the container as served. No gRPC here, so it is tested directly.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "abi/node_layout.h"
#include "common/hook_layout.h"
#include "common/status.h"
#include "deviceplugin/config.h"
#include "deviceplugin/devices.h"
#include "deviceplugin/kube_api.h"

namespace hami::deviceplugin {

struct MountSpec {
  std::string container_path;
  std::string host_path;
  bool read_only = true;
  bool operator==(const MountSpec&) const = default;
};

struct ContainerResponse {
  std::map<std::string, std::string> envs;
  std::vector<MountSpec> mounts;
};

struct AllocatorOptions {
  std::string node_name;
  std::string hook_path = "/usr/local";  // global.gpuHookPath
  NodeConfig config;
  std::vector<std::string> node_uuids;  // when set, annotations naming other GPUs are refused
  int max_patch_attempts = 5;
};

// Where things live under the hook path (host paths; containers see the same paths).
using common::HookLayout;
using common::LayoutFor;

using abi::kCacheFileName;
using abi::kLimitsFileName;
using abi::kLimitsMountPath;
using abi::kPodMetaFileName;

class Allocator {
 public:
  Allocator(AllocatorOptions options, KubeApi* api) : opts_(std::move(options)), api_(api) {}

  // Serves one container that kubelet gave `device_ids` (virtual IDs). Errors:
  // kFailedPrecondition when not exactly one pod on this node is waiting with a container of
  // that many devices (the message lists what was found), kInvalidArgument for a malformed
  // annotation, kInternal when files cannot be written, kUnavailable/kAborted from the API.
  StatusOr<ContainerResponse> AllocateContainer(const std::vector<std::string>& device_ids);

  // The UUIDs the waiting pod's next container will get when it asks for `size` devices, or
  // an empty list when there is no unique such pod (used for GetPreferredAllocation).
  std::vector<std::string> PendingUuids(int size);

 private:
  struct Candidate {
    PodInfo pod;
    std::vector<ContainerDevices> segments;
    std::size_t index = 0;  // the container segment to serve
  };
  StatusOr<Candidate> FindCandidate(std::size_t size);
  StatusOr<ContainerResponse> Build(const Candidate& c) const;
  Status WriteFiles(const Candidate& c, const ContainerResponse& r) const;

  AllocatorOptions opts_;
  KubeApi* api_;
};

// Removes the container and allocation directories of pods that no longer exist: those whose
// pod UID is not in `live_pod_uids` and that have not changed for `min_age`. Returns how many
// directories were removed. Errors: kInternal naming a directory that cannot be removed.
StatusOr<int> CollectGarbage(const std::string& hook_path,
                             const std::vector<std::string>& live_pod_uids,
                             std::chrono::seconds min_age);

}  // namespace hami::deviceplugin
