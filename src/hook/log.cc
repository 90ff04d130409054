#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

namespace hami::vgpu {

int g_log_level = kLogWarn;

void LogRaw(int level, const char* fmt, ...) {
  static const char* const kNames[] = {"ERROR", "WARN", "WARN", "INFO", "DEBUG"};
  char buf[1024];
  int n = snprintf(buf, sizeof(buf), "[HAMI-vgpu pid %d] %s: ", static_cast<int>(getpid()),
                   kNames[level < 0 ? 0 : (level > 4 ? 4 : level)]);
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len = static_cast<size_t>(n) + static_cast<size_t>(m);
  if (len > sizeof(buf) - 2) len = sizeof(buf) - 2;
  buf[len++] = '\n';
  ssize_t ignored = write(2, buf, len);
  (void)ignored;
}

}  // namespace hami::vgpu
