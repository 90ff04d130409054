#include "monitor/metrics_server.h"

#include <httplib.h>

#include <thread>

namespace hami::monitor {

struct MetricsServer::Impl {
  Collector* collector;
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

MetricsServer::MetricsServer(Collector* collector) : impl_(std::make_unique<Impl>()) {
  impl_->collector = collector;
  impl_->server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(impl_->collector->MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl_->server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
}

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Start(const std::string& host, int port) {
  int bound = port == 0 ? impl_->server.bind_to_any_port(host.c_str())
                        : (impl_->server.bind_to_port(host.c_str(), port) ? port : -1);
  if (bound <= 0) {
    return Unavailable("cannot listen on " + host + ":" + std::to_string(port));
  }
  impl_->port = bound;
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  return Status::Ok();
}

int MetricsServer::port() const { return impl_->port; }

void MetricsServer::Stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace hami::monitor
