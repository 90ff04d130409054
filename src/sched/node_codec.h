// Codec of the node annotation `hami.io/node-nvidia-register` (SPEC.md 2.3): the device
// plugin writes the GPUs of its node, the scheduler reads them. JSON list form on write;
// HAMi's older text form `ID,count,devmem,devcore,type,numa,health[,index,mode]:` on read
// (also the oldest one without numa).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sched/model.h"

namespace hami::sched {

inline constexpr char kNodeRegisterAnnotation[] = "hami.io/node-nvidia-register";

// JSON list of {"id","index","count","devmem","devcore","type","numa","mode","health"}.
std::string EncodeNodeRegister(const std::vector<GpuInfo>& gpus);

// Accepts the JSON list (first non-blank character '[') or the legacy text form. JSON: id,
// count, devmem, devcore and type are required; HAMi writes every key with Go's omitempty, so
// a missing health means false, a missing index or numa 0, a missing or empty mode
// "hami-core"; unknown keys (devicevendor, custominfo, migtemplate...) are ignored. Text: empty
// segments (":", "::") are no device, as in HAMi's DecodeNodeDevices; "" is no GPU. Errors:
// kInvalidArgument naming the device (position and id when known) and the field: malformed
// JSON/text, wrong JSON types, negative or zero count/devmem/devcore, unknown mode, duplicate
// id, id or type not UTF-8.
StatusOr<std::vector<GpuInfo>> DecodeNodeRegister(std::string_view text);

}  // namespace hami::sched
