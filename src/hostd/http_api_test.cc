#include "hostd/http_api.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "hostd/client.h"
#include "hostd/test_util.h"

namespace hami::hostd {
namespace {

using nlohmann::json;
using testing::Gpus;
using testing::TempDirGuard;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(1, 8192); }
  void Start(int ngpus, uint64_t mib) {
    DaemonOptions o;
    o.state_dir = dir_.path;
    o.node_name = "n1";
    o.job.libvgpu = "/opt/libvgpu.so";
    auto d = Daemon::Open(o, Gpus(ngpus, mib));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    daemon_ = std::move(*d);
    ApiOptions api;
    api.token = "secret-token-0123456789";
    server_ = std::make_unique<ApiServer>(*daemon_, api);
    sock_ = dir_.path + "/api.sock";
    ASSERT_TRUE(server_->BindUnix(sock_, 0600).ok());
    auto port = server_->BindTcp("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
    server_->Start();
    // Wait until it answers.
    for (int i = 0; i < 200; ++i) {
      if (Cli().Get("/healthz")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  httplib::Client Cli() {
    httplib::Client c(sock_, 80);
    c.set_address_family(AF_UNIX);
    return c;
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  httplib::Result Post(const std::string& path, const std::string& body) {
    return Cli().Post(path, body, "application/json");
  }
  static std::string ErrorMessage(const httplib::Result& r) {
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) return "<no JSON error: " + r->body + ">";
    return j["error"]["message"].get<std::string>();
  }

  TempDirGuard dir_{"api"};
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<ApiServer> server_;
  int port_ = 0;
  std::string sock_;
};

TEST_F(ApiTest, MalformedRequestsAreRefusedWithJsonErrors) {
  struct Case {
    const char* path;
    const char* body;
    int http;
    const char* message;
  } cases[] = {
      {"/v1/slices", "", 400, "body is empty"},
      {"/v1/slices", "{not json", 400, "not valid JSON"},
      {"/v1/slices", "[1]", 400, "must be a JSON object"},
      {"/v1/slices", R"({"gpumem":"2g"})", 400, "unknown field \"gpumem\""},
      {"/v1/slices", R"({"memory":"2q"})", 400, "bad memory size"},
      {"/v1/slices", R"({"gpus":-1})", 400, "\"gpus\" is -1"},
      {"/v1/slices", R"({"cores":"30"})", 400, "\"cores\" must be an integer"},
      {"/v1/slices", R"({"memory":"100g"})", 422, "cannot fit on this host"},
      {"/v1/slices/s1x/job", R"({"pid":1})", 400, "bad slice id"},
      {"/v1/slices/s99/job", R"({"pid":1})", 404, "no slice s99"},
      {"/v1/slices/s99/job", R"({"pid":"1"})", 400, "\"pid\" must be an integer"},
      {"/v1/slices/s99/job", R"({"pid":4294967297})", 400, "\"pid\" must be an integer in"},
      {"/v1/slices/s99/job", R"({"pid":18446744073709551615})", 400, "must be an integer in"},
      {"/v1/slices", R"({"owner":{"pid":4294967297}})", 400, "\"pid\" is 4294967297"},
      {"/v1/slices", R"({"gpu_uuids":[""]})", 400, "empty entry"},
      {"/v1/slices", R"({"memory":""})", 400, "empty"},
  };
  for (const auto& c : cases) {
    auto r = Post(c.path, c.body);
    ASSERT_TRUE(r) << c.body;
    EXPECT_EQ(r->status, c.http) << c.body << " -> " << r->body;
    EXPECT_NE(r->body.find("\"error\""), std::string::npos) << r->body;
    EXPECT_NE(ErrorMessage(r).find(c.message), std::string::npos)
        << c.body << " -> " << ErrorMessage(r);
  }
  httplib::Client c = Cli();
  auto r = c.Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(ErrorMessage(r).find("no route"), std::string::npos);
  r = c.Delete("/v1/slices/abc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = c.Get("/v1/queue/1?wait_ms=soon");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(daemon_->Slices().empty());
}

TEST_F(ApiTest, GrantListReleaseThroughClient) {
  auto client = ApiClient::Make("unix:" + sock_);
  ASSERT_TRUE(client.ok());
  json req = {{"memory", "2g"}, {"cores", 25}, {"command", {"sleep", "1"}}};
  auto r = (*client)->Call("POST", "/v1/slices", &req);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->http, 201) << r->body.dump();
  json slice = r->body["slice"];
  EXPECT_EQ(slice["devices"][0]["memory_mib"], 2048);
  EXPECT_EQ(slice["env"]["set"]["HAMI_LIMITS_FILE"], slice["limits_file"]);
  EXPECT_EQ(slice["env"]["prepend"]["LD_PRELOAD"], "/opt/libvgpu.so");
  EXPECT_EQ(slice["usage"][0]["used_bytes"], 0);

  auto gpus = (*client)->CallOk("GET", "/v1/gpus");
  ASSERT_TRUE(gpus.ok());
  EXPECT_EQ((*gpus)["gpus"][0]["allocated_memory_mib"], 2048);
  EXPECT_EQ((*gpus)["gpus"][0]["allocated_cores"], 25);
  EXPECT_TRUE((*gpus)["fake"].get<bool>());

  auto list = (*client)->CallOk("GET", "/v1/slices");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ((*list)["slices"].size(), 1u);

  auto metrics = Cli().Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name :
       {"hami_build_info{",
        "hami_gpu_memory_allocated_bytes{node=\"n1\",device_uuid=\"GPU-test-0\"",
        "hami_vgpu_memory_limit_bytes{namespace=\"hami-run\",pod=\"s1\"",
        "hami_vgpu_memory_used_bytes{", "hami_gpu_memory_limit_bytes{", "hami_queue_length{"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  }
  EXPECT_NE(metrics->body.find("} 2147483648\n"), std::string::npos);
  // Compute series in percent, as HAMi's scheduler exports them (a card is 100).
  std::string body = metrics->body;
  auto value_of = [&](const std::string& prefix) {
    size_t at = body.find(prefix);
    if (at == std::string::npos) return std::string("missing");
    size_t sp = body.find("} ", at), nl = body.find('\n', at);
    return body.substr(sp + 2, nl - sp - 2);
  };
  EXPECT_EQ(value_of("hami_gpu_core_allocated_ratio{"), "25") << body;
  EXPECT_EQ(value_of("hami_gpu_core_limit_ratio{"), "100") << body;
  EXPECT_EQ(value_of("hami_vgpu_core_allocated_ratio{"), "25") << body;

  auto del = (*client)->CallOk("DELETE", "/v1/slices/" + slice["name"].get<std::string>());
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  auto again = (*client)->CallOk("DELETE", "/v1/slices/s1");
  EXPECT_EQ(again.status().code(), StatusCode::kNotFound);
}

TEST_F(ApiTest, NoWaitAndQueueOverHttp) {
  auto a = Post("/v1/slices", R"({"memory":"8g"})");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 201);
  auto nowait = Post("/v1/slices", R"({"memory":"1g","wait":false})");
  ASSERT_TRUE(nowait);
  EXPECT_EQ(nowait->status, 409);
  EXPECT_NE(ErrorMessage(nowait).find("insufficient GPU memory"), std::string::npos);
  auto q1 = Post("/v1/slices", R"({"memory":"6g"})");
  auto q2 = Post("/v1/slices", R"({"memory":"1g"})");
  ASSERT_TRUE(q1 && q2);
  ASSERT_EQ(q1->status, 202);
  ASSERT_EQ(q2->status, 202);
  json j1 = json::parse(q1->body), j2 = json::parse(q2->body);
  EXPECT_EQ(j1["position"], 1);
  EXPECT_EQ(j2["position"], 2);
  EXPECT_NE(j1["reason"].get<std::string>().find("insufficient GPU memory"), std::string::npos);

  // A long poll returns as soon as the slice is granted.
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Cli().Delete("/v1/slices/s1");
  });
  httplib::Client c = Cli();
  auto p = c.Get("/v1/queue/" + std::to_string(j1["ticket"].get<int64_t>()) + "?wait_ms=5000");
  releaser.join();
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 200);
  json jp = json::parse(p->body);
  EXPECT_TRUE(jp["granted"].get<bool>());
  EXPECT_EQ(jp["slice"]["devices"][0]["memory_mib"], 6144);
  auto p2 = c.Get("/v1/queue/" + std::to_string(j2["ticket"].get<int64_t>()));
  ASSERT_TRUE(p2);
  EXPECT_TRUE(json::parse(p2->body)["granted"].get<bool>());
}

TEST_F(ApiTest, TwentyConcurrentHttpRequestsNeverOvercommit) {
  // One 8 GiB card: at most 5 slices of 1500 MiB.
  std::atomic<int> granted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      auto c = ApiClient::Make("unix:" + sock_);
      json body = {{"memory_mib", 1500},
                   {"cores", 10},
                   {"wait", false},
                   {"request_id", "r" + std::to_string(i)}};
      auto r = (*c)->Call("POST", "/v1/slices", &body);
      if (r.ok() && r->http == 201) {
        ++granted;
      } else if (r.ok() && r->http == 409) {
        ++refused;
      } else {
        ++other;
        std::fprintf(stderr, "request failed: %s\n",
                     r.ok() ? r->body.dump().c_str() : r.status().ToString().c_str());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 5);
  EXPECT_EQ(refused.load(), 15);
  EXPECT_EQ(other.load(), 0);
  auto g = daemon_->Gpus();
  EXPECT_EQ(g[0].usage.used_mem_mib, 5 * 1500);
  EXPECT_LE(g[0].usage.used_mem_mib, g[0].memory_mib);
}

TEST_F(ApiTest, TcpWithoutTheTokenGetsNothing) {
  httplib::Client tcp("127.0.0.1", port_);
  for (const char* path : {"/v1/slices", "/v1/gpus", "/metrics", "/v1/whoami"}) {
    auto r = tcp.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_NE(ErrorMessage(r).find("API token"), std::string::npos);
  }
  auto post = tcp.Post("/v1/slices", R"({"memory":"1g"})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  tcp.set_bearer_token_auth("secret-token-0123456780");  // one character off
  EXPECT_EQ(tcp.Get("/v1/slices")->status, 401);
  // A cookie is good for reading (a browser page), never for a change.
  httplib::Client cookie("127.0.0.1", port_);
  httplib::Headers h = {{"Cookie", "a=b; hami_token=secret-token-0123456789"}};
  EXPECT_EQ(cookie.Get("/v1/slices", h)->status, 200);
  EXPECT_EQ(cookie.Post("/v1/slices", h, R"({"memory":"1g"})", "application/json")->status, 401);
  EXPECT_TRUE(daemon_->Slices().empty());

  auto client = ApiClient::Make("127.0.0.1:" + std::to_string(port_), "secret-token-0123456789");
  ASSERT_TRUE(client.ok());
  auto who = (*client)->CallOk("GET", "/v1/whoami");
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_TRUE((*who)["admin"].get<bool>());
  json req = {{"memory", "1g"}};
  auto r = (*client)->Call("POST", "/v1/slices", &req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->http, 201) << r->body.dump();
}

TEST_F(ApiTest, UnixSocketCallerIsThePeerUid) {
  auto r = Cli().Get("/v1/whoami");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["uid"].get<uint32_t>(), geteuid());
  // A slice requested over the socket is the caller's, owned by the calling process whatever
  // the body says about uid (a user cannot give a slice to someone else).
  auto p = Post("/v1/slices", R"({"memory":"1g"})");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 201) << p->body;
  json s = json::parse(p->body)["slice"];
  EXPECT_EQ(s["uid"].get<uint32_t>(), geteuid());
  EXPECT_EQ(s["request"]["owner"]["pid"].get<int>(), getpid());
}

TEST_F(ApiTest, HugeBodyIsRefusedWithAClearErrorAndNothingStored) {
  std::string big = R"({"memory":"1g","command":[")" + std::string(10 << 20, 'x') + R"("]})";
  auto r = Post("/v1/slices", big);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(ErrorMessage(r).find("request body too large"), std::string::npos) << r->body;
  // Under the body limit but over the command bound: refused by name, not truncated.
  std::string cmd = R"({"memory":"1g","command":[")" + std::string(20000, 'x') + R"("]})";
  r = Post("/v1/slices", cmd);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(ErrorMessage(r).find("\"command\" is too large"), std::string::npos) << r->body;
  EXPECT_TRUE(daemon_->Slices().empty());
  EXPECT_TRUE(daemon_->Queue().empty());
}

}  // namespace
}  // namespace hami::hostd
