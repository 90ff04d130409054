// The daemon's local HTTP JSON API and Prometheus endpoint (cpp-httplib), on a Unix socket
// (the caller is the peer's uid, SO_PEERCRED) and, opted in, on loopback TCP (the caller must
// present the API token and then acts as the daemon's user, an administrator). Every handler
// converts Status into an HTTP code and a JSON error body
// {"error":{"code":"InvalidArgument","message":"..."}}; docs/single-host.md lists the routes,
// docs/security.md the identity rules.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hostd/daemon.h"

#include "hostd/peer_server.h"
#include "webui/server.h"

namespace hami::hostd {

// The largest request body accepted (a slice request with the longest allowed command is
// well under it); larger ones get 413 with a JSON error before the body is read.
inline constexpr size_t kMaxBodyBytes = 64 * 1024;

struct ApiOptions {
  std::string token;  // required on TCP; empty: TCP cannot be bound
  PeerServerLimits limits;
};

// Who the request is from: on the Unix socket the peer's uid (root is an administrator); on
// TCP whoever presents the token ("Authorization: Bearer T", or for GET a "hami_token" cookie)
// acts as the daemon's user (root for a root daemon) with every right; anybody else is
// refused. Errors: kPermissionDenied.
StatusOr<Caller> Identify(const httplib::Request& req, bool tcp, const std::string& token);

int HttpStatusFor(StatusCode code);
nlohmann::json ErrorJson(const Status& s);

// A slice as the API shows it: the stored fields, the job environment and the live usage read
// from its accounting file. `full` is false for another user's slice: its command, paths,
// processes and environment are left out.
nlohmann::json SliceView(const Slice& s, const JobContext& ctx, bool full = true);
// Prometheus text exposition of the daemon's GPUs and slices (SPEC 2.8 names).
std::string RenderMetrics(const Daemon& d);

class ApiServer {
 public:
  explicit ApiServer(Daemon& daemon, ApiOptions options = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // The Unix socket at `path` (mode 0666 for a root daemon: any local user may talk to it,
  // as themselves). Errors: kUnavailable, kFailedPrecondition (see PeerServer::BindUnix).
  Status BindUnix(const std::string& path, mode_t mode);
  // Loopback TCP host:port; port 0 picks a free one. Returns the bound port. Errors:
  // kFailedPrecondition (no token, or not a loopback address), kUnavailable.
  StatusOr<int> BindTcp(const std::string& host, int port);
  void Start();  // serves every bound listener on threads of its own
  void Stop();

 private:
  // A route that serves data or changes anything must be registered through Guard (it then
  // knows its caller and refuses unknown ones); only /healthz and static web UI files may
  // go without.
  using GuardedHandler =
      std::function<void(const httplib::Request&, httplib::Response&, const Caller&)>;
  httplib::Server::Handler Guard(bool tcp, GuardedHandler h);
  void Routes(PeerServer& s, bool tcp);
  void InfoRoutes(PeerServer& s, bool tcp);   // whoami, info, gpus, metrics
  void SliceRoutes(PeerServer& s, bool tcp);  // /v1/slices
  void QueueRoutes(PeerServer& s, bool tcp);  // a slice's job, /v1/queue
  Daemon& daemon_;
  ApiOptions options_;
  std::unique_ptr<PeerServer> unix_;
  std::unique_ptr<PeerServer> tcp_;
  std::unique_ptr<webui::WebUi> webui_;  // the web UI at /ui/ on both listeners (docs/webui.md)
  bool unix_bound_ = false, tcp_bound_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hami::hostd
