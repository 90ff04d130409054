// HTTP/1.1 request heads for hami-scheduler's server (http_server.cc): parsing with limits, pure
// and without sockets so it can be tested and fuzzed alone. Only what kube-scheduler, the API
// server's webhook client and Prometheus send is supported: Content-Length or chunked bodies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hami::k8s::http {

struct RequestHead {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  bool http10 = false;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = true;  // HTTP/1.1 default unless "Connection: close"
  bool expect_continue = false;
};

// `head` is everything before the blank line (CRLF CRLF), without it. Errors: kInvalidArgument
// naming the malformed part (request line, header line, Content-Length, transfer coding).
StatusOr<RequestHead> ParseRequestHead(std::string_view head);

// Incremental decoder of a chunked body. Feed() consumes bytes from `in` (advancing it) and
// appends payload to `out`. Errors: kInvalidArgument (bad chunk framing), kResourceExhausted
// when the body would exceed `limit`.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(std::size_t limit) : limit_(limit) {}
  Status Feed(std::string_view& in, std::string& out);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  std::string line_;
  uint64_t left_ = 0;
  std::size_t limit_;
};

}  // namespace hami::k8s::http
