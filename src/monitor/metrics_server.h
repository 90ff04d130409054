// HTTP endpoint of the node monitor: GET /metrics (Prometheus text) and GET /healthz.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "monitor/collector.h"

namespace hami::monitor {

class MetricsServer {
 public:
  explicit MetricsServer(Collector* collector);
  ~MetricsServer();
  // Binds host:port (port 0 picks a free one) and serves in a background thread.
  // Errors: kUnavailable when the address cannot be bound.
  Status Start(const std::string& host, int port);
  int port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hami::monitor
