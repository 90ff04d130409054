// fakegpu-ctl: inspect and steer the fake GPUs of a state file (see README.md).
//   fakegpu-ctl [--state PATH] [--config PATH] list | set-health <uuid|index> healthy|unhealthy
//   [xid] | reset
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <string>
#include <vector>

#include "fakegpu/config.h"
#include "fakegpu/state.h"

namespace hami::fakegpu {
namespace {

constexpr uint32_t kDefaultXid = 79;  // "GPU has fallen off the bus"

int Usage() {
  fprintf(stderr,
          "usage: fakegpu-ctl [--state PATH] [--config PATH] <command>\n"
          "  list                                         devices, memory use, processes\n"
          "  set-health <uuid|index> healthy|unhealthy [xid]  unhealthy sends an XID event\n"
          "  reset                                        forget processes, timelines, health\n");
  return 2;
}

int FindDevice(const Config& cfg, const std::string& key) {
  for (size_t i = 0; i < cfg.devices.size(); ++i)
    if (strcasecmp(cfg.devices[i].uuid.c_str(), key.c_str()) == 0) return static_cast<int>(i);
  char* end = nullptr;
  long v = strtol(key.c_str(), &end, 10);
  if (!key.empty() && *end == 0 && v >= 0 && v < static_cast<long>(cfg.devices.size()))
    return static_cast<int>(v);
  return -1;
}

int Main(int argc, char** argv) {
  std::string state_path;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--state" || a == "--config") && i + 1 < argc) {
      if (a == "--state")
        state_path = argv[++i];
      else
        setenv("FAKEGPU_CONFIG", argv[++i], 1);
    } else if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return Usage();
  auto cfg = LoadConfig();
  if (!cfg.ok()) {
    fprintf(stderr, "fakegpu-ctl: %s\n", cfg.status().message().c_str());
    return 1;
  }
  if (state_path.empty()) state_path = SharedState::DefaultPath();
  auto st = SharedState::Open(state_path);
  if (!st.ok()) {
    fprintf(stderr, "fakegpu-ctl: %s\n", st.status().message().c_str());
    return 1;
  }
  SharedState& s = **st;
  const std::string& cmd = args[0];
  if (cmd == "list" && args.size() == 1) {
    for (size_t i = 0; i < cfg->devices.size(); ++i) {
      const DeviceConfig& d = cfg->devices[i];
      int dev = static_cast<int>(i);
      Health h = s.GetHealth(dev);
      printf(
          "GPU %zu %s \"%s\" used=%lluMiB total=%lluMiB health=%s xid=%u busy_ns=%llu util=%u%%\n",
          i, d.uuid.c_str(), d.name.c_str(),
          static_cast<unsigned long long>(s.DeviceUsed(dev) >> 20),
          static_cast<unsigned long long>(d.mem_bytes >> 20), h.healthy ? "healthy" : "unhealthy",
          h.xid, static_cast<unsigned long long>(s.BusyNsTotal(dev)),
          s.Utilization(dev, MonotonicNs(), 100000000ull));
      for (const ProcessUsage& p : s.Processes(dev))
        printf("  pid=%d used=%lluMiB used_bytes=%llu\n", static_cast<int>(p.pid),
               static_cast<unsigned long long>(p.used >> 20),
               static_cast<unsigned long long>(p.used));
    }
    return 0;
  }
  if (cmd == "set-health" && (args.size() == 3 || args.size() == 4)) {
    int dev = FindDevice(*cfg, args[1]);
    if (dev < 0) {
      fprintf(stderr, "fakegpu-ctl: no device '%s'\n", args[1].c_str());
      return 1;
    }
    bool healthy = args[2] == "healthy";
    if (!healthy && args[2] != "unhealthy") return Usage();
    uint32_t xid = kDefaultXid;
    if (args.size() == 4) {
      char* end = nullptr;
      unsigned long v = strtoul(args[3].c_str(), &end, 10);
      if (args[3].empty() || *end != 0 || v > 0xffffffffUL) {
        fprintf(stderr, "fakegpu-ctl: bad xid '%s'\n", args[3].c_str());
        return 1;
      }
      xid = static_cast<uint32_t>(v);
    }
    s.SetHealth(dev, healthy, xid);
    return 0;
  }
  if (cmd == "reset" && args.size() == 1) {
    s.Reset();
    return 0;
  }
  return Usage();
}

}  // namespace
}  // namespace hami::fakegpu

int main(int argc, char** argv) { return hami::fakegpu::Main(argc, argv); }
