// Standard base64 (RFC 4648, with padding): kubeconfig *-data fields and admission patches.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace hami::k8s {

std::string Base64Encode(std::string_view data);
// Ignores ASCII whitespace. Errors: kInvalidArgument for other characters or a bad length.
StatusOr<std::string> Base64Decode(std::string_view text);

}  // namespace hami::k8s
