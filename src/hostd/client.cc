#include "hostd/client.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <charconv>
#include <chrono>
#include <thread>

#include "hostd/build_paths.h"
#include "hostd/peer_server.h"

namespace hami::hostd {

StatusOr<std::unique_ptr<ApiClient>> ApiClient::Make(const std::string& address,
                                                     const std::string& token) {
  auto a = ParseApiAddress(address);
  if (!a.ok()) return Status(a.status().code(), "daemon address: " + a.status().message());
  std::unique_ptr<ApiClient> c(new ApiClient());
  c->unix_ = a->unix_socket;
  c->host_ = a->unix_socket ? a->path : a->host;
  c->port_ = a->port;
  c->address_ = a->ToString();
  if (!c->unix_) {
    c->token_ = token;
    const char* env = getenv("HAMI_TOKEN");
    if (c->token_.empty() && env && *env) c->token_ = env;
    if (c->token_.empty()) {
      const char* file = getenv("HAMI_TOKEN_FILE");
      auto t = ReadTokenFile(file && *file ? file : DefaultTokenFile());
      if (t.ok()) c->token_ = *t;  // else the daemon says it wants one
    }
  }
  return c;
}

namespace {
bool IsSocket(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}
}  // namespace

StatusOr<ApiReply> ApiClient::Call(const std::string& method, const std::string& path,
                                   const nlohmann::json* body) {
  if (method != "GET" && method != "POST" && method != "DELETE") {
    return InvalidArgument("unsupported method " + method);
  }
  httplib::Result res{nullptr, httplib::Error::Unknown};
  std::string payload = body ? body->dump() : "";
  // Transport failures are retried: every call of the API is safe to repeat (slice requests
  // carry a request_id the daemon deduplicates on).
  constexpr int kAttempts = 6;  // 1.5 s of pauses in all
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    httplib::Client cli(host_, unix_ ? 80 : port_);
    if (unix_) cli.set_address_family(AF_UNIX);
    if (!token_.empty()) cli.set_bearer_token_auth(token_);
    cli.set_connection_timeout(3);
    cli.set_read_timeout(30);
    cli.set_write_timeout(10);
    if (method == "GET") {
      res = cli.Get(path);
    } else if (method == "POST") {
      res = cli.Post(path, payload, "application/json");
    } else {
      res = cli.Delete(path);
    }
    // 503: this user has too many connections open right now; try again shortly.
    if (res && res->status == 503 && attempt < kAttempts - 1) continue;
    if (res) break;
    // A refused connection means no daemon, unless its socket is there: a unix socket whose
    // queue of unaccepted connections is full (someone floods it) refuses at once too, and
    // frees up as the daemon accepts and turns the flood away.
    if (res.error() == httplib::Error::Connection && !(unix_ && IsSocket(host_))) break;
  }
  if (!res) {
    return Unavailable("cannot reach the hami daemon at " + address_ + ": " +
                       httplib::to_string(res.error()) +
                       " (is `hami serve` running? set --addr or HAMI_ADDR)");
  }
  ApiReply r;
  r.http = res->status;
  if (!res->body.empty()) {
    r.body = nlohmann::json::parse(res->body, nullptr, false);
    if (r.body.is_discarded() && path != "/metrics") {
      return Unavailable("the daemon at " + address_ + " answered " + path +
                         " with something that is not JSON (HTTP " + std::to_string(res->status) +
                         ")");
    }
  }
  return r;
}

StatusOr<nlohmann::json> ApiClient::CallOk(const std::string& method, const std::string& path,
                                           const nlohmann::json* body) {
  auto r = Call(method, path, body);
  if (!r.ok()) return r.status();
  if (r->http < 200 || r->http >= 300) return StatusFromErrorBody(r->http, r->body);
  return r->body;
}

Status StatusFromErrorBody(int http, const nlohmann::json& body) {
  std::string code, message = "HTTP " + std::to_string(http);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) {
      message = e["message"].get<std::string>();
    }
  }
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    auto sc = static_cast<StatusCode>(c);
    if (code == StatusCodeName(sc) && sc != StatusCode::kOk) return Status(sc, message);
  }
  return Internal(message);
}

}  // namespace hami::hostd
