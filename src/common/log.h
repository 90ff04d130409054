// The host-side logger (daemons, device plugin, monitor, CLI): levels, one line per message on
// stderr, the level set by a --log-level flag or $HAMI_LOG_LEVEL. spdlog does the writing behind
// this small API. Never linked into libvgpu.so, which keeps its own raw, allocation-free logger.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace hami::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError, kOff };

// "debug", "info", "warn"/"warning", "error", "off" (any case), or 0..4 in that order.
// Errors: kInvalidArgument naming the text and the accepted values.
StatusOr<Level> ParseLevel(std::string_view text);
const char* LevelName(Level level);

void SetLevel(Level level);
Level GetLevel();
// For a --log-level flag. Errors: as ParseLevel; the level is unchanged on error.
Status SetLevel(std::string_view text);
// Names the component in every line and applies $HAMI_LOG_LEVEL when it is set. A bad value is
// reported (as a warning line) and the level stays at info.
void Init(std::string_view component);

// Replaces the output (stderr) with `sink`, for tests; an empty function restores stderr.
using Sink = std::function<void(Level, std::string_view)>;
void SetSinkForTesting(Sink sink);

bool Enabled(Level level);
void Write(Level level, std::string_view message);

template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kError)) Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace hami::log
