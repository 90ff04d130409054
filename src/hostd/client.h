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
  // `address` is "host:port" or "http://host:port". Errors: kInvalidArgument.
  static StatusOr<std::unique_ptr<ApiClient>> Make(const std::string& address);

  // One request. Errors: kUnavailable when the daemon cannot be reached or answers
  // something that is not JSON. An HTTP error is not an error here (see CallOk).
  StatusOr<ApiReply> Call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr);
  // As Call, but a non-2xx answer becomes the Status its error body names.
  StatusOr<nlohmann::json> CallOk(const std::string& method, const std::string& path,
                                  const nlohmann::json* body = nullptr);
  const std::string& address() const { return address_; }

 private:
  ApiClient(std::string host, int port, std::string address)
      : host_(std::move(host)), port_(port), address_(std::move(address)) {}
  std::string host_;
  int port_;
  std::string address_;
};

// The Status an API error body {"error":{"code","message"}} stands for.
Status StatusFromErrorBody(int http, const nlohmann::json& body);

}  // namespace hami::hostd
