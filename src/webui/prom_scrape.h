// Live usage for the cluster view, read from the node monitors' /metrics (docs/node-agents.md):
// a Prometheus text parser for the few series the UI needs, and a scraper that fetches many
// monitors in parallel with short timeouts and a size cap (a slow or hostile endpoint costs
// one timeout, never the page).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace hami::webui {

struct DeviceUse {
  int64_t used_bytes = -1;
  double util = -1;  // 0..1
};

struct MonitorUsage {
  std::unordered_map<std::string, DeviceUse> gpus;  // device uuid -> card use
  // (namespace/pod, device uuid) -> the pod's use of the card (containers summed)
  std::map<std::pair<std::string, std::string>, DeviceUse> pods;
  int32_t endpoints_ok = 0, endpoints_failed = 0;
  std::string last_error;
};

// Adds the series of one monitor's exposition to `into`. Lines it does not need are skipped;
// a malformed line of a needed series is an error naming the line number (nothing of that
// exposition is kept then).
Status ParseMonitorMetrics(std::string_view text, MonitorUsage& into);

struct ScrapeOptions {
  std::chrono::milliseconds timeout{1500};
  size_t max_body_bytes = 16 << 20;
  int parallel = 16;
};

// GETs each URL ("http://10.0.0.5:9394/metrics") and merges what parses.
MonitorUsage ScrapeMonitors(const std::vector<std::string>& urls, const ScrapeOptions& options);

}  // namespace hami::webui
