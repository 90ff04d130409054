// An HTTP server (cpp-httplib) that knows who is on the other end: on a Unix socket the peer's
// uid/pid from SO_PEERCRED, on TCP nobody until a handler checks the API token. It also bounds
// every connection: a deadline per request, and at most so many connections per peer uid.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/status.h"

namespace hami::hostd {

// Who sent the request being handled. On TCP, `unix_socket` is false and the uid unknown.
struct Peer {
  bool unix_socket = false;
  bool known = false;  // SO_PEERCRED answered
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
};

// The peer of the connection this thread is serving (valid inside a handler).
const Peer& CurrentPeer();

struct PeerServerLimits {
  size_t max_connections_per_uid = 24;  // concurrent; extra ones get 503 at once (not root)
  size_t max_connections = 128;         // all peers together
  std::chrono::seconds request_deadline{15};  // to receive one request's headers and body
};

class PeerServer : public httplib::Server {
 public:
  explicit PeerServer(PeerServerLimits limits = {}) : limits_(limits) {}
  // Listens on a Unix socket at `path` with file mode `mode`. A stale socket file left by a
  // dead daemon is replaced; anything else at `path` (a live socket, a file, a link) is an
  // error. The parent directory must exist. Errors: kUnavailable, kFailedPrecondition.
  Status BindUnix(const std::string& path, mode_t mode);
  size_t open_connections() const { return open_.load(); }

 private:
  bool process_and_close_socket(int sock) override;
  bool Admit(const Peer& p);
  void Leave(const Peer& p);

  PeerServerLimits limits_;
  std::atomic<size_t> open_{0};
  std::mutex mu_;
  std::map<uid_t, size_t> per_uid_;
};

// A parsed API address: "unix:/path", "/path" (a Unix socket), or "HOST:PORT" /
// "http://HOST:PORT" (TCP; the port must be 0..65535, digits only; 0 only when
// `allow_port_zero`). Errors: kInvalidArgument naming the text.
struct ApiAddress {
  bool unix_socket = false;
  std::string path;  // the socket file
  std::string host;
  int port = 0;
  std::string ToString() const;
};
StatusOr<ApiAddress> ParseApiAddress(const std::string& text, bool allow_port_zero = false);
// True for 127.0.0.0/8, ::1 and "localhost" (parsed as addresses, not compared as text).
bool IsLoopbackHost(const std::string& host);

// The API token for TCP: 32 random bytes as hex, written to `path` (mode 0600, created afresh
// at each start without following links). Errors: kUnavailable.
StatusOr<std::string> CreateTokenFile(const std::string& path);
// Reads a token file: a regular file, not a link, owned by this user or root, not readable
// by group or others. Errors: kNotFound, kPermissionDenied, kFailedPrecondition.
StatusOr<std::string> ReadTokenFile(const std::string& path);
// Constant-time comparison of a presented token with the real one.
bool TokenMatches(const std::string& presented, const std::string& token);

}  // namespace hami::hostd
