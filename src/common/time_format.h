// RFC 3339 timestamps as Kubernetes and HAMi write them ("2026-01-02T15:04:05Z", Go's
// time.RFC3339 with a local offset such as "+08:00", optional fractional seconds).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hami::common {

using SystemTime = std::chrono::system_clock::time_point;

// UTC, whole seconds, "Z" suffix: what the Kubernetes API server writes.
std::string FormatRfc3339(SystemTime t);
std::string NowRfc3339();

// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|z|+HH:MM|-HH:MM)"; 't' or ' ' for 'T' too.
// Errors: kInvalidArgument naming the text and what is wrong with it.
StatusOr<SystemTime> ParseRfc3339(std::string_view text);

}  // namespace hami::common
