// The pure half of state.cc: which limit a visible device gets (by UUID when the limits file
// names UUIDs, else by position), CUDA_VISIBLE_DEVICES as read once into Config, and UUID
// text. No driver calls: unit-tested in state_test.cc.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/cuda_abi.h"
#include "config.h"

namespace hami::vgpu {

struct DeviceLimit {
  uint64_t limit;     // bytes; 0 = unlimited
  uint32_t sm_limit;  // percent; 0 = unlimited
  bool allocated;     // false: the limits file names UUIDs and this device is not among them
};

// The limits of visible ordinal `ordinal` whose UUID is `uuid`. A device outside a UUID list
// gets limit 1 (nothing fits) and allocated = false.
DeviceLimit LimitForDevice(const Config& c, int ordinal, const char* uuid);

// The configuration index (of Config's per-device arrays) that applies to visible ordinal
// `ordinal` with UUID `uuid`: the ordinal itself when the limits file names no UUIDs, else the
// index naming that UUID, or the ordinal when none does.
int ConfigIndexFor(const Config& c, int ordinal, const char* uuid);

// The memory limit the limits file binds to `uuid`; false when the file names no UUIDs or
// not this one.
bool LimitForConfiguredUuid(const Config& c, const char* uuid, uint64_t* limit);

// One entry of CUDA_VISIBLE_DEVICES: a physical index, or a UUID (or UUID prefix).
struct VisibleToken {
  bool is_uuid;
  long index;     // when !is_uuid
  char uuid[96];  // when is_uuid
};

// Splits CUDA_VISIBLE_DEVICES as the driver reads it: comma-separated, leading blanks
// ignored, the list ends at the first entry that is neither an index nor "GPU-...". Returns
// the number of tokens (at most kMaxDevices).
int ParseVisibleDevices(const char* value, VisibleToken (&out)[kMaxDevices]);

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
void FormatUuid(const CUuuid& u, char* out, size_t len);

}  // namespace hami::vgpu
