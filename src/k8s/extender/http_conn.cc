// Connection I/O with deadlines (http_conn.h).
#include "k8s/extender/http_conn.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace hami::k8s::http {
namespace {

int MillisLeft(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

}  // namespace

StatusOr<std::shared_ptr<SSL_CTX>> MakeTlsContext(const std::string& cert_file,
                                                  const std::string& key_file) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Internal("cannot create a TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    ERR_clear_error();
    return InvalidArgument("TLS certificate " + cert_file + " cannot be loaded");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    ERR_clear_error();
    return InvalidArgument("TLS key " + key_file + " cannot be loaded");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("TLS key " + key_file + " does not match " + cert_file);
  }
  return ctx;
}

Conn::Conn(int fd, std::shared_ptr<SSL_CTX> tls) : fd_(fd), ctx_(std::move(tls)) {
  int flags = fcntl(fd_, F_GETFL, 0);
  if (flags >= 0) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  if (ctx_) {
    ssl_ = SSL_new(ctx_.get());
    if (ssl_) SSL_set_fd(ssl_, fd_);
  }
}

Conn::~Conn() {
  if (ssl_) SSL_free(ssl_);
  close(fd_);
}

void Conn::Shutdown() { shutdown(fd_, SHUT_RDWR); }

Status Conn::Wait(bool want_write, Deadline deadline) {
  pollfd p{fd_, static_cast<short>(want_write ? POLLOUT : POLLIN), 0};
  for (;;) {
    int ms = MillisLeft(deadline);
    if (ms == 0) return Status(StatusCode::kDeadlineExceeded, "peer too slow");
    int r = poll(&p, 1, ms);
    if (r > 0) return Status::Ok();
    if (r == 0) return Status(StatusCode::kDeadlineExceeded, "peer too slow");
    if (errno != EINTR) return Unavailable("poll failed");
  }
}

Status Conn::Handshake(Deadline deadline) {
  if (!ctx_) return Status::Ok();
  if (!ssl_) return Unavailable("TLS: out of memory");
  for (;;) {
    int r = SSL_accept(ssl_);
    if (r == 1) return Status::Ok();
    int err = SSL_get_error(ssl_, r);
    ERR_clear_error();
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return Unavailable("TLS handshake failed");
    }
    if (Status s = Wait(err == SSL_ERROR_WANT_WRITE, deadline); !s.ok()) return s;
  }
}

StatusOr<std::size_t> Conn::Read(std::string& out, std::size_t max, Deadline deadline) {
  char buf[16384];
  const std::size_t want = std::min(max, sizeof buf);
  for (;;) {
    if (ssl_) {
      int r = SSL_read(ssl_, buf, static_cast<int>(want));
      if (r > 0) {
        out.append(buf, static_cast<std::size_t>(r));
        return static_cast<std::size_t>(r);
      }
      int err = SSL_get_error(ssl_, r);
      ERR_clear_error();
      if (err == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return Unavailable("TLS read failed");
      }
      if (Status s = Wait(err == SSL_ERROR_WANT_WRITE, deadline); !s.ok()) return s;
      continue;
    }
    ssize_t r = recv(fd_, buf, want, 0);
    if (r > 0) {
      out.append(buf, static_cast<std::size_t>(r));
      return static_cast<std::size_t>(r);
    }
    if (r == 0) return std::size_t{0};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Unavailable("connection reset");
    if (Status s = Wait(false, deadline); !s.ok()) return s;
  }
}

Status Conn::WriteAll(std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const std::size_t chunk = std::min<std::size_t>(data.size(), 1 << 20);
    if (ssl_) {
      int r = SSL_write(ssl_, data.data(), static_cast<int>(chunk));
      if (r > 0) {
        data.remove_prefix(static_cast<std::size_t>(r));
        continue;
      }
      int err = SSL_get_error(ssl_, r);
      ERR_clear_error();
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return Unavailable("TLS write failed");
      }
      if (Status s = Wait(err == SSL_ERROR_WANT_WRITE, deadline); !s.ok()) return s;
      continue;
    }
    ssize_t r = send(fd_, data.data(), chunk, MSG_NOSIGNAL);
    if (r > 0) {
      data.remove_prefix(static_cast<std::size_t>(r));
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Unavailable("connection reset");
    if (Status s = Wait(true, deadline); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace hami::k8s::http
