// Client side of the daemon's HTTP API, used by every `hami` subcommand but `serve`.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hami::hostd {

struct ApiReply {
  int http = 0;
  nlohmann::json body;
};

class ApiClient {
 public:
  // `address` is "unix:/path" or "/path" (the daemon's socket: it knows who we are), or
  // "host:port" / "http://host:port" (TCP: the API token is sent, from `token`, else
  // $HAMI_TOKEN, else the file $HAMI_TOKEN_FILE or DefaultTokenFile() when readable).
  // Errors: kInvalidArgument.
  static StatusOr<std::unique_ptr<ApiClient>> Make(const std::string& address,
                                                   const std::string& token = "");

  // One request. Errors: kUnavailable when the daemon cannot be reached or answers
  // something that is not JSON. An HTTP error is not an error here (see CallOk).
  StatusOr<ApiReply> Call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr);
  // As Call, but a non-2xx answer becomes the Status its error body names.
  StatusOr<nlohmann::json> CallOk(const std::string& method, const std::string& path,
                                  const nlohmann::json* body = nullptr);
  const std::string& address() const { return address_; }

 private:
  ApiClient() = default;
  bool unix_ = false;
  std::string host_;  // or the socket path
  int port_ = 0;
  std::string address_;
  std::string token_;
};

// The Status an API error body {"error":{"code","message"}} stands for.
Status StatusFromErrorBody(int http, const nlohmann::json& body);

}  // namespace hami::hostd
