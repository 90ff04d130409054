#include "hostd/proc.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace hami::hostd {
namespace {

struct StatFields {
  char state = '?';
  uint64_t start_ticks = 0;
};

std::optional<StatFields> ReadStat(int pid) {
  if (pid <= 0) return std::nullopt;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(n));
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  size_t close_paren = text.rfind(')');
  if (close_paren == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close_paren + 1);
  // rest = " S ppid ..." ; field 3 is the state, field 22 the start time.
  StatFields out;
  int field = 2;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t start = i;
    while (i < rest.size() && rest[i] != ' ') ++i;
    if (start == i) break;
    ++field;
    std::string_view tok = rest.substr(start, i - start);
    if (field == 3) out.state = tok[0];
    if (field == 22) {
      out.start_ticks = std::strtoull(std::string(tok).c_str(), nullptr, 10);
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> ProcessStartTicks(int pid) {
  auto st = ReadStat(pid);
  if (!st || st->state == 'Z' || st->state == 'X') return std::nullopt;
  return st->start_ticks;
}

ProcessRef Self() {
  ProcessRef p;
  p.pid = getpid();
  p.start_ticks = ProcessStartTicks(p.pid).value_or(0);
  return p;
}

std::optional<uint32_t> ProcessUid(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Uid:", 0) != 0) continue;
    std::istringstream in(line.substr(4));
    uint64_t uid = 0;
    if (in >> uid && uid <= UINT32_MAX) return static_cast<uint32_t>(uid);
    return std::nullopt;
  }
  return std::nullopt;
}

bool IsAlive(const ProcessRef& p) {
  auto start = ProcessStartTicks(p.pid);
  if (!start) return false;
  return p.start_ticks == 0 || *start == p.start_ticks;
}

}  // namespace hami::hostd
