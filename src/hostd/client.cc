#include "hostd/client.h"

#include <httplib.h>

#include <charconv>
#include <chrono>
#include <thread>

namespace hami::hostd {

StatusOr<std::unique_ptr<ApiClient>> ApiClient::Make(const std::string& address) {
  std::string a = address;
  if (a.rfind("http://", 0) == 0) a = a.substr(7);
  while (!a.empty() && a.back() == '/') a.pop_back();
  auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("bad daemon address \"" + address + "\": expected HOST:PORT");
  }
  int port = 0;
  std::string ps = a.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ec != std::errc() || p != ps.data() + ps.size() || port <= 0 || port > 65535) {
    return InvalidArgument("bad daemon address \"" + address + "\": bad port");
  }
  return std::unique_ptr<ApiClient>(new ApiClient(a.substr(0, colon), port, a));
}

StatusOr<ApiReply> ApiClient::Call(const std::string& method, const std::string& path,
                                   const nlohmann::json* body) {
  if (method != "GET" && method != "POST" && method != "DELETE") {
    return InvalidArgument("unsupported method " + method);
  }
  httplib::Result res{nullptr, httplib::Error::Unknown};
  std::string payload = body ? body->dump() : "";
  // Transport failures are retried: every call of the API is safe to repeat (slice requests
  // carry a request_id the daemon deduplicates on).
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    httplib::Client cli(host_, port_);
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
    if (res || res.error() == httplib::Error::Connection) break;  // refused: no daemon
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
