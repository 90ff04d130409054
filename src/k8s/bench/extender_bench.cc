// k8s_extender_bench: hami-scheduler's HTTP extender against a simulated cluster (default
// 5,000 nodes x 8 GPUs). Each worker plays kube-scheduler for one pod at a time: POST /filter
// (nodeCacheCapable: node names), POST /prioritize with the feasible nodes, POST /bind to the
// best one; the API server is an in-memory KubeClient (or the HTTP test double with --api
// http), and a simulated device plugin reports each bound pod allocated so node turns rotate.
// Prints pods/s end to end and p50/p99 latency per call. A program, not a test.
#include <httplib.h>

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

}  // namespace
}  // namespace hami::k8s

int main(int argc, char** argv) {
  using namespace hami::k8s;
  int nodes = 5000, gpus = 8, pods = 10000, candidates = 500, workers = 2, threads = 512;
  std::string api = "mem";
  CLI::App app{"HTTP extender benchmark"};
  app.add_option("--nodes", nodes);
  app.add_option("--gpus", gpus);
  app.add_option("--pods", pods);
  app.add_option("--candidates", candidates, "node names per filter call (0: all nodes)");
  app.add_option("--workers", workers, "concurrent kube-scheduler stand-ins");
  app.add_option("--max-connections,--threads", threads, "extender HTTP connection cap");
  app.add_option("--api", api, "mem | http (the API-server test double)");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<KubeClient> client;
  MemKubeClient* mem = nullptr;
  std::unique_ptr<testing::FakeApiServer> fake;
  if (api == "http") {
    fake = std::make_unique<testing::FakeApiServer>();
    if (!fake->Start().ok()) return 1;
    ClientConfig cfg;
    cfg.server = fake->url();
    cfg.qps = 0;
    client = HttpKubeClient::Create(cfg).value();
  } else {
    auto m = std::make_unique<MemKubeClient>();
    mem = m.get();
    client = std::move(m);
  }
  ExtenderOptions opts;
  opts.record_events = false;
  Extender ext(opts, client.get());
  auto t0 = Clock::now();
  std::vector<std::string> names;
  for (int i = 0; i < nodes; ++i) {
    std::string n = "node-" + std::to_string(i);
    names.push_back(n);
    ext.UpsertNode(testing::MakeNode(n, testing::MakeGpus(n, gpus)));
  }
  std::printf("cluster: %d nodes x %d GPUs loaded in %.0f ms\n", nodes, gpus,
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  HttpServerOptions so;
  so.max_connections = threads;
  HttpServer server(so, &ext, WebhookOptions{});
  if (!server.Start().ok()) return 1;

  std::atomic<int> next{0}, bound{0}, failed{0};
  std::mutex lat_mu;
  Lat lf, lp, lb, lpod;
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w) {
    ts.emplace_back([&, w] {
      std::mt19937 rng(w);
      httplib::Client c("127.0.0.1", server.port());
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_read_timeout(60, 0);
      Lat f, p, b, whole;
      for (int i; (i = next++) < pods;) {
        std::string name = "pod-" + std::to_string(i);
        Json pod = testing::MakeGpuPod("bench", name, 1 + (i % 8 == 0), 2000 + 1000 * (i % 3),
                                       10 * (i % 4));
        pod["metadata"]["uid"] = "uid-" + std::to_string(i);
        if (mem) {
          mem->Put(pod);
        } else {
          pod = fake->Create("pods", pod).value();
        }
        std::vector<std::string> cand;
        if (candidates > 0 && candidates < nodes) {
          std::size_t off = rng() % names.size();
          for (int k = 0; k < candidates; ++k) cand.push_back(names[(off + k) % names.size()]);
        } else {
          cand = names;
        }
        // Request bodies are built outside the timed calls (kube-scheduler builds them).
        std::string fbody = Json{{"pod", pod}, {"nodenames", cand}}.dump();
        auto s0 = Clock::now();
        auto fr = c.Post("/filter", fbody, "application/json");
        auto s1 = Clock::now();
        if (!fr || fr->status != 200) {
          failed++;
          continue;
        }
        Json fj = Json::parse(fr->body);
        std::string pbody = Json{{"pod", pod}, {"nodenames", fj["nodenames"]}}.dump();
        auto s1b = Clock::now();
        auto pr = c.Post("/prioritize", pbody, "application/json");
        auto s2 = Clock::now();
        if (!pr || pr->status != 200) {
          failed++;
          continue;
        }
        Json pj = Json::parse(pr->body);
        std::string best;
        int score = -1;
        for (const auto& hp : pj) {
          if (hp["score"].get<int>() > score) {
            score = hp["score"];
            best = hp["host"];
          }
        }
        if (best.empty()) {
          if (failed++ < 3)
            std::fprintf(stderr, "nothing fits: %s\n", fr->body.substr(0, 300).c_str());
          continue;
        }
        Json args = {{"podName", name},
                     {"podNamespace", "bench"},
                     {"podUID", MetaString(pod, "uid")},
                     {"node", best}};
        std::string bbody = args.dump();
        auto s2b = Clock::now();
        auto br = c.Post("/bind", bbody, "application/json");
        auto s3 = Clock::now();
        if (!br || br->status != 200 || Json::parse(br->body)["error"] != "") {
          if (failed++ < 3) std::fprintf(stderr, "bind failed: %s\n", br ? br->body.c_str() : "?");
          continue;
        }
        f.Add(s1 - s0);
        p.Add(s2 - s1b);
        b.Add(s3 - s2b);
        whole.Add((s1 - s0) + (s2 - s1b) + (s3 - s2b));
        bound++;
        // The device plugin on `best` reports the allocation; the watch would deliver this.
        Json done = client->Get(Resource::Pods(), "bench", name).value();
        done["metadata"]["annotations"]["hami.io/bind-phase"] = "success";
        if (mem) {
          mem->Put(done);
        } else {
          (void)fake->MergePatch(
              "pods", "bench", name,
              {{"metadata", {{"annotations", {{"hami.io/bind-phase", "success"}}}}}});
        }
        ext.UpsertPod(done);
      }
      std::lock_guard<std::mutex> l(lat_mu);
      lf.us.insert(lf.us.end(), f.us.begin(), f.us.end());
      lp.us.insert(lp.us.end(), p.us.begin(), p.us.end());
      lb.us.insert(lb.us.end(), b.us.begin(), b.us.end());
      lpod.us.insert(lpod.us.end(), whole.us.begin(), whole.us.end());
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("api=%s nodes=%d gpus/node=%d candidates/filter=%d workers=%d http_threads=%d\n",
              api.c_str(), nodes, gpus, candidates > 0 ? std::min(candidates, nodes) : nodes,
              workers, threads);
  std::printf("pods bound %d, failed %d, %.2f s, %.0f pods/s end to end\n", bound.load(),
              failed.load(), secs, bound.load() / secs);
  std::printf("%-12s %10s %10s %10s\n", "call", "p50 us", "p99 us", "max us");
  for (auto [n, l] : {std::pair<const char*, Lat*>{"filter", &lf},
                      {"prioritize", &lp},
                      {"bind", &lb},
                      {"pod (3 calls)", &lpod}}) {
    std::printf("%-12s %10.0f %10.0f %10.0f\n", n, l->P(0.5), l->P(0.99), l->P(1.0));
  }
  auto m0 = Clock::now();
  std::string metrics = ext.Metrics();
  std::printf("metrics: %zu bytes in %.1f ms\n", metrics.size(),
              std::chrono::duration<double, std::milli>(Clock::now() - m0).count());
  server.Stop();
  return 0;
}
