// HTTP/1.1 request heads and chunked bodies (http_request.h).
#include "k8s/extender/http_request.h"

#include <cctype>
#include <vector>

namespace hami::k8s::http {
namespace {

constexpr std::size_t kMaxLine = 8192;  // a chunk-size or trailer line

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= 32 || c >= 127 || c == ':' || c == '"' || c == '(' || c == ')' || c == ',') {
      return false;
    }
  }
  return true;
}

// Strict decimal (no sign, no spaces), at most 18 digits: no overflow.
std::optional<uint64_t> Decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Status ParseRequestLine(std::string_view line, RequestHead& h) {
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return InvalidArgument("request line is not \"METHOD target HTTP/1.x\"");
  }
  h.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(h.method)) return InvalidArgument("request line: bad method");
  if (target.empty() || target.front() != '/') {
    return InvalidArgument("request line: target must start with '/'");
  }
  for (char c : target) {
    if (c <= 32 || c == 127) return InvalidArgument("request line: control byte in target");
  }
  h.path = std::string(target.substr(0, target.find('?')));
  if (version == "HTTP/1.0") {
    h.http10 = true;
    h.keep_alive = false;
  } else if (version != "HTTP/1.1") {
    return InvalidArgument("request line: unsupported version");
  }
  return Status::Ok();
}

Status ApplyHeader(std::string_view name, std::string_view value, RequestHead& h) {
  std::string key = Lower(name);
  if (key == "content-length") {
    auto n = Decimal(value);
    if (!n) return InvalidArgument("Content-Length is not a decimal number");
    if (h.content_length && *h.content_length != *n) {
      return InvalidArgument("conflicting Content-Length headers");
    }
    h.content_length = n;
  } else if (key == "transfer-encoding") {
    if (Lower(value) != "chunked") return InvalidArgument("unsupported Transfer-Encoding");
    h.chunked = true;
  } else if (key == "connection") {
    std::string v = Lower(value);
    if (v.find("close") != std::string::npos) h.keep_alive = false;
    if (v.find("keep-alive") != std::string::npos && h.http10) h.keep_alive = true;
  } else if (key == "expect") {
    if (Lower(value) != "100-continue") return InvalidArgument("unsupported Expect");
    h.expect_continue = true;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<RequestHead> ParseRequestHead(std::string_view head) {
  RequestHead h;
  std::size_t pos = head.find("\r\n");
  std::string_view first = head.substr(0, pos);
  if (Status s = ParseRequestLine(first, h); !s.ok()) return s;
  while (pos != std::string_view::npos) {
    std::size_t start = pos + 2;
    pos = head.find("\r\n", start);
    std::string_view line = head.substr(start, pos == std::string_view::npos ? pos : pos - start);
    if (line.empty()) return InvalidArgument("empty header line");
    if (line.front() == ' ' || line.front() == '\t') {
      return InvalidArgument("folded header lines are not supported");
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return InvalidArgument("malformed header line");
    }
    std::string_view value = Trim(line.substr(colon + 1));
    for (char c : value) {
      if ((c < 32 && c != '\t') || c == 127) return InvalidArgument("control byte in header");
    }
    if (Status s = ApplyHeader(line.substr(0, colon), value, h); !s.ok()) return s;
  }
  // Both framings at once is the classic request-smuggling vector: refuse (RFC 9112 6.1).
  if (h.chunked && h.content_length) {
    return InvalidArgument("both Content-Length and Transfer-Encoding");
  }
  return h;
}

Status ChunkedDecoder::Feed(std::string_view& in, std::string& out) {
  while (!in.empty() && state_ != State::kDone) {
    if (state_ == State::kData) {
      std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(left_, in.size()));
      out.append(in.data(), n);
      in.remove_prefix(n);
      left_ -= n;
      if (left_ == 0) state_ = State::kDataEnd;
      continue;
    }
    // Line states: collect up to CRLF.
    std::size_t nl = in.find('\n');
    std::size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
    line_.append(in.data(), take);
    in.remove_prefix(take);
    if (line_.size() > kMaxLine) return InvalidArgument("chunked body: line too long");
    if (nl == std::string_view::npos) return Status::Ok();
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
      return InvalidArgument("chunked body: line not ended by CRLF");
    }
    std::string_view line(line_.data(), line_.size() - 2);
    if (state_ == State::kDataEnd) {
      if (!line.empty()) return InvalidArgument("chunked body: data longer than its size");
      state_ = State::kSize;
    } else if (state_ == State::kSize) {
      std::string_view hex = line.substr(0, line.find(';'));
      if (hex.empty() || hex.size() > 15) return InvalidArgument("chunked body: bad chunk size");
      uint64_t size = 0;
      for (char c : hex) {
        int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                            : -1;
        if (d < 0) return InvalidArgument("chunked body: bad chunk size");
        size = size * 16 + static_cast<uint64_t>(d);
      }
      if (size > limit_ || out.size() + size > limit_) {
        return ResourceExhausted("request body larger than " + std::to_string(limit_) + " bytes");
      }
      left_ = size;
      state_ = size == 0 ? State::kTrailer : State::kData;
    } else if (state_ == State::kTrailer && line.empty()) {
      state_ = State::kDone;
    }
    line_.clear();
  }
  return Status::Ok();
}

}  // namespace hami::k8s::http
