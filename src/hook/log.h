// Raw logging for code that runs inside user processes: format into a stack buffer,
// one write(2) to stderr, level read once at initialisation. Never allocates or locks.
#pragma once

namespace hami::vgpu {

enum LogLevel : int { kLogError = 0, kLogWarn = 2, kLogInfo = 3, kLogDebug = 4 };

// Set once from LIBCUDA_LOG_LEVEL during initialisation; read without synchronisation.
extern int g_log_level;

void LogRaw(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace hami::vgpu

#define VGPU_LOG(level, ...)                                                            \
  do {                                                                                  \
    if ((level) <= ::hami::vgpu::g_log_level) ::hami::vgpu::LogRaw(level, __VA_ARGS__); \
  } while (0)
