// hami-scheduler's HTTP(S) server (http_server.h): accept loop, connection threads, request
// framing with limits and deadlines; HandleRequest routes to the extender and the webhook.
#include "k8s/extender/http_server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "k8s/extender/http_conn.h"
#include "k8s/extender/http_request.h"

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

using Clock = std::chrono::steady_clock;

const char* StatusText(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string Response(const HttpReply& r, bool keep_alive) {
  std::string out =
      "HTTP/1.1 " + std::to_string(r.status) + " " + StatusText(r.status) +
      "\r\nContent-Type: " + r.content_type +
      "\r\nContent-Length: " + std::to_string(r.body.size()) +
      (keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  out += r.body;
  return out;
}

HttpReply ErrorReply(int code, const std::string& msg) {
  return HttpReply{code, Json{{"error", msg}}.dump() + "\n", "application/json"};
}

// Body bytes held by all connections at once.
class BodyBudget {
 public:
  explicit BodyBudget(std::size_t limit) : limit_(limit) {}
  bool TryTake(std::size_t n) {
    std::size_t cur = used_.load();
    do {
      if (n > limit_ || cur > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n));
    return true;
  }
  void Give(std::size_t n) { used_.fetch_sub(n); }

 private:
  std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

// What the server learnt about one request before the handler runs.
struct Request {
  http::RequestHead head;
  std::string body;
  std::size_t budget = 0;  // taken from BodyBudget for this body
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions opts;
  Extender* extender = nullptr;
  WebhookOptions webhook;
  NamespaceLabels ns_labels;
  std::shared_ptr<SSL_CTX> tls;
  std::unique_ptr<BodyBudget> budget;
  int listen_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread acceptor;
  mutable std::mutex mu;
  std::condition_variable idle_cv;
  std::set<http::Conn*> conns;
  int active = 0;
  bool stopping = false;

  Status Listen();
  void AcceptLoop();
  void Serve(int fd);
  void ServeConn(http::Conn& c);
  // Reads one request; nullopt with *reply set when the connection must answer and close, or
  // with reply->status 0 when it must just close.
  std::optional<Request> ReadRequest(http::Conn& c, std::string& buf, bool first, HttpReply* reply);
  Status ReadBody(http::Conn& c, std::string& buf, Request& r, Clock::time_point deadline);
  std::size_t BodyLimit(const http::RequestHead& h) const {
    if (h.method == "POST" && h.path == "/bind") return opts.max_bind_body_bytes;
    if (h.method == "POST") return opts.max_body_bytes;
    return opts.max_bind_body_bytes;
  }
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

int HttpServer::active_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->active;
}

Status HttpServer::Impl::Listen() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(opts.port);
  const char* host = opts.host.empty() ? nullptr : opts.host.c_str();
  if (getaddrinfo(host, port_text.c_str(), &hints, &res) != 0 || res == nullptr) {
    return InvalidArgument("cannot resolve listen address " + opts.host);
  }
  for (addrinfo* ai = res; ai != nullptr && listen_fd < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
      listen_fd = fd;
    } else {
      close(fd);
    }
  }
  freeaddrinfo(res);
  if (listen_fd < 0) {
    return Unavailable("cannot listen on " + opts.host + ":" + std::to_string(opts.port));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return Status::Ok();
}

Status HttpServer::Start() {
  Impl* im = impl_.get();
  const HttpServerOptions& o = im->opts;
  if (o.max_connections < 1 || o.max_connections > 65536) {
    return InvalidArgument("max connections must be 1..65536");
  }
  if (o.max_body_bytes == 0 || o.max_bind_body_bytes == 0 || o.max_header_bytes < 1024 ||
      o.max_inflight_body_bytes < o.max_body_bytes) {
    return InvalidArgument(
        "HTTP limits: body limits must be > 0, header limit >= 1 KiB and the "
        "in-flight budget at least one body");
  }
  if (!o.cert_file.empty()) {
    auto ctx = http::MakeTlsContext(o.cert_file, o.key_file);
    if (!ctx.ok()) return ctx.status();
    im->tls = *ctx;
  }
  im->budget = std::make_unique<BodyBudget>(o.max_inflight_body_bytes);
  if (Status s = im->Listen(); !s.ok()) return s;
  im->acceptor = std::thread([im] { im->AcceptLoop(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  Impl* im = impl_.get();
  {
    std::unique_lock<std::mutex> lock(im->mu);
    if (im->stopping && !im->acceptor.joinable()) return;
    im->stopping = true;
  }
  if (im->wake_fd >= 0) {
    uint64_t one = 1;
    (void)!write(im->wake_fd, &one, sizeof one);
  }
  if (im->acceptor.joinable()) im->acceptor.join();
  std::unique_lock<std::mutex> lock(im->mu);
  for (http::Conn* c : im->conns) c->Shutdown();
  im->idle_cv.wait(lock, [im] { return im->active == 0; });
  lock.unlock();
  if (im->listen_fd >= 0) close(im->listen_fd);
  if (im->wake_fd >= 0) close(im->wake_fd);
  im->listen_fd = im->wake_fd = -1;
}

void HttpServer::Impl::AcceptLoop() {
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors: back off instead of spinning on the ready listen socket.
      if (errno == EMFILE || errno == ENFILE)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping || active >= opts.max_connections) {
        if (!tls && !stopping) {
          static const char kBusy[] =
              "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
          (void)!send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(fd);
        continue;
      }
      ++active;
    }
    try {
      std::thread([this, fd] { Serve(fd); }).detach();
    } catch (const std::system_error&) {
      close(fd);
      std::lock_guard<std::mutex> lock(mu);
      --active;
      idle_cv.notify_all();
    }
  }
}

void HttpServer::Impl::Serve(int fd) {
  {
    http::Conn conn(fd, tls);
    {
      std::lock_guard<std::mutex> lock(mu);
      conns.insert(&conn);
      if (stopping) conn.Shutdown();
    }
    ServeConn(conn);
    std::lock_guard<std::mutex> lock(mu);
    conns.erase(&conn);
  }
  std::lock_guard<std::mutex> lock(mu);
  --active;
  idle_cv.notify_all();
}

void HttpServer::Impl::ServeConn(http::Conn& c) {
  if (!c.Handshake(Clock::now() + opts.request_timeout).ok()) return;
  std::string buf;  // bytes read but not consumed (pipelining)
  for (bool first = true;; first = false) {
    HttpReply reply{0, "", ""};
    auto req = ReadRequest(c, buf, first, &reply);
    if (!req) {
      if (reply.status != 0)
        (void)c.WriteAll(Response(reply, false), Clock::now() + opts.write_timeout);
      return;
    }
    const std::size_t body_size = req->body.size();
    const bool allowed =
        !opts.metrics_only || (req->head.method == "GET" &&
                               (req->head.path == "/metrics" || req->head.path == "/healthz"));
    HttpReply r = allowed ? HandleRequest(req->head.method, req->head.path, req->body, extender,
                                          webhook, ns_labels)
                          : ErrorReply(404, "only /metrics and /healthz on this port");
    std::string().swap(req->body);
    budget->Give(req->budget);
    const bool keep = req->head.keep_alive;
    Status w = c.WriteAll(Response(r, keep), Clock::now() + opts.write_timeout);
    if (body_size >= opts.trim_after_bytes) {
      std::string().swap(r.body);
      malloc_trim(0);
    }
    if (!w.ok() || !keep) return;
  }
}

std::optional<Request> HttpServer::Impl::ReadRequest(http::Conn& c, std::string& buf, bool first,
                                                     HttpReply* reply) {
  // Idle wait for the first byte of the next request, then one deadline for all of it.
  auto deadline = Clock::now() +
                  (first ? opts.request_timeout : std::chrono::seconds(opts.keep_alive_timeout_s));
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > opts.max_header_bytes) {
      *reply = ErrorReply(
          431, "request head larger than " + std::to_string(opts.max_header_bytes) + " bytes");
      return std::nullopt;
    }
    const bool idle = buf.empty();
    auto n = c.Read(buf, opts.max_header_bytes + 4 - buf.size(), deadline);
    if (!n.ok() || *n == 0) {
      if (!idle && n.ok() == false && n.status().code() == StatusCode::kDeadlineExceeded) {
        *reply = ErrorReply(408, "request not received in time");
      }
      return std::nullopt;
    }
    if (idle) deadline = Clock::now() + opts.request_timeout;
  }
  Request r;
  auto head = http::ParseRequestHead(std::string_view(buf).substr(0, end));
  if (!head.ok()) {
    *reply = ErrorReply(400, "bad request: " + head.status().message());
    return std::nullopt;
  }
  r.head = std::move(*head);
  buf.erase(0, end + 4);
  if (Status s = ReadBody(c, buf, r, deadline); !s.ok()) {
    budget->Give(r.budget);
    int code = s.code() == StatusCode::kResourceExhausted  ? 413
               : s.code() == StatusCode::kUnavailable      ? 503
               : s.code() == StatusCode::kDeadlineExceeded ? 408
                                                           : 400;
    if (s.code() != StatusCode::kAborted) *reply = ErrorReply(code, s.message());
    return std::nullopt;
  }
  return r;
}

Status HttpServer::Impl::ReadBody(http::Conn& c, std::string& buf, Request& r,
                                  Clock::time_point deadline) {
  const std::size_t limit = BodyLimit(r.head);
  auto take = [&](std::size_t n) {
    if (!budget->TryTake(n)) return false;
    r.budget += n;
    return true;
  };
  if (r.head.content_length) {
    const uint64_t len = *r.head.content_length;
    if (len > limit) {
      return ResourceExhausted(r.head.path + ": body of " + std::to_string(len) +
                               " bytes is over the limit of " + std::to_string(limit));
    }
    if (!take(len)) return Unavailable("server busy: too many large requests at once");
    if (r.head.expect_continue && buf.empty()) {
      if (Status s = c.WriteAll("HTTP/1.1 100 Continue\r\n\r\n", deadline); !s.ok()) {
        return Status(StatusCode::kAborted, "");
      }
    }
    r.body.reserve(len);
    while (buf.size() < len) {
      auto n = c.Read(buf, len - buf.size(), deadline);
      if (!n.ok()) return n.status();
      if (*n == 0) return Status(StatusCode::kAborted, "");
    }
    r.body.assign(buf, 0, len);
    buf.erase(0, len);
    return Status::Ok();
  }
  if (!r.head.chunked) return Status::Ok();
  http::ChunkedDecoder dec(limit);
  for (;;) {
    std::string_view in(buf);
    if (Status s = dec.Feed(in, r.body); !s.ok()) return s;
    buf.erase(0, buf.size() - in.size());
    if (r.body.size() > r.budget &&
        !take(std::max<std::size_t>(r.body.size() - r.budget, 1 << 16))) {
      return Unavailable("server busy: too many large requests at once");
    }
    if (dec.done()) return Status::Ok();
    auto n = c.Read(buf, 1 << 16, deadline);
    if (!n.ok()) return n.status();
    if (*n == 0) return Status(StatusCode::kAborted, "");
  }
}

}  // namespace hami::k8s
