// Helpers shared by the extender's translation units (extender*.cc); not an interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace hami::k8s::extender_internal {

using Clock = std::chrono::steady_clock;

// A resourceVersion as a number (0 when it is not one: then it orders nothing).
inline uint64_t ParseRv(const std::string& s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

inline std::string NowSeconds() {
  return std::to_string(static_cast<long long>(std::time(nullptr)));
}

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace hami::k8s::extender_internal
