// spdlog behind common/log.h.
#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace hami::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

struct State {
  std::mutex mu;
  std::shared_ptr<spdlog::logger> logger;
  Sink sink;
};

State& GetState() {
  static State* s = new State();  // never destroyed: logging may happen during exit
  return *s;
}

std::shared_ptr<spdlog::logger> MakeLogger(std::string_view component) {
  auto l = std::make_shared<spdlog::logger>(std::string(component),
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %n: %v", spdlog::pattern_time_type::utc);
  l->set_level(spdlog::level::trace);  // filtering happens here, in Enabled()
  l->flush_on(spdlog::level::trace);
  return l;
}

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      break;
  }
  return spdlog::level::off;
}

}  // namespace

StatusOr<Level> ParseLevel(std::string_view text) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "debug" || t == "0") return Level::kDebug;
  if (t == "info" || t == "1") return Level::kInfo;
  if (t == "warn" || t == "warning" || t == "2") return Level::kWarn;
  if (t == "error" || t == "3") return Level::kError;
  if (t == "off" || t == "4") return Level::kOff;
  return InvalidArgument("log level \"" + std::string(text.substr(0, 32)) +
                         "\": expected debug, info, warn, error or off");
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      break;
  }
  return "off";
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

Status SetLevel(std::string_view text) {
  auto l = ParseLevel(text);
  if (!l.ok()) return l.status();
  SetLevel(*l);
  return Status::Ok();
}

void Init(std::string_view component) {
  {
    State& s = GetState();
    std::lock_guard lock(s.mu);
    s.logger = MakeLogger(component);
  }
  if (const char* env = std::getenv("HAMI_LOG_LEVEL"); env != nullptr && *env != '\0') {
    if (Status st = SetLevel(std::string_view(env)); !st.ok()) {
      Write(Level::kWarn, "HAMI_LOG_LEVEL ignored: " + st.message());
    }
  }
}

void SetSinkForTesting(Sink sink) {
  State& s = GetState();
  std::lock_guard lock(s.mu);
  s.sink = std::move(sink);
}

bool Enabled(Level level) {
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Write(Level level, std::string_view message) {
  State& s = GetState();
  std::lock_guard lock(s.mu);
  if (s.sink) {
    s.sink(level, message);
    return;
  }
  if (!s.logger) s.logger = MakeLogger("hami");
  s.logger->log(ToSpd(level), "{}", message);
}

}  // namespace hami::log
