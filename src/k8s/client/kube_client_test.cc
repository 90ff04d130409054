// HttpKubeClient and Reflector against the API-server test double.
#include "k8s/client/kube_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "k8s/client/http_kube_client.h"
#include "k8s/client/rate_limiter.h"
#include "k8s/client/reflector.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

using testing::FakeApiServer;
using testing::MakeGpuPod;
using testing::MakeGpus;
using testing::MakeNode;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    server_.set_bookmark_interval(std::chrono::milliseconds(100));
    ClientConfig cfg = server_.client_config();
    auto c = HttpKubeClient::Create(cfg);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  void TearDown() override {
    client_.reset();
    server_.Stop();
  }
  FakeApiServer server_;
  std::unique_ptr<HttpKubeClient> client_;
};

// Sends one raw HTTP request (for requests the client would never send) and returns the status.
int RawRequest(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  (void)!write(fd, request.data(), request.size());
  char buf[256] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 12) return -1;
  return std::atoi(buf + 9);  // "HTTP/1.1 415 ..."
}

TEST_F(ClientTest, CreateGetListCarryResourceVersions) {
  auto created = client_->Create(Resource::Pods(), "team-a", MakeGpuPod("team-a", "p1", 1, 1000));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(MetaString(*created, "uid").empty());
  std::string rv1 = MetaString(*created, "resourceVersion");
  ASSERT_FALSE(rv1.empty());
  auto got = client_->Get(Resource::Pods(), "team-a", "p1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(MetaString(*got, "resourceVersion"), rv1);
  EXPECT_EQ((*got)["kind"], "Pod");

  ASSERT_TRUE(client_->Create(Resource::Nodes(), "", MakeNode("n1", MakeGpus("n1", 2))).ok());
  auto list = client_->List(Resource::Pods(), {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_GT(std::stoull(list->resource_version), std::stoull(rv1));

  auto again = client_->Create(Resource::Pods(), "team-a", MakeGpuPod("team-a", "p1", 1, 1000));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(client_->Get(Resource::Pods(), "team-a", "nope").status().code(),
            StatusCode::kNotFound);
}

TEST_F(ClientTest, ListSelectorsAndPaging) {
  for (int i = 0; i < 7; ++i) {
    auto pod = MakeGpuPod("ns", "p" + std::to_string(i), 1, 100);
    if (i % 2 == 0) pod["spec"]["nodeName"] = "node-a";
    ASSERT_TRUE(client_->Create(Resource::Pods(), "ns", pod).ok());
  }
  ASSERT_TRUE(client_->Create(Resource::Pods(), "other", MakeGpuPod("other", "x", 1, 1)).ok());
  ListOptions by_node;
  by_node.field_selector = "spec.nodeName=node-a";
  auto l = client_->List(Resource::Pods(), by_node);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->items.size(), 4u);
  ListOptions by_label;
  by_label.label_selector = "app=p3";
  EXPECT_EQ(client_->List(Resource::Pods(), by_label)->items.size(), 1u);
  ListOptions paged;
  paged.ns = "ns";
  paged.limit = 3;
  auto p = client_->List(Resource::Pods(), paged);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->items.size(), 7u);
  EXPECT_GE(server_.request_count("GET"), 3u + 2u);  // three pages
  ListOptions bad;
  bad.field_selector = "spec.unknown=1";
  EXPECT_EQ(client_->List(Resource::Pods(), bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, WatchStreamsEventsInOrderWithBookmarks) {
  auto list = client_->List(Resource::Pods(), {});
  ASSERT_TRUE(list.ok());
  std::vector<WatchEvent> events;
  std::mutex mu;
  CancelToken cancel;
  std::thread watcher([&] {
    ListOptions o;
    o.resource_version = list->resource_version;
    Status s = client_->Watch(
        Resource::Pods(), o,
        [&](const WatchEvent& ev) {
          std::lock_guard<std::mutex> lock(mu);
          events.push_back(ev);
          return true;
        },
        &cancel);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  ASSERT_TRUE(client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "w", 1, 10)).ok());
  ASSERT_TRUE(client_
                  ->Patch(Resource::Pods(), "ns", "w", PatchType::kMerge,
                          {{"metadata", {{"annotations", {{"a", "b"}}}}}})
                  .ok());
  ASSERT_TRUE(client_->Delete(Resource::Pods(), "ns", "w").ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto count = [&](WatchEventType t) {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (auto& e : events) n += e.type == t;
    return n;
  };
  while (std::chrono::steady_clock::now() < deadline &&
         (count(WatchEventType::kDeleted) < 1 || count(WatchEventType::kBookmark) < 1)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  cancel.Cancel();
  watcher.join();
  std::vector<WatchEventType> kinds;
  for (auto& e : events) {
    if (e.type != WatchEventType::kBookmark) kinds.push_back(e.type);
  }
  ASSERT_EQ(kinds.size(), 3u);
  EXPECT_EQ(kinds[0], WatchEventType::kAdded);
  EXPECT_EQ(kinds[1], WatchEventType::kModified);
  EXPECT_EQ(kinds[2], WatchEventType::kDeleted);
  EXPECT_GE(count(WatchEventType::kBookmark), 1);
}

TEST_F(ClientTest, WatchFromCompactedVersionIsGone) {
  ASSERT_TRUE(client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "a", 1, 10)).ok());
  auto list = client_->List(Resource::Pods(), {});
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "b", 1, 10)).ok());
  server_.Compact();
  ListOptions o;
  o.resource_version = list->resource_version;
  Status s = client_->Watch(
      Resource::Pods(), o, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_TRUE(IsGone(s)) << s.ToString();
}

TEST_F(ClientTest, CancelEndsIdleWatchPromptly) {
  CancelToken cancel;
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.Cancel();
  });
  ListOptions o;
  o.allow_bookmarks = false;
  Status s = client_->Watch(
      Resource::Nodes(), o, [](const WatchEvent&) { return true; }, &cancel);
  t.join();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(ClientTest, PatchTypesSendTheirContentType) {
  ASSERT_TRUE(client_->Create(Resource::Nodes(), "", MakeNode("n1", MakeGpus("n1", 1))).ok());
  auto m = client_->Patch(Resource::Nodes(), "", "n1", PatchType::kMerge,
                          {{"metadata", {{"annotations", {{"x", "1"}}}}}});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Annotation(*m, "x"), "1");
  auto j = client_->Patch(
      Resource::Nodes(), "", "n1", PatchType::kJson,
      Json::array({{{"op", "replace"}, {"path", "/metadata/annotations/x"}, {"value", "2"}}}));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(Annotation(*j, "x"), "2");
  auto sm = client_->Patch(Resource::Nodes(), "", "n1", PatchType::kStrategicMerge,
                           {{"metadata", {{"annotations", {{"x", nullptr}}}}}});
  ASSERT_TRUE(sm.ok());
  EXPECT_EQ(Annotation(*sm, "x"), "");
  // A failing JSON-patch test operation is rejected as invalid.
  auto bad = client_->Patch(
      Resource::Nodes(), "", "n1", PatchType::kJson,
      Json::array({{{"op", "test"}, {"path", "/metadata/name"}, {"value", "other"}}}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto types = server_.patch_content_types();
  ASSERT_EQ(types.size(), 4u);
  EXPECT_EQ(types[0], "application/merge-patch+json");
  EXPECT_EQ(types[1], "application/json-patch+json");
  EXPECT_EQ(types[2], "application/strategic-merge-patch+json");
  // The double refuses other media types, like the real API server.
  std::string body = "{}";
  int code = RawRequest(server_.port(),
                        "PATCH /api/v1/nodes/n1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        "application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" +
                            body);
  EXPECT_EQ(code, 415);
}

TEST_F(ClientTest, StaleResourceVersionConflictsAndRetryWins) {
  auto created = client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "c", 1, 10));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(
      server_.MergePatch("pods", "ns", "c", {{"metadata", {{"labels", {{"z", "1"}}}}}}).ok());
  Json stale = *created;
  stale["metadata"]["labels"]["y"] = "2";
  EXPECT_EQ(client_->Update(Resource::Pods(), "ns", stale).status().code(), StatusCode::kAborted);
  // A merge patch with a stale resourceVersion conflicts too.
  EXPECT_EQ(client_
                ->Patch(Resource::Pods(), "ns", "c", PatchType::kMerge,
                        {{"metadata",
                          {{"resourceVersion", MetaString(*created, "resourceVersion")},
                           {"labels", {{"y", "2"}}}}}})
                .status()
                .code(),
            StatusCode::kAborted);
  // PatchWithRetry survives conflicts (two injected 409s) and keeps the concurrent change.
  server_.FailNext("PATCH", "/pods/c", 409, 2);
  int builds = 0;
  auto r = PatchWithRetry(*client_, Resource::Pods(), "ns", "c", [&](const Json& cur) {
    ++builds;
    EXPECT_EQ(Label(cur, "z"), "1");
    return StatusOr<Json>(Json{{"metadata", {{"annotations", {{"k", "v"}}}}}});
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(builds, 3);
  EXPECT_EQ(Annotation(*r, "k"), "v");
  EXPECT_EQ(Label(*r, "z"), "1");
  server_.FailNext("PATCH", "/pods/c", 409, 10);
  auto gave_up = PatchWithRetry(
      *client_, Resource::Pods(), "ns", "c",
      [&](const Json&) {
        return StatusOr<Json>(Json{{"metadata", {{"labels", {{"q", "1"}}}}}});
      },
      3);
  EXPECT_EQ(gave_up.status().code(), StatusCode::kAborted);
}

TEST_F(ClientTest, BindingSetsNodeNameOnce) {
  auto created = client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "b", 1, 10));
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(client_->Bind("ns", "b", "wrong-uid", "n1").code(), StatusCode::kAborted);
  ASSERT_TRUE(client_->Bind("ns", "b", MetaString(*created, "uid"), "n1").ok());
  auto got = client_->Get(Resource::Pods(), "ns", "b");
  EXPECT_EQ((*got)["spec"]["nodeName"], "n1");
  EXPECT_EQ(client_->Bind("ns", "b", "", "n2").code(), StatusCode::kAborted);
  EXPECT_EQ(client_->Bind("ns", "missing", "", "n2").code(), StatusCode::kNotFound);
}

TEST_F(ClientTest, EventsAreRecorded) {
  auto pod = client_->Create(Resource::Pods(), "ns", MakeGpuPod("ns", "e", 1, 10));
  ASSERT_TRUE(pod.ok());
  ASSERT_TRUE(
      RecordEvent(*client_, *pod, "Warning", "FailedBinding", "no luck", "hami-scheduler").ok());
  auto events = server_.List("events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["involvedObject"]["name"], "e");
  EXPECT_EQ(events[0]["involvedObject"]["uid"], MetaString(*pod, "uid"));
  EXPECT_EQ(events[0]["reason"], "FailedBinding");
  EXPECT_EQ(events[0]["type"], "Warning");
}

TEST_F(ClientTest, ErrorsMapToStatusCodes) {
  server_.FailNext("GET", "/nodes", 500);
  EXPECT_EQ(client_->List(Resource::Nodes(), {}).status().code(), StatusCode::kUnavailable);
  server_.FailNext("GET", "/nodes", 403);
  EXPECT_EQ(client_->List(Resource::Nodes(), {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(client_->List(Resource::Nodes(), {}).ok());
  server_.Stop();
  EXPECT_EQ(client_->List(Resource::Nodes(), {}).status().code(), StatusCode::kUnavailable);
}

TEST(ClientConfigTest, BadServerUrlsAreRejected) {
  ClientConfig cfg;
  cfg.server = "ftp://x";
  EXPECT_EQ(HttpKubeClient::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.server = "https://host:99999";
  EXPECT_EQ(HttpKubeClient::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.server = "https://host:6443";
  cfg.client_cert_pem = "not pem";
  cfg.client_key_pem = "not pem";
  EXPECT_EQ(HttpKubeClient::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.client_cert_pem.clear();
  cfg.client_key_pem.clear();
  EXPECT_TRUE(HttpKubeClient::Create(cfg).ok());
}

TEST(RateLimiterTest, TokenBucketLimitsRate) {
  RateLimiter slow(1, 3);  // refills one token per second: no refill during the test
  EXPECT_TRUE(slow.TryAcquire());
  EXPECT_TRUE(slow.TryAcquire());
  EXPECT_TRUE(slow.TryAcquire());
  EXPECT_FALSE(slow.TryAcquire());  // burst spent
  RateLimiter rl(20, 1);
  auto start = std::chrono::steady_clock::now();
  rl.Acquire();  // the burst
  rl.Acquire();  // ~50 ms
  rl.Acquire();  // ~50 ms
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(90));
  RateLimiter off(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(off.TryAcquire());
}

TEST(WatchEventTest, ParsesAndRejects) {
  auto ev = ParseWatchEvent(R"({"type":"MODIFIED","object":{"metadata":{"name":"a"}}})");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->type, WatchEventType::kModified);
  EXPECT_FALSE(ParseWatchEvent("{").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"WHAT","object":{}})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED","object":3})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"([1,2])").ok());
}

// ---- Reflector ----

class ReflectorTest : public ClientTest {
 protected:
  struct Seen {
    std::mutex mu;
    std::map<std::string, Json> objects;
    int adds = 0, updates = 0, deletes = 0, syncs = 0;
  };
  ReflectorHandlers Handlers(Seen* s) {
    ReflectorHandlers h;
    h.on_add = [s](const Json& o) {
      std::lock_guard<std::mutex> l(s->mu);
      s->objects[ObjectKey(o)] = o;
      s->adds++;
    };
    h.on_update = [s](const Json&, const Json& o) {
      std::lock_guard<std::mutex> l(s->mu);
      s->objects[ObjectKey(o)] = o;
      s->updates++;
    };
    h.on_delete = [s](const Json& o) {
      std::lock_guard<std::mutex> l(s->mu);
      s->objects.erase(ObjectKey(o));
      s->deletes++;
    };
    h.on_synced = [s](bool) {
      std::lock_guard<std::mutex> l(s->mu);
      s->syncs++;
    };
    return h;
  }
  // Waits until the handlers' view equals the server's pods.
  bool Converges(Seen* s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      std::map<std::string, std::string> want, have;
      for (auto& p : server_.List("pods")) want[ObjectKey(p)] = MetaString(p, "resourceVersion");
      {
        std::lock_guard<std::mutex> l(s->mu);
        for (auto& [k, o] : s->objects) have[k] = MetaString(o, "resourceVersion");
      }
      if (want == have) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

TEST_F(ReflectorTest, SyncsFollowsAndRecoversFromClosedStreamsAndGone) {
  ASSERT_TRUE(server_.Create("pods", MakeGpuPod("ns", "pre", 1, 10)).ok());
  Seen seen;
  Reflector r(client_.get(), Resource::Pods(), {}, Handlers(&seen));
  r.set_backoff(std::chrono::milliseconds(10), std::chrono::milliseconds(50));
  r.Start();
  ASSERT_TRUE(r.WaitForSync(std::chrono::seconds(5)));
  EXPECT_TRUE(r.synced());
  ASSERT_TRUE(Converges(&seen));
  ASSERT_TRUE(server_.Create("pods", MakeGpuPod("ns", "a", 1, 10)).ok());
  ASSERT_TRUE(
      server_.MergePatch("pods", "ns", "pre", {{"metadata", {{"labels", {{"x", "y"}}}}}}).ok());
  ASSERT_TRUE(Converges(&seen));
  // Stream ends: the reflector re-watches from its last version without relisting.
  uint64_t lists = r.stats().lists;
  server_.CloseWatches();
  ASSERT_TRUE(server_.Create("pods", MakeGpuPod("ns", "b", 1, 10)).ok());
  ASSERT_TRUE(Converges(&seen));
  EXPECT_EQ(r.stats().lists, lists);
  // History lost while changes happen: 410 Gone, relist, and the deletion is still seen.
  server_.set_history_limit(0);
  server_.CloseWatches();
  ASSERT_TRUE(server_.Delete("pods", "ns", "a").ok());
  ASSERT_TRUE(server_.Create("pods", MakeGpuPod("ns", "c", 1, 10)).ok());
  ASSERT_TRUE(Converges(&seen)) << "lists " << r.stats().lists << " gone " << r.stats().gone
                                << " errors " << r.stats().errors << " watches "
                                << r.stats().watches;
  EXPECT_GE(r.stats().gone, 1u);
  EXPECT_GT(r.stats().lists, lists);
  {
    std::lock_guard<std::mutex> l(seen.mu);
    EXPECT_EQ(seen.objects.count("ns/a"), 0u);
    EXPECT_GE(seen.deletes, 1);
  }
  EXPECT_TRUE(r.GetCached("ns/c").has_value());
  EXPECT_FALSE(r.GetCached("ns/a").has_value());
  r.Stop();
}

TEST_F(ReflectorTest, RetriesWhenListFails) {
  server_.FailNext("GET", "/api/v1/nodes", 503, 2);
  ASSERT_TRUE(server_.Create("nodes", MakeNode("n1", MakeGpus("n1", 1))).ok());
  Seen seen;
  Reflector r(client_.get(), Resource::Nodes(), {}, Handlers(&seen));
  r.set_backoff(std::chrono::milliseconds(10), std::chrono::milliseconds(50));
  r.Start();
  ASSERT_TRUE(r.WaitForSync(std::chrono::seconds(5)));
  EXPECT_GE(r.stats().errors, 2u);
  EXPECT_EQ(r.ListCached().size(), 1u);
}

}  // namespace
}  // namespace hami::k8s
