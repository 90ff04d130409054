#include "hostd/peer_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace hami::hostd {
namespace {

using Clock = std::chrono::steady_clock;

thread_local Peer t_peer;

Peer PeerOf(int sock) {
  Peer p;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || ss.ss_family != AF_UNIX) {
    return p;
  }
  p.unix_socket = true;
  ucred c{};
  socklen_t cl = sizeof(c);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &c, &cl) == 0 && cl == sizeof(c)) {
    p.known = true;
    p.uid = c.uid;
    p.gid = c.gid;
    p.pid = c.pid;
  }
  return p;
}

// A connection's stream with a deadline for receiving each request: a client sending one
// byte every few seconds cannot hold a thread longer than the deadline.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(int fd, std::chrono::milliseconds io_timeout) : fd_(fd), io_timeout_(io_timeout) {}
  void StartRequest(std::chrono::seconds budget) { deadline_ = Clock::now() + budget; }

  bool is_readable() const override { return Wait(POLLIN); }
  bool is_writable() const override { return Wait(POLLOUT); }
  ssize_t read(char* ptr, size_t size) override {
    if (!Wait(POLLIN, true)) return -1;
    ssize_t n;
    do {
      n = recv(fd_, ptr, size, 0);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!Wait(POLLOUT)) return -1;
    ssize_t n;
    do {
      n = send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "peer";
    port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "local";
    port = 0;
  }
  socket_t socket() const override { return fd_; }

 private:
  bool Wait(short events, bool reading = false) const {
    auto timeout = io_timeout_;
    if (reading) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) return false;
      timeout = std::min(timeout, left);
    }
    pollfd p{fd_, events, 0};
    int r;
    do {
      r = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }
  int fd_;
  std::chrono::milliseconds io_timeout_;
  Clock::time_point deadline_ = Clock::now();
};

bool WaitReadable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace

const Peer& CurrentPeer() { return t_peer; }

Status PeerServer::BindUnix(const std::string& path, mode_t mode) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path \"" + path + "\" is empty or too long");
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPrecondition(path + " exists and is not a socket; not replacing it");
    }
    // A socket nobody answers on is a dead daemon's; one that answers is a live daemon.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) close(probe);
    if (live) return FailedPrecondition("another daemon answers on " + path);
    if (unlink(path.c_str()) != 0) {
      return Unavailable("cannot remove stale socket " + path + ": " + std::strerror(errno));
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  // The socket is created with the umask's mode; make it private until chmod sets `mode`.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  if (rc != 0) {
    close(fd);
    return Unavailable("cannot listen on " + path + ": " + std::strerror(err));
  }
  // The longest queue the kernel allows: a full one refuses every newcomer at once, and the
  // accept loop turns a flooding user's extra connections away (503) only once it took them.
  if (chmod(path.c_str(), mode) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    err = errno;
    close(fd);
    unlink(path.c_str());
    return Unavailable("cannot listen on " + path + ": " + std::strerror(err));
  }
  svr_sock_ = fd;
  return Status::Ok();
}

bool PeerServer::Admit(const Peer& p) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t& mine = per_uid_[p.uid];
  // Root is trusted with any number; everybody else shares the threads fairly.
  const bool capped = !(p.known && p.uid == 0);
  if (open_.load() >= limits_.max_connections ||
      (capped && mine >= limits_.max_connections_per_uid)) {
    if (mine == 0) per_uid_.erase(p.uid);
    return false;
  }
  ++mine;
  ++open_;
  return true;
}

void PeerServer::Leave(const Peer& p) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_uid_.find(p.uid);
  if (it != per_uid_.end() && --it->second == 0) per_uid_.erase(it);
  --open_;
}

bool PeerServer::process_and_close_socket(int sock) {
  Peer peer = PeerOf(sock);
  bool ret = false;
  if (!Admit(peer)) {
    const std::string body =
        "{\"error\":{\"code\":\"Unavailable\",\"message\":\"too many connections from "
        "this user\"}}\n";
    const std::string busy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)!send(sock, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } else {
    t_peer = peer;
    DeadlineStream strm(
        sock, std::chrono::milliseconds(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000));
    const int keep_alive_ms = static_cast<int>(keep_alive_timeout_sec_ * 1000);
    for (size_t left = keep_alive_max_count_; left > 0 && is_running(); --left) {
      if (!WaitReadable(sock, keep_alive_ms)) break;
      strm.StartRequest(limits_.request_deadline);
      bool closed = false;
      ret = process_request(strm, left == 1, closed, [](httplib::Request&) {});
      if (!ret || closed) break;
    }
    t_peer = Peer{};
    Leave(peer);
  }
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return ret;
}

std::string ApiAddress::ToString() const {
  if (unix_socket) return "unix:" + path;
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

StatusOr<ApiAddress> ParseApiAddress(const std::string& text, bool allow_port_zero) {
  ApiAddress a;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("bad address \"" + text + "\": " + why +
                           " (expected unix:/PATH, /PATH or HOST:PORT)");
  };
  if (text.rfind("unix:", 0) == 0 || (!text.empty() && text[0] == '/')) {
    a.unix_socket = true;
    a.path = text[0] == '/' ? text : text.substr(5);
    if (a.path.empty() || a.path[0] != '/') return bad("the socket path must be absolute");
    if (a.path.size() >= sizeof(sockaddr_un{}.sun_path)) return bad("socket path too long");
    return a;
  }
  std::string t = text;
  if (t.rfind("http://", 0) == 0) t = t.substr(7);
  while (!t.empty() && t.back() == '/') t.pop_back();
  auto colon = t.rfind(':');
  if (colon == std::string::npos) return bad("no port");
  a.host = t.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  if (a.host.empty()) return bad("no host");
  std::string ps = t.substr(colon + 1);
  int port = -1;
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ps.empty() || ps.size() > 5 || ec != std::errc() || p != ps.data() + ps.size() || port < 0 ||
      port > 65535) {
    return bad("port \"" + ps + "\" is not a number in 0..65535");
  }
  if (port == 0 && !allow_port_zero) return bad("port 0");
  a.port = port;
  return a;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

StatusOr<std::string> CreateTokenFile(const std::string& path) {
  unsigned char raw[32];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token += kHex[c >> 4];
    token += kHex[c & 15];
  }
  // A fresh file each start: unlink whatever is there (never follow or reuse it).
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Unavailable("cannot replace token file " + path + ": " + std::strerror(errno));
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot create token file " + path + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = fchmod(fd, 0600) == 0 &&
            ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!ok) return Unavailable("cannot write token file " + path);
  return token;
}

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EACCES || errno == EPERM) {
      return Status(StatusCode::kPermissionDenied,
                    "cannot read the API token " + path + " (only its owner may)");
    }
    return NotFound("no API token at " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
      (st.st_uid != 0 && st.st_uid != geteuid())) {
    close(fd);
    return FailedPrecondition("API token file " + path +
                              " must be a regular file owned by root or you, mode 0600");
  }
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  close(fd);
  if (n <= 0) return FailedPrecondition("API token file " + path + " is empty");
  std::string token(buf, static_cast<size_t>(n));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return FailedPrecondition("API token file " + path + " is empty");
  return token;
}

bool TokenMatches(const std::string& presented, const std::string& token) {
  if (token.empty() || presented.size() != token.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ token[i]);
  }
  return diff == 0;
}

}  // namespace hami::hostd
