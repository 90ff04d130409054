// One accepted connection of hami-scheduler's server: plain TCP or TLS (OpenSSL) on a
// non-blocking socket, every read and write bounded by a deadline (poll), so a slow or silent
// peer costs its own connection thread and nothing else.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace hami::k8s::http {

using Deadline = std::chrono::steady_clock::time_point;

// A server TLS context from PEM files. Errors: kInvalidArgument naming the file that cannot be
// loaded or a key that does not match the certificate.
StatusOr<std::shared_ptr<SSL_CTX>> MakeTlsContext(const std::string& cert_file,
                                                  const std::string& key_file);

class Conn {
 public:
  // Takes ownership of `fd` (made non-blocking here). `tls` null: plain TCP.
  Conn(int fd, std::shared_ptr<SSL_CTX> tls);
  ~Conn();  // Closes.
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // TLS handshake (no-op for plain TCP). Errors: kDeadlineExceeded, kUnavailable.
  Status Handshake(Deadline deadline);
  // Reads what is available (at most `max` bytes, waiting until `deadline` for the first).
  // Returns the bytes appended to `out`; 0 means the peer closed. Errors: kDeadlineExceeded,
  // kUnavailable (reset, TLS error).
  StatusOr<std::size_t> Read(std::string& out, std::size_t max, Deadline deadline);
  // Writes everything before `deadline`. Errors: kDeadlineExceeded, kUnavailable.
  Status WriteAll(std::string_view data, Deadline deadline);
  // Wakes any blocked call (server stop): it returns kUnavailable soon after.
  void Shutdown();

 private:
  // Waits for POLLIN (want_write false) or POLLOUT until the deadline.
  Status Wait(bool want_write, Deadline deadline);
  int fd_;
  SSL* ssl_ = nullptr;
  std::shared_ptr<SSL_CTX> ctx_;
};

}  // namespace hami::k8s::http
