#include "k8s/extender/http_request.h"

#include <gtest/gtest.h>

namespace hami::k8s::http {
namespace {

TEST(HttpRequestHead, Table) {
  struct Case {
    const char* name;
    std::string head;
    bool ok;
    std::string path = "";
    std::optional<uint64_t> length = std::nullopt;
    bool keep_alive = true;
  } cases[] = {
      {"get", "GET /healthz HTTP/1.1\r\nHost: x", true, "/healthz"},
      {"query dropped", "GET /metrics?x=1 HTTP/1.1", true, "/metrics"},
      {"post with length", "POST /filter HTTP/1.1\r\ncontent-length: 12", true, "/filter", 12},
      {"close", "POST /bind HTTP/1.1\r\nConnection: close\r\nContent-Length: 0", true, "/bind", 0,
       false},
      {"http/1.0 closes", "GET / HTTP/1.0", true, "/", std::nullopt, false},
      {"no version", "GET /", false},
      {"http/2 preface", "PRI * HTTP/2.0", false},
      {"relative target", "GET healthz HTTP/1.1", false},
      {"negative length", "POST / HTTP/1.1\r\nContent-Length: -1", false},
      {"huge length", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999", false},
      {"two lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", false},
      {"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
       false},
      {"gzip coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip", false},
      {"folded header", "GET / HTTP/1.1\r\nX: a\r\n b", false},
      {"no colon", "GET / HTTP/1.1\r\nbroken", false},
      {"control byte", std::string("GET / HTTP/1.1\r\nX: a\x01", 21), false},
  };
  for (const Case& c : cases) {
    auto h = ParseRequestHead(c.head);
    ASSERT_EQ(h.ok(), c.ok) << c.name << ": " << (h.ok() ? "" : h.status().message());
    if (!c.ok) continue;
    EXPECT_EQ(h->path, c.path) << c.name;
    EXPECT_EQ(h->content_length, c.length) << c.name;
    EXPECT_EQ(h->keep_alive, c.keep_alive) << c.name;
  }
}

TEST(HttpChunked, DecodesAcrossSplitsAndEnforcesTheLimit) {
  const std::string wire = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
  for (size_t step : {1u, 3u, 100u}) {
    ChunkedDecoder d(1024);
    std::string out;
    for (size_t i = 0; i < wire.size(); i += step) {
      std::string_view in = std::string_view(wire).substr(i, step);
      ASSERT_TRUE(d.Feed(in, out).ok()) << step;
      EXPECT_TRUE(in.empty());
    }
    EXPECT_TRUE(d.done());
    EXPECT_EQ(out, "hello world");
  }
  ChunkedDecoder small(4);
  std::string out;
  std::string_view in = "5\r\nhello\r\n";
  EXPECT_EQ(small.Feed(in, out).code(), StatusCode::kResourceExhausted);
  ChunkedDecoder bad(100);
  std::string_view junk = "zz\r\n";
  EXPECT_EQ(bad.Feed(junk, out).code(), StatusCode::kInvalidArgument);
  ChunkedDecoder overrun(100);
  std::string_view longer = "1\r\nab\r\n";
  EXPECT_EQ(overrun.Feed(longer, out).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hami::k8s::http
