#include "k8s/extender/http_server.h"

#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <thread>

namespace hami::k8s {

HttpReply HandleRequest(const std::string& method, const std::string& path, const std::string& body,
                        Extender* extender, const WebhookOptions& webhook,
                        const NamespaceLabels& namespace_labels) {
  auto error = [](int code, const std::string& msg) {
    return HttpReply{code, Json{{"error", msg}}.dump() + "\n", "application/json"};
  };
  try {
    if (method == "GET") {
      if (path == "/healthz") return {200, "ok\n", "text/plain"};
      if (path == "/readyz") {
        if (extender && extender->Ready()) return {200, "ok\n", "text/plain"};
        return {503, "not ready: initial node/pod sync not finished\n", "text/plain"};
      }
      if (path == "/metrics" && extender) {
        return {200, extender->Metrics(), "text/plain; version=0.0.4; charset=utf-8"};
      }
      return error(404, "no such path " + path);
    }
    if (method != "POST") return error(405, "method " + method + " not allowed");
    bool known =
        path == "/filter" || path == "/prioritize" || path == "/bind" || path == "/webhook";
    if (!known || (path != "/webhook" && !extender)) return error(404, "no such path " + path);
    Json args = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (args.is_discarded()) return error(400, path + ": request body is not valid JSON");
    StatusOr<Json> out = InvalidArgument("unreachable");
    if (path == "/filter") {
      out = extender->Filter(args);
    } else if (path == "/prioritize") {
      out = extender->Prioritize(args);
    } else if (path == "/bind") {
      out = extender->Bind(args);
    } else {
      out = ReviewAdmission(args, webhook, namespace_labels);
    }
    if (!out.ok()) return error(400, path + ": " + out.status().message());
    return {200, out->dump(), "application/json"};
  } catch (const std::exception& e) {
    // Third-party code that throws is caught once here (nlohmann type errors on odd bodies).
    return error(400, path + ": malformed request: " + e.what());
  }
}

namespace {

// cpp-httplib 0.11 listens with a backlog of 5: a burst of new connections (kube-scheduler
// opens one per concurrent bind) overflows it and connections stall for a SYN retransmit or
// are dropped. Linux lets listen() be called again to raise the backlog; find our socket.
void RaiseListenBacklog(int port) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = -1;
    if (addr.ss_family == AF_INET) p = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) p = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (p == port) listen(fd, SOMAXCONN);
  }
  closedir(d);
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions opts;
  Extender* extender;
  WebhookOptions webhook;
  NamespaceLabels ns_labels;
  std::unique_ptr<httplib::Server> svr;
  std::thread listener;
  int port = 0;
};

HttpServer::HttpServer(HttpServerOptions options, Extender* extender, WebhookOptions webhook,
                       NamespaceLabels namespace_labels)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->extender = extender;
  impl_->webhook = std::move(webhook);
  impl_->ns_labels = std::move(namespace_labels);
}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_->port; }

Status HttpServer::Start() {
  Impl* im = impl_.get();
  if (!im->opts.cert_file.empty()) {
    auto ssl =
        std::make_unique<httplib::SSLServer>(im->opts.cert_file.c_str(), im->opts.key_file.c_str());
    if (!ssl->is_valid()) {
      return InvalidArgument("TLS certificate " + im->opts.cert_file + " or key " +
                             im->opts.key_file + " cannot be loaded");
    }
    im->svr = std::move(ssl);
  } else {
    im->svr = std::make_unique<httplib::Server>();
  }
  int threads = im->opts.threads;
  im->svr->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  im->svr->set_keep_alive_max_count(1000000);
  im->svr->set_keep_alive_timeout(im->opts.keep_alive_timeout_s);
  im->svr->set_tcp_nodelay(true);
  im->svr->set_payload_max_length(64 << 20);
  auto handler = [im](const httplib::Request& req, httplib::Response& res) {
    HttpReply r =
        HandleRequest(req.method, req.path, req.body, im->extender, im->webhook, im->ns_labels);
    res.status = r.status;
    res.set_content(r.body, r.content_type.c_str());
  };
  im->svr->Get(".*", handler);
  im->svr->Post(".*", handler);
  im->svr->Put(".*", handler);
  im->svr->Delete(".*", handler);
  if (im->opts.port == 0) {
    im->port = im->svr->bind_to_any_port(im->opts.host);
  } else {
    im->port = im->svr->bind_to_port(im->opts.host, im->opts.port) ? im->opts.port : -1;
  }
  if (im->port <= 0) {
    return Unavailable("cannot listen on " + im->opts.host + ":" + std::to_string(im->opts.port));
  }
  RaiseListenBacklog(im->port);
  im->listener = std::thread([im] { im->svr->listen_after_bind(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (impl_->svr) impl_->svr->stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

}  // namespace hami::k8s
