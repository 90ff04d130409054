// k8s_extender_bench: hami-scheduler's HTTP extender against a simulated cluster (default
// 5,000 nodes x 8 GPUs). Each worker plays kube-scheduler for one pod at a time: POST /filter
// (nodeCacheCapable: node names), POST /prioritize with the feasible nodes, POST /bind to the
// best one; the API server is an in-memory KubeClient (or the HTTP test double with --api
// http), and a simulated device plugin reports each bound pod allocated so node turns rotate.
// Prints pods/s end to end and p50/p99 latency per call. A program, not a test.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/http_server.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

using Clock = std::chrono::steady_clock;

// Just enough of the API for bind: get, merge patch, binding.
class MemKubeClient : public KubeClient {
 public:
  void Put(const Json& pod) {
    std::lock_guard<std::mutex> l(mu_);
    pods_[ObjectKey(pod)] = pod;
  }
  StatusOr<Json> Get(const Resource&, const std::string& ns, const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(ns + "/" + name);
    if (it == pods_.end()) return NotFound(name);
    return it->second;
  }
  StatusOr<ObjectList> List(const Resource&, const ListOptions&) override {
    return Unavailable("not simulated");
  }
  Status Watch(const Resource&, const ListOptions&, const std::function<bool(const WatchEvent&)>&,
               CancelToken*) override {
    return Unavailable("not simulated");
  }
  StatusOr<Json> Create(const Resource&, const std::string&, const Json& obj) override {
    return obj;
  }
  StatusOr<Json> Update(const Resource&, const std::string&, const Json&) override {
    return Unavailable("not simulated");
  }
  StatusOr<Json> Patch(const Resource&, const std::string& ns, const std::string& name, PatchType,
                       const Json& patch) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(ns + "/" + name);
    if (it == pods_.end()) return NotFound(name);
    Json p = patch;
    p["metadata"].erase("resourceVersion");
    p["metadata"].erase("uid");
    it->second.merge_patch(p);
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return it->second;
  }
  Status Delete(const Resource&, const std::string&, const std::string&) override {
    return Status::Ok();
  }
  Status Bind(const std::string& ns, const std::string& name, const std::string&,
              const std::string& node) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(ns + "/" + name);
    if (it == pods_.end()) return NotFound(name);
    it->second["spec"]["nodeName"] = node;
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Json> pods_;
  uint64_t rv_ = 0;
};

struct Lat {
  std::vector<double> us;
  void Add(Clock::duration d) {
    us.push_back(std::chrono::duration<double, std::micro>(d).count());
  }
  double P(double q) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))];
  }
};

// Clients that trickle a request head one byte at a time and reconnect whenever the server drops
// them (slowloris): issue 12's "64 slow clients attached".
class SlowClients {
 public:
  SlowClients(int port, int n) : port_(port) {
    for (int i = 0; i < n; ++i) fds_.push_back(Connect());
    if (n > 0) thread_ = std::thread([this] { Loop(); });
  }
  ~SlowClients() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  int reconnects() const { return reconnects_; }

 private:
  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    const char kStart[] = "POST /filter HTTP/1.1\r\nHost: x\r\n";
    (void)!send(fd, kStart, sizeof kStart - 1, MSG_NOSIGNAL);
    return fd;
  }
  void Loop() {
    while (!stop_) {
      for (int& fd : fds_) {
        char c;
        if (fd >= 0 && send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 &&
            recv(fd, &c, 1, MSG_DONTWAIT) < 0) {
          continue;  // still attached
        }
        if (fd >= 0) close(fd);
        fd = Connect();
        ++reconnects_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  int port_;
  std::vector<int> fds_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reconnects_{0};
};

struct Bench {
  int nodes = 5000, gpus = 8, pods = 10000, candidates = 500, workers = 2, threads = 512;
  int slow_clients = 0;
  std::string api = "mem";
  std::unique_ptr<KubeClient> client;
  MemKubeClient* mem = nullptr;
  std::unique_ptr<testing::FakeApiServer> fake;
  std::vector<std::string> names;
  std::atomic<int> next{0}, bound{0}, failed{0};
  std::mutex lat_mu;
  Lat lf, lp, lb, lpod;
};

// Per worker: the latencies of its pods.
struct WorkerLat {
  Lat f, p, b, whole;
};

Json MakeBenchPod(Bench& B, int i) {
  Json pod = testing::MakeGpuPod("bench", "pod-" + std::to_string(i), 1 + (i % 8 == 0),
                                 2000 + 1000 * (i % 3), 10 * (i % 4));
  pod["metadata"]["uid"] = "uid-" + std::to_string(i);
  if (B.mem) {
    B.mem->Put(pod);
  } else {
    pod = B.fake->Create("pods", pod).value();
  }
  return pod;
}

// The best host of a prioritize answer, "" when none.
std::string BestHost(const Json& pj) {
  std::string best;
  int score = -1;
  for (const auto& hp : pj) {
    if (hp["score"].get<int>() > score) {
      score = hp["score"];
      best = hp["host"];
    }
  }
  return best;
}

// kube-scheduler's three calls for pod `i`; false when it could not be bound.
bool OnePod(Bench& B, Extender& ext, httplib::Client& c, std::mt19937& rng, int i, WorkerLat& lat) {
  std::string name = "pod-" + std::to_string(i);
  Json pod = MakeBenchPod(B, i);
  std::vector<std::string> cand;
  if (B.candidates > 0 && B.candidates < B.nodes) {
    std::size_t off = rng() % B.names.size();
    for (int k = 0; k < B.candidates; ++k) cand.push_back(B.names[(off + k) % B.names.size()]);
  } else {
    cand = B.names;
  }
  // Request bodies are built outside the timed calls (kube-scheduler builds them).
  std::string fbody = Json{{"pod", pod}, {"nodenames", cand}}.dump();
  auto s0 = Clock::now();
  auto fr = c.Post("/filter", fbody, "application/json");
  auto s1 = Clock::now();
  if (!fr || fr->status != 200) return false;
  std::string pbody = Json{{"pod", pod}, {"nodenames", Json::parse(fr->body)["nodenames"]}}.dump();
  auto s1b = Clock::now();
  auto pr = c.Post("/prioritize", pbody, "application/json");
  auto s2 = Clock::now();
  if (!pr || pr->status != 200) return false;
  std::string best = BestHost(Json::parse(pr->body));
  if (best.empty()) {
    if (B.failed < 3) std::fprintf(stderr, "nothing fits: %s\n", fr->body.substr(0, 300).c_str());
    return false;
  }
  std::string bbody = Json{
      {"podName", name},
      {"podNamespace", "bench"},
      {"podUID", MetaString(pod, "uid")},
      {"node", best}}.dump();
  auto s2b = Clock::now();
  auto br = c.Post("/bind", bbody, "application/json");
  auto s3 = Clock::now();
  if (!br || br->status != 200 || Json::parse(br->body)["error"] != "") {
    if (B.failed < 3) std::fprintf(stderr, "bind failed: %s\n", br ? br->body.c_str() : "?");
    return false;
  }
  lat.f.Add(s1 - s0);
  lat.p.Add(s2 - s1b);
  lat.b.Add(s3 - s2b);
  lat.whole.Add((s1 - s0) + (s2 - s1b) + (s3 - s2b));
  // The device plugin on `best` reports the allocation; the watch would deliver this.
  Json done = B.client->Get(Resource::Pods(), "bench", name).value();
  done["metadata"]["annotations"]["hami.io/bind-phase"] = "success";
  if (B.mem) {
    B.mem->Put(done);
  } else {
    (void)B.fake->MergePatch(
        "pods", "bench", name,
        {{"metadata", {{"annotations", {{"hami.io/bind-phase", "success"}}}}}});
  }
  ext.UpsertPod(done);
  return true;
}

void Worker(Bench& B, Extender& ext, int port, int w) {
  std::mt19937 rng(w);
  httplib::Client c("127.0.0.1", port);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);
  c.set_read_timeout(60, 0);
  WorkerLat lat;
  for (int i; (i = B.next++) < B.pods;) {
    if (OnePod(B, ext, c, rng, i, lat)) {
      B.bound++;
    } else {
      B.failed++;
    }
  }
  std::lock_guard<std::mutex> l(B.lat_mu);
  for (auto [from, to] :
       {std::pair{&lat.f, &B.lf}, {&lat.p, &B.lp}, {&lat.b, &B.lb}, {&lat.whole, &B.lpod}}) {
    to->us.insert(to->us.end(), from->us.begin(), from->us.end());
  }
}

// The sizes of the largest real filter requests for this cluster (issue 12: body limits).
void PrintFilterSizes(const Bench& B) {
  Json pod = testing::MakeGpuPod("bench", "pod-x", 1, 2000, 10);
  std::size_t by_name = Json{{"pod", pod}, {"nodenames", B.names}}.dump().size();
  Json items = Json::array();
  for (const auto& n : B.names) items.push_back(testing::MakeNode(n, testing::MakeGpus(n, B.gpus)));
  std::size_t by_object =
      Json{{"pod", pod}, {"nodes", {{"kind", "NodeList"}, {"items", std::move(items)}}}}
          .dump()
          .size();
  std::printf("filter body for all %d nodes: %zu bytes by name, %zu bytes as a NodeList\n", B.nodes,
              by_name, by_object);
}

int Run(Bench& B) {
  if (B.api == "http") {
    B.fake = std::make_unique<testing::FakeApiServer>();
    if (!B.fake->Start().ok()) return 1;
    ClientConfig cfg = B.fake->client_config();
    B.client = HttpKubeClient::Create(cfg).value();
  } else {
    auto m = std::make_unique<MemKubeClient>();
    B.mem = m.get();
    B.client = std::move(m);
  }
  ExtenderOptions opts;
  opts.record_events = false;
  Extender ext(opts, B.client.get());
  auto t0 = Clock::now();
  for (int i = 0; i < B.nodes; ++i) {
    std::string n = "node-" + std::to_string(i);
    B.names.push_back(n);
    ext.UpsertNode(testing::MakeNode(n, testing::MakeGpus(n, B.gpus)));
  }
  std::printf("cluster: %d nodes x %d GPUs loaded in %.0f ms\n", B.nodes, B.gpus,
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  PrintFilterSizes(B);
  HttpServerOptions so;
  so.max_connections = B.threads;
  HttpServer server(so, &ext, WebhookOptions{});
  if (!server.Start().ok()) return 1;
  SlowClients slow(server.port(), B.slow_clients);
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int w = 0; w < B.workers; ++w) ts.emplace_back([&, w] { Worker(B, ext, server.port(), w); });
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "api=%s nodes=%d gpus/node=%d candidates/filter=%d workers=%d max_connections=%d "
      "slow_clients=%d (reconnected %d times)\n",
      B.api.c_str(), B.nodes, B.gpus, B.candidates > 0 ? std::min(B.candidates, B.nodes) : B.nodes,
      B.workers, B.threads, B.slow_clients, slow.reconnects());
  std::printf("pods bound %d, failed %d, %.2f s, %.0f pods/s end to end\n", B.bound.load(),
              B.failed.load(), secs, B.bound.load() / secs);
  std::printf("%-12s %10s %10s %10s\n", "call", "p50 us", "p99 us", "max us");
  for (auto [n, l] : {std::pair<const char*, Lat*>{"filter", &B.lf},
                      {"prioritize", &B.lp},
                      {"bind", &B.lb},
                      {"pod (3 calls)", &B.lpod}}) {
    std::printf("%-12s %10.0f %10.0f %10.0f\n", n, l->P(0.5), l->P(0.99), l->P(1.0));
  }
  auto m0 = Clock::now();
  std::string metrics = ext.Metrics();
  std::printf("metrics: %zu bytes in %.1f ms\n", metrics.size(),
              std::chrono::duration<double, std::milli>(Clock::now() - m0).count());
  server.Stop();
  return 0;
}

}  // namespace
}  // namespace hami::k8s

int main(int argc, char** argv) {
  hami::k8s::Bench B;
  CLI::App app{"HTTP extender benchmark"};
  app.add_option("--nodes", B.nodes)->check(CLI::Range(1, 1000000));
  app.add_option("--gpus", B.gpus)->check(CLI::Range(1, 64));
  app.add_option("--pods", B.pods)->check(CLI::Range(1, 10000000));
  app.add_option("--candidates", B.candidates, "node names per filter call (0: all nodes)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--workers", B.workers, "concurrent kube-scheduler stand-ins")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-connections,--threads", B.threads, "extender HTTP connection cap")
      ->check(CLI::Range(1, 65536));
  app.add_option("--slow-clients", B.slow_clients,
                 "slowloris clients attached during the run (issue 12)")
      ->check(CLI::Range(0, 10000));
  app.add_option("--api", B.api, "mem | http (the API-server test double)")
      ->check(CLI::IsMember({"mem", "http"}));
  CLI11_PARSE(app, argc, argv);
  return hami::k8s::Run(B);
}
