// The node's GPUs as the cluster sees them: virtual device IDs advertised to kubelet, the
// `hami.io/node-nvidia-register` annotation, and the per-container device lists of
// `hami.io/vgpu-devices-to-allocate` (SPEC 2.3). Both annotation formats are the scheduling
// engine's codecs (sched/node_codec.h, sched/annotation.h); this file only maps the node's
// GPUs and configuration onto them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "deviceplugin/config.h"
#include "gpu/gpu.h"
#include "sched/annotation.h"
#include "sched/node_codec.h"

namespace hami::deviceplugin {

inline constexpr const auto& kRegisterAnnotation = sched::kNodeRegisterAnnotation;
inline constexpr char kHandshakeAnnotation[] = "hami.io/node-handshake";
inline constexpr const auto& kToAllocateAnnotation = sched::kDevicesToAllocateAnnotation;
inline constexpr const auto& kAllocatedAnnotation = sched::kDevicesAllocatedAnnotation;
inline constexpr char kBindPhaseAnnotation[] = "hami.io/bind-phase";
inline constexpr char kVgpuNodeAnnotation[] = "hami.io/vgpu-node";

// A GPU the node advertises, with its health as the plugin last saw it.
struct NodeGpu {
  gpu::GpuInfo info;
  bool healthy = true;
};

// The GPUs this node advertises after nodeconfig's filterdevices.
std::vector<NodeGpu> FilterGpus(const std::vector<gpu::GpuInfo>& gpus, const NodeConfig& config);

// "<uuid>::<n>" for n in [0, split), as HAMi names virtual devices; VirtualIdToUuid inverts it
// and also accepts this project's older "<uuid>-<n>" ("" when malformed).
std::string VirtualId(const std::string& uuid, int n);
std::string VirtualIdToUuid(const std::string& id);

// SPEC 2.3 node annotation value: count = split count, devmem = MiB x memory scaling,
// devcore = 100 x core scaling, numa (0 when unknown), mode = the node's operating mode.
// `format` "json" (sched::EncodeNodeRegister, HAMi v2.8+; type = DeviceType(name)) or "text"
// (HAMi <= v2.7: "id,count,devmem,devcore,type,numa,health,index,mode:" per GPU;
// type = LegacyDeviceType(name)).
std::string EncodeRegisterAnnotation(const std::vector<NodeGpu>& gpus, const NodeConfig& config,
                                     const std::string& format = "json");
// The type as HAMi v2.8+ registers it: the NVML name when it starts with "NVIDIA"
// ("NVIDIA H100 80GB HBM3"), else "NVIDIA-" + the name ("NVIDIA-Tesla V100-SXM2-16GB").
std::string DeviceType(const std::string& nvml_name);
// HAMi <= v2.7: always "NVIDIA-" + the NVML name ("NVIDIA-NVIDIA H100 80GB HBM3").
std::string LegacyDeviceType(const std::string& nvml_name);

// One device of a container in the to-allocate / allocated annotations.
using ContainerDevice = sched::DeviceAlloc;
using ContainerDevices = sched::ContainerDevices;

// sched::DecodeContainerDevices, and every device's cores must be a percentage (<= 100): the
// device plugin hands them to libvgpu.so as CUDA_DEVICE_SM_LIMIT, while the scheduler's codec
// accepts up to 100 x 100. Errors: kInvalidArgument naming the container segment and device.
StatusOr<std::vector<ContainerDevices>> ParsePodDevices(std::string_view value);

}  // namespace hami::deviceplugin
