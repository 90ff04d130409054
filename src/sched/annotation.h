// Codec of the pod annotations `hami.io/vgpu-devices-to-allocate` and
// `hami.io/vgpu-devices-allocated` (SPEC.md 2.3), byte-compatible with HAMi:
// one `;`-terminated segment per container, init containers first, each device
// `UUID,Type,usedMemMiB,usedCores:`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sched/model.h"

namespace hami::sched {

inline constexpr char kDevicesToAllocateAnnotation[] = "hami.io/vgpu-devices-to-allocate";
inline constexpr char kDevicesAllocatedAnnotation[] = "hami.io/vgpu-devices-allocated";

// Errors: kInvalidArgument when a UUID or type is empty or contains ',', ':' or ';', or a
// number is negative (the annotation could not be decoded again).
StatusOr<std::string> EncodeContainerDevices(const std::vector<ContainerDevices>& containers);
StatusOr<std::string> EncodePlacement(const PodPlacement& placement);

// Strict: every segment must end with ';', every device with ':', a device has at least four
// fields (later ones are ignored, as HAMi v2.10+ does), UUID and type are non-empty, memory and
// cores are plain decimal integers that fit (cores <= 100 x 100). The empty string is zero
// containers. Errors: kInvalidArgument naming the container (0-based segment), the device and the
// bad part.
StatusOr<std::vector<ContainerDevices>> DecodeContainerDevices(std::string_view text);
// As above and wraps the result with `num_init` leading init containers (kInvalidArgument when
// there are fewer segments than that).
StatusOr<PodPlacement> DecodePlacement(std::string_view text, int32_t num_init);

}  // namespace hami::sched
