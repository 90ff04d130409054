// Attacks on hami-scheduler's HTTP server (the extender and webhook front): slowloris clients,
// slow bodies, huge bodies, a connection flood, request smuggling and malformed JSON. Each test
// fails if the attack works: a legitimate request is held up, memory grows, a connection is
// held past the request deadline, or the process crashes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/http_server.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the peer closes, a full response (head + Content-Length body) arrived, or the
// timeout; returns what was read.
std::string ReadResponse(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto head_end = out.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      auto cl = out.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) {
        size_t len = std::stoul(out.substr(cl + 16));
        if (out.size() >= head_end + 4 + len) return out;
      }
    }
    int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (ms <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return out;
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// One request on a fresh connection; the status code or 0 when no answer came in `timeout`.
int Request(int port, const std::string& raw, std::chrono::milliseconds timeout,
            std::string* body = nullptr) {
  int fd = Connect(port);
  if (fd < 0) return 0;
  SendAll(fd, raw);
  std::string r = ReadResponse(fd, timeout);
  close(fd);
  if (r.size() < 12 || r.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  if (body) *body = r.substr(r.find("\r\n\r\n") + 4);
  return std::stoi(r.substr(9, 3));
}

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}
const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

size_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

class HttpAttack : public ::testing::Test {
 protected:
  void SetUp() override { Start(HttpServerOptions{}); }
  // Starts the API-server double, an extender with four nodes and the server under attack.
  void Start(HttpServerOptions so) {
    ASSERT_TRUE(api_.Start().ok());
    ClientConfig cfg = api_.client_config();
    client_ = HttpKubeClient::Create(cfg).value();
    ExtenderOptions eo;
    eo.record_events = false;
    ext_ = std::make_unique<Extender>(eo, client_.get());
    for (int i = 0; i < 4; ++i) {
      std::string n = "node-" + std::to_string(i);
      ext_->UpsertNode(testing::MakeNode(n, testing::MakeGpus(n, 2)));
    }
    so.host = "127.0.0.1";
    so.port = 0;
    so.request_timeout = 1500ms;
    so.keep_alive_timeout_s = 1;
    server_ = std::make_unique<HttpServer>(so, ext_.get(), WebhookOptions{});
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  // A filter with a GPU pod over the four nodes.
  static std::string FilterBody() {
    Json pod = testing::MakePod("default", "p",
                                {testing::FakeContainer{"main", {{"nvidia.com/gpu", "1"}}}});
    return Json{{"pod", pod}, {"nodenames", {"node-0", "node-1", "node-2", "node-3"}}}.dump();
  }
  // Every legitimate endpoint answers within `limit`.
  void ExpectServiceAnswers(std::chrono::milliseconds limit) {
    int port = server_->port();
    auto t0 = Clock::now();
    EXPECT_EQ(Request(port, kHealthz, limit), 200) << "/healthz";
    std::string body;
    EXPECT_EQ(Request(port, Post("/filter", FilterBody()), limit, &body), 200) << "/filter";
    EXPECT_NE(body.find("node-0"), std::string::npos) << body;
    // A bind of an unknown pod: answered (with its error), not stuck.
    EXPECT_EQ(Request(port, Post("/bind", R"({"podName":"x","podNamespace":"d","node":"node-0"})"),
                      limit),
              200)
        << "/bind";
    EXPECT_EQ(Request(port, Post("/webhook", R"({"kind":"AdmissionReview"})"), limit), 400)
        << "/webhook";
    EXPECT_LT(Clock::now() - t0, limit * 4);
  }

  testing::FakeApiServer api_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<Extender> ext_;
  std::unique_ptr<HttpServer> server_;
};

// 200 slowloris clients (more than the 64 threads that used to be the whole server) trickle a
// request head one byte at a time: everyone else is still served at once, and the server drops
// each slow client by the request deadline.
TEST_F(HttpAttack, SlowlorisHeadsDoNotBlockOthersAndAreCut) {
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /filter HTTP/1.1\r\nHost: x\r\n");
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (int fd : slow) (void)send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(100ms);
    }
  });
  ExpectServiceAnswers(1000ms);
  // Past the 1.5 s request deadline every slow connection is closed (408 or EOF).
  std::this_thread::sleep_for(2500ms);
  stop = true;
  trickle.join();
  int closed = 0;
  for (int fd : slow) {
    std::string r = ReadResponse(fd, 200ms);
    char c;
    if (r.find(" 408 ") != std::string::npos || recv(fd, &c, 1, MSG_DONTWAIT) == 0) ++closed;
    close(fd);
  }
  EXPECT_EQ(closed, 200);
}

// A body promised by Content-Length and sent slowly is cut at the deadline (408).
TEST_F(HttpAttack, SlowBodyIsCutAtTheDeadline) {
  int fd = Connect(server_->port());
  SendAll(fd, "POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{");
  auto t0 = Clock::now();
  std::string r;
  while (Clock::now() - t0 < 4s) {
    if (!SendAll(fd, " ")) break;
    r += ReadResponse(fd, 100ms);
    if (!r.empty()) break;
  }
  close(fd);
  EXPECT_NE(r.find(" 408 "), std::string::npos) << r;
  EXPECT_LT(Clock::now() - t0, 3s);
}

// A client that never reads its (large) answer cannot hold a connection forever either.
TEST_F(HttpAttack, IdleConnectionsAreClosed) {
  int fd = Connect(server_->port());
  auto t0 = Clock::now();
  char c;
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_LE(recv(fd, &c, 1, 0), 0);
  EXPECT_LT(Clock::now() - t0, 3s);
  close(fd);
}

// A declared 1 GiB body is refused before a byte of it is read; a chunked body over the limit
// too; the process does not grow.
TEST_F(HttpAttack, HugeBodiesAreRefusedWithoutBeingRead) {
  const size_t before = RssBytes();
  std::string head = "POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n";
  EXPECT_EQ(Request(server_->port(), head, 2000ms), 413);
  EXPECT_EQ(Request(server_->port(),
                    "POST /bind HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n", 2000ms),
            413)
      << "bind bodies are small: a 1 MiB one is refused";
  int fd = Connect(server_->port());
  SendAll(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk(1 << 20, 'a');
  char size_line[32];
  snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  std::string answer;
  for (int i = 0; i < 40 && answer.empty(); ++i) {  // 40 MiB, over the 16 MiB limit
    if (!SendAll(fd, std::string(size_line) + chunk + "\r\n")) break;
    answer = ReadResponse(fd, 10ms);
  }
  answer += ReadResponse(fd, 1000ms);
  close(fd);
  EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer.substr(0, 200);
  EXPECT_LT(RssBytes(), before + (32u << 20));
}

// Bodies just under the limit, one after another: memory is given back after each (the server
// used to keep 1.2 GB after large bodies). The client runs in a child process so that only the
// server's memory is measured here.
TEST_F(HttpAttack, LargeBodiesDoNotLeaveTheProcessLarge) {
  ASSERT_EQ(Request(server_->port(), kHealthz, 1000ms), 200);
  const size_t before = RssBytes();
  const int port = server_->port();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string big = "{\"pod\":{},\"nodenames\":[\"" + std::string((15u << 20), 'n') + "\"]}";
    for (int i = 0; i < 6; ++i) {
      int code = Request(port, Post("/filter", big), 10000ms);
      if (code != 200 && code != 400) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a large filter was refused";
  EXPECT_LT(RssBytes(), before + (48u << 20))
      << "RSS grew by " << (RssBytes() - before) / (1 << 20) << " MiB";
}

// More connections than the cap: the extra ones are refused at once, and once the idle flood is
// dropped (deadline) the service answers again.
class HttpFlood : public HttpAttack {
 protected:
  void SetUp() override {
    HttpServerOptions so;
    so.max_connections = 50;
    Start(so);
  }
};

TEST_F(HttpFlood, ConnectionFloodIsCapped) {
  std::vector<int> flood;
  for (int i = 0; i < 50; ++i) flood.push_back(Connect(server_->port()));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(server_->active_connections(), 50);
  std::string body;
  EXPECT_EQ(Request(server_->port(), kHealthz, 1000ms), 503) << "over the cap: refused at once";
  std::this_thread::sleep_for(2000ms);  // the flood's request deadline passes
  EXPECT_EQ(Request(server_->port(), kHealthz, 1000ms), 200);
  for (int fd : flood) close(fd);
}

// Framing attacks: both Content-Length and chunked (request smuggling), two different
// Content-Lengths, a header flood, garbage instead of HTTP.
TEST_F(HttpAttack, MalformedFramingIsRefused) {
  const int port = server_->port();
  EXPECT_EQ(Request(port,
                    "POST /filter HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n0\r\n\r\n",
                    1000ms),
            400);
  EXPECT_EQ(Request(port, "POST /filter HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
                    1000ms),
            400);
  EXPECT_EQ(Request(port, "POST /filter HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 1000ms), 400);
  std::string flood = "GET /healthz HTTP/1.1\r\n";
  for (int i = 0; i < 5000; ++i)
    flood += "X-H" + std::to_string(i) + ": " + std::string(20, 'v') + "\r\n";
  EXPECT_EQ(Request(port, flood + "\r\n", 2000ms), 431);
  EXPECT_EQ(Request(port, std::string("\x16\x03\x01\x02\x00\x01\x00\r\n\r\n", 11), 1000ms), 400);
  ExpectServiceAnswers(1000ms);
}

// Malformed and hostile JSON on every POST endpoint: a 400 with a message, never a crash or a
// 5xx, and the server keeps serving.
TEST_F(HttpAttack, MalformedJsonIsA400) {
  const std::vector<std::string> bodies = {
      "", "{", "null", "[]", "\"pod\"", "{\"pod\":5}", "{\"Pod\":{\"metadata\":[]}}",
      "{\"pod\":{\"spec\":{\"containers\":\"x\"}}}", std::string("{\"pod\":\0}", 9),
      "{\"pod\":{},\"nodenames\":[1,2]}", "{\"pod\":{},\"nodes\":{\"items\":5}}", "\xff\xfe{}",
      std::string(200000, '['),
      // Balanced deep nesting: parsed and destroyed
      // without recursion.
      "{\"pod\":" + std::string(30000, '[') + std::string(30000, ']') + "}", "{\"podName\":1e999}",
      "{\"request\":{\"uid\":\"u\",\"object\":[]}}"};
  for (const char* path : {"/filter", "/prioritize", "/bind", "/webhook"}) {
    for (const auto& b : bodies) {
      std::string reply;
      int code = Request(server_->port(), Post(path, b), 3000ms, &reply);
      const bool too_big = b.size() > (64u << 10) && std::string(path) == "/bind";
      EXPECT_TRUE(code == 400 || code == 200 || (too_big && code == 413))
          << path << " " << b.substr(0, 40) << ": " << code;
      // A 200 carries the problem in its error field (filter, bind) or ranks nothing
      // (prioritize of no candidates).
      if (code == 200) {
        EXPECT_TRUE(reply.find("error") != std::string::npos || reply == "[]") << path << reply;
      }
    }
  }
  ExpectServiceAnswers(1000ms);
}

}  // namespace
}  // namespace hami::k8s
