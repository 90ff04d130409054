// The daemon's local HTTP JSON API and Prometheus endpoint (cpp-httplib), bound to a
// loopback address. Every handler converts Status into an HTTP code and a JSON error body
// {"error":{"code":"InvalidArgument","message":"..."}}; docs/single-host.md lists the routes.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hostd/daemon.h"
#include "webui/server.h"

namespace httplib {
class Server;
}

namespace hami::hostd {

int HttpStatusFor(StatusCode code);
nlohmann::json ErrorJson(const Status& s);

// A slice as the API shows it: the stored fields, the job environment and the live usage read
// from its accounting file.
nlohmann::json SliceView(const Slice& s, const JobContext& ctx);
// Prometheus text exposition of the daemon's GPUs and slices (SPEC 2.8 names).
std::string RenderMetrics(const Daemon& d);

class ApiServer {
 public:
  explicit ApiServer(Daemon& daemon);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port; port 0 picks a free one. Returns the bound port. Errors: kUnavailable.
  StatusOr<int> Bind(const std::string& host, int port);
  void Serve();  // blocks until Stop()
  void Start();  // Serve() on a thread
  void Stop();

 private:
  void Routes();
  Daemon& daemon_;
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<webui::WebUi> webui_;  // the web UI at /ui/ (docs/webui.md)
  std::thread thread_;
};

}  // namespace hami::hostd
