// The node's GPUs as the cluster sees them: virtual device IDs advertised to kubelet, the
// `hami.io/node-nvidia-register` annotation, and the per-container device lists of
// `hami.io/vgpu-devices-to-allocate` (SPEC 2.3).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "deviceplugin/config.h"
#include "deviceplugin/gpu_backend.h"

namespace hami::deviceplugin {

inline constexpr char kRegisterAnnotation[] = "hami.io/node-nvidia-register";
inline constexpr char kHandshakeAnnotation[] = "hami.io/node-handshake";
inline constexpr char kToAllocateAnnotation[] = "hami.io/vgpu-devices-to-allocate";
inline constexpr char kAllocatedAnnotation[] = "hami.io/vgpu-devices-allocated";
inline constexpr char kBindPhaseAnnotation[] = "hami.io/bind-phase";
inline constexpr char kVgpuNodeAnnotation[] = "hami.io/vgpu-node";

// A GPU the node advertises, with its health as the plugin last saw it.
struct NodeGpu {
  GpuInfo info;
  bool healthy = true;
};

// The GPUs this node advertises after nodeconfig's filterdevices.
std::vector<NodeGpu> FilterGpus(const std::vector<GpuInfo>& gpus, const NodeConfig& config);

// "<uuid>-<n>" for n in [0, split); VirtualIdToUuid inverts it ("" when malformed).
std::string VirtualId(const std::string& uuid, int n);
std::string VirtualIdToUuid(const std::string& id);

// SPEC 2.3 node annotation value (JSON list).
std::string EncodeRegisterAnnotation(const std::vector<NodeGpu>& gpus, const NodeConfig& config);
// "NVIDIA-" prefixed NVML name, as HAMi reports types.
std::string DeviceType(const std::string& nvml_name);

// One device of a container in the to-allocate / allocated annotations.
struct ContainerDevice {
  std::string uuid;
  std::string type;
  long long memory_mib = 0;
  long long cores = 0;
};
using ContainerDevices = std::vector<ContainerDevice>;

// Parses `UUID,Type,mem,cores:...;...;` into one list per container segment.
// Errors: kInvalidArgument naming the segment and device that are malformed.
StatusOr<std::vector<ContainerDevices>> ParsePodDevices(const std::string& value);
std::string EncodePodDevices(const std::vector<ContainerDevices>& containers);

}  // namespace hami::deviceplugin
