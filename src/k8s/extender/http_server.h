// hami-scheduler's HTTP(S) front: POST /filter, /prioritize, /bind (kube-scheduler extender
// v1), POST /webhook (AdmissionReview v1), GET /healthz, /readyz (200 only after the initial
// node and pod sync), /metrics. Malformed bodies get 400 with a message, never a crash.
//
// One thread per connection, each read and write bounded by deadlines (http_conn.h), a cap on
// connections and on the body bytes held at once, body limits per path: a slow or hostile
// client holds only its own connection, for at most the request deadline, and cannot hold up
// /healthz, filter, bind or the webhook of others (docs/k8s-control-plane.md, "HTTP server").
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/webhook.h"

namespace hami::k8s {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: ephemeral
  std::string cert_file, key_file;
  // Connections served at once (one thread each); more are closed at accept (plain HTTP gets a
  // 503 first).
  int max_connections = 512;
  int keep_alive_timeout_s = 5;  // idle time allowed between two requests of a connection
  // The whole head and body of one request (and the TLS handshake of a new connection) must
  // arrive within this, however the client paces its bytes.
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};  // the whole response
  std::size_t max_header_bytes = 64 << 10;
  // /filter, /prioritize and /webhook. Sized to the largest real request: a filter for 5,000
  // nodes by name with a large pod is about 1 MiB (measured, docs/k8s-control-plane.md); a
  // NodeList filter (nodeCacheCapable: false) of 5,000 real nodes needs more: raise it there.
  std::size_t max_body_bytes = 16 << 20;
  std::size_t max_bind_body_bytes = 64 << 10;       // ExtenderBindingArgs is a few hundred bytes
  std::size_t max_inflight_body_bytes = 256 << 20;  // body bytes held by all connections at once
  // After a request body at least this large, freed heap is returned to the system
  // (malloc_trim), so one burst of big filters does not leave the process large.
  std::size_t trim_after_bytes = 1 << 20;
  // Only GET /metrics and /healthz (the separate metrics port, HAMi's --metrics-bind-address):
  // nothing that changes state is reachable there.
  bool metrics_only = false;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Extender* extender, WebhookOptions webhook,
             NamespaceLabels namespace_labels = nullptr);
  ~HttpServer();  // Stops.
  // Binds and starts serving on a background thread. Errors: kUnavailable (cannot bind),
  // kInvalidArgument (bad host, TLS files unusable, limits out of range).
  Status Start();
  // Stops accepting, wakes every connection and waits for their threads.
  void Stop();
  int port() const;
  int active_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The request handling without sockets, for tests and fuzzing: returns the HTTP status and
// body for `method path` with `body`.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};
HttpReply HandleRequest(const std::string& method, const std::string& path, const std::string& body,
                        Extender* extender, const WebhookOptions& webhook,
                        const NamespaceLabels& namespace_labels);

}  // namespace hami::k8s
