// hami-scheduler's HTTP(S) front: POST /filter, /prioritize, /bind (kube-scheduler extender
// v1), POST /webhook (AdmissionReview v1), GET /healthz, /readyz (200 only after the initial
// node and pod sync), /metrics. Malformed bodies get 400 with a message, never a crash.
#pragma once

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
  int threads = 64;
  int keep_alive_timeout_s = 5;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Extender* extender, WebhookOptions webhook,
             NamespaceLabels namespace_labels = nullptr);
  ~HttpServer();  // Stops.
  // Binds and starts serving on a background thread. Errors: kUnavailable (cannot bind),
  // kInvalidArgument (TLS files unusable).
  Status Start();
  void Stop();
  int port() const;

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
