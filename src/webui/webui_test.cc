// Unit tests of the web UI backend: derived numbers, filters and paging, history rings, the
// monitor-metrics parser, and the routes over real HTTP.
#include <httplib.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "webui/api.h"
#include "webui/assets.h"
#include "webui/history.h"
#include "webui/prom_scrape.h"
#include "webui/server.h"

namespace hami::webui {
namespace {

using nlohmann::json;

GpuRow Gpu(std::string node, std::string uuid, int idx, std::string type, int64_t mem) {
  GpuRow g;
  g.node = std::move(node);
  g.uuid = std::move(uuid);
  g.index = idx;
  g.type = std::move(type);
  g.memory_mib = mem;
  g.split_count = 10;
  return g;
}

WorkloadRow Job(std::string id, std::string ns, std::string node, std::string uuid, int64_t limit,
                int cores, int64_t used, double util) {
  WorkloadRow w;
  w.id = id;
  w.kind = "pod";
  w.ns = std::move(ns);
  w.name = "pod-" + id;
  w.node = node;
  w.state = "running";
  w.created_unix = 1000;
  SliceRow s;
  s.uuid = std::move(uuid);
  s.node = std::move(node);
  s.limit_mib = limit;
  s.cores = cores;
  s.used_mib = used;
  s.util = util;
  w.slices.push_back(s);
  return w;
}

// Two nodes, three cards; w1 (team-a) at its 30 % limit on n1's first card, w2 (team-b) on the
// second, the H100 of n2 idle.
Snapshot Sample() {
  Snapshot s;
  s.mode = "cluster";
  s.taken_unix_ms = 2000 * 1000;
  s.gpus = {Gpu("n1", "GPU-a", 0, "NVIDIA-A100", 40960),
            Gpu("n1", "GPU-b", 1, "NVIDIA-A100", 40960),
            Gpu("n2", "GPU-c", 0, "NVIDIA-H100", 81920)};
  s.gpus[0].allocated_mib = 4096;
  s.gpus[0].allocated_cores = 30;
  s.gpus[0].slices = 1;
  s.gpus[1].allocated_mib = 8192;
  s.gpus[1].allocated_cores = 50;
  s.gpus[1].slices = 1;
  s.workloads = {Job("w1", "team-a", "n1", "GPU-a", 4096, 30, 1000, 0.29),
                 Job("w2", "team-b", "n1", "GPU-b", 8192, 50, 2000, 0.10)};
  PendingRow p;
  p.id = "p1";
  p.ns = "team-a";
  p.name = "big";
  p.reason = "0/2 nodes fit: 2 insufficient GPU memory";
  s.pending.push_back(p);
  Finish(s, nullptr);
  return s;
}

TEST(WebUiModel, FinishDerivesNodesUsageAndThrottling) {
  Snapshot s = Sample();
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].name, "n1");
  EXPECT_EQ(s.nodes[0].gpus, 2);
  EXPECT_EQ(s.nodes[0].allocated_mib, 12288);
  EXPECT_EQ(s.nodes[0].used_mib, 3000);  // summed from the slices
  EXPECT_EQ(s.nodes[1].idle_gpus, 1);
  EXPECT_EQ(s.gpus[0].used_mib, 1000);
  EXPECT_EQ(s.gpus[2].used_mib, -1);       // nothing known about the idle card
  EXPECT_TRUE(s.workloads[0].throttled);   // 29 % of a 30 % limit
  EXPECT_FALSE(s.workloads[1].throttled);  // 10 % of 50 %
  EXPECT_EQ(s.types, (std::vector<std::string>{"NVIDIA-A100", "NVIDIA-H100"}));
  EXPECT_EQ(s.namespaces, (std::vector<std::string>{"team-a", "team-b"}));
}

TEST(WebUiModel, UtilFromBusyTimeBetweenSnapshots) {
  Snapshot a = Sample();
  a.workloads[0].slices[0].util = -1;
  a.workloads[0].slices[0].busy_ns = 1'000'000'000;
  Finish(a, nullptr);
  Snapshot b = a;
  b.taken_unix_ms = a.taken_unix_ms + 2000;
  b.workloads[0].slices[0].busy_ns = 1'500'000'000;  // 0.5 s of GPU time in 2 s
  Finish(b, &a);
  EXPECT_NEAR(b.workloads[0].slices[0].util, 0.25, 1e-9);
}

TEST(WebUiApi, ParseQueryNamesBadParameters) {
  EXPECT_TRUE(ParseQuery({{"node", "n1"}, {"page", "2"}}).ok());
  auto unknown = ParseQuery({{"nod", "n1"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("\"nod\""), std::string::npos);
  EXPECT_FALSE(ParseQuery({{"page", "0"}}).ok());
  EXPECT_FALSE(ParseQuery({{"page", "-1"}}).ok());
  EXPECT_FALSE(ParseQuery({{"page_size", "1e3"}}).ok());
  EXPECT_FALSE(ParseQuery({{"state", "sleepy"}}).ok());
  EXPECT_FALSE(ParseQuery({{"q", std::string(300, 'x')}}).ok());
  auto big = ParseQuery({{"page_size", "100000"}});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->page_size, kMaxPageSize);
}

TEST(WebUiApi, OverviewCountsPromisedAndConsumed) {
  Snapshot s = Sample();
  json o = OverviewJson(s, {});
  EXPECT_EQ(o["cards"]["total"], 3);
  EXPECT_EQ(o["cards"]["allocated"], 2);
  EXPECT_EQ(o["cards"]["used"], 2);
  EXPECT_EQ(o["cards"]["idle"], 1);
  EXPECT_EQ(o["memory"]["total_mib"], 40960 * 2 + 81920);
  EXPECT_EQ(o["memory"]["allocated_mib"], 12288);
  EXPECT_EQ(o["memory"]["used_mib"], 3000);
  EXPECT_EQ(o["compute"]["allocated"], 80);
  EXPECT_EQ(o["workloads"]["throttled"], 1);
  EXPECT_EQ(o["pending"]["total"], 1);
  EXPECT_EQ(o["pending"]["items"][0]["reason"], "0/2 nodes fit: 2 insufficient GPU memory");
  EXPECT_EQ(o["idle_cards"]["items"][0]["uuid"], "GPU-c");
  Query q;
  q.ns = "team-b";
  json b = OverviewJson(s, q);
  EXPECT_EQ(b["cards"]["total"], 1);  // only the card team-b holds a slice of
  EXPECT_EQ(b["workloads"]["total"], 1);
  EXPECT_EQ(b["pending"]["total"], 0);
}

TEST(WebUiApi, GpusFilterAndPage) {
  Snapshot s = Sample();
  Query q;
  q.type = "a100";
  json j = GpusJson(s, q);
  EXPECT_EQ(j["total"], 2);
  EXPECT_EQ(j["items"][0]["holders"][0]["id"], "w1");
  q = {};
  q.state = "idle";
  EXPECT_EQ(GpusJson(s, q)["items"][0]["uuid"], "GPU-c");
  q = {};
  q.page_size = 2;
  q.page = 2;
  j = GpusJson(s, q);
  EXPECT_EQ(j["total"], 3);
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["uuid"], "GPU-c");
  q.page = 9;
  EXPECT_TRUE(GpusJson(s, q)["items"].empty());
  q = {};
  q.node = "n2";
  EXPECT_EQ(NodesJson(s, q)["total"], 1);
}

TEST(WebUiApi, WorkloadsFilterSortAndDetail) {
  Snapshot s = Sample();
  Query q;
  q.state = "throttled";
  json j = WorkloadsJson(s, q);
  ASSERT_EQ(j["total"], 1);
  EXPECT_EQ(j["items"][0]["id"], "w1");
  EXPECT_EQ(j["items"][0]["slices"][0]["type"], "NVIDIA-A100");
  q = {};
  q.sort = "memory";
  EXPECT_EQ(WorkloadsJson(s, q)["items"][0]["id"], "w2");
  q = {};
  q.q = "POD-W2";
  EXPECT_EQ(WorkloadsJson(s, q)["total"], 1);
  EXPECT_TRUE(WorkloadDetailJson(s, "w1").ok());
  EXPECT_EQ(WorkloadDetailJson(s, "nope").status().code(), StatusCode::kNotFound);
  auto g = GpuDetailJson(s, "GPU-b");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)["workloads"][0]["id"], "w2");
}

// Sample() plus quotas: team-a at 95 % of its memory ceiling (near), team-b with a card
// ceiling only, team-c (no pods) with a ceiling of 0; one pending pod held by team-a's quota.
Snapshot WithQuotas() {
  Snapshot s = Sample();
  QuotaRow a{"namespace", "team-a", "team-a", {38912, 40960}, {130, 300}, {}};
  QuotaRow b{"namespace", "team-b", "team-b", {}, {}, {1, 4}};
  QuotaRow c{"namespace", "team-c", "team-c", {}, {}, {0, 0}};
  s.quotas = {a, b, c};
  s.quota_names = {"limits.nvidia.com/gpumem", "limits.nvidia.com/gpucores",
                   "limits.nvidia.com/gpu"};
  PendingRow held;
  held.id = "p2";
  held.ns = "team-a";
  held.name = "held";
  held.memory_mib = 4096;
  held.reason = "namespace team-a would exceed its gpumem quota: 38/40 GiB used, 4 GiB asked";
  held.quota = true;
  s.pending.push_back(held);
  Finish(s, nullptr);
  return s;
}

TEST(WebUiQuotas, NoQuotasConfiguredIsAnEmptyAnswerNotAnError) {
  Snapshot s = Sample();
  json j = QuotasJson(s, *ParseQuery({}, "quotas"));
  EXPECT_EQ(j["mode"], "cluster");
  EXPECT_EQ(j["enforced"], true);
  EXPECT_EQ(j["configured"], 0);
  EXPECT_EQ(j["near"], 0);
  EXPECT_EQ(j["total"], 0);
  EXPECT_EQ(j["items"], json::array());
  // The pod waiting for GPU memory is not waiting for a quota.
  EXPECT_EQ(j["waiting"]["total"], 0);
  EXPECT_EQ(j["resources"]["memory"], "gpumem");  // a host's words unless the source says
  json o = OverviewJson(s, Query{});
  EXPECT_EQ(o["quotas"], json({{"total", 0}, {"near", 0}, {"waiting", 0}}));
  s.quotas_enforced = false;
  EXPECT_EQ(QuotasJson(s, Query{})["enforced"], false);
}

TEST(WebUiQuotas, RowsCarryUsedLimitAndNearAndTheHeldRequests) {
  Snapshot s = WithQuotas();
  json j = QuotasJson(s, *ParseQuery({}, "quotas"));
  EXPECT_EQ(j["configured"], 3);
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["near"], 1);  // team-a's memory at 95 %; team-c's ceiling of 0 with 0 used is not
  EXPECT_EQ(j["resources"]["gpus"], "limits.nvidia.com/gpu");
  const json& a = j["items"][0];
  EXPECT_EQ(a["kind"], "namespace");
  EXPECT_EQ(a["owner"], "team-a");
  EXPECT_EQ(a["memory"],
            json({{"used", 38912}, {"limit", 40960}, {"fraction", 0.95}, {"near", true}}));
  EXPECT_EQ(a["cores"],
            json({{"used", 130}, {"limit", 300}, {"fraction", 0.433}, {"near", false}}));
  EXPECT_TRUE(a["gpus"].is_null());  // no ceiling is not a ceiling of 0
  EXPECT_EQ(a["fraction"], 0.95);
  EXPECT_EQ(a["near"], true);
  EXPECT_EQ(j["items"][1]["gpus"]["used"], 1);
  EXPECT_EQ(j["items"][1]["near"], false);
  EXPECT_EQ(j["items"][2]["gpus"]["limit"], 0);
  ASSERT_EQ(j["waiting"]["total"], 1);
  EXPECT_EQ(j["waiting"]["items"][0]["name"], "held");
  EXPECT_EQ(j["waiting"]["items"][0]["quota"], true);
  EXPECT_NE(j["waiting"]["items"][0]["reason"].get<std::string>().find("gpumem quota"),
            std::string::npos);
  // A namespace with a quota but no pod is still a filter choice.
  EXPECT_NE(std::find(s.namespaces.begin(), s.namespaces.end(), "team-c"), s.namespaces.end());
  // The overview's summary is the endpoint's.
  EXPECT_EQ(OverviewJson(s, Query{})["quotas"], json({{"total", 3}, {"near", 1}, {"waiting", 1}}));
}

TEST(WebUiQuotas, FiltersSortAndPages) {
  Snapshot s = WithQuotas();
  s.quotas[2].gpus = {1, 0};  // something held under a ceiling of 0: full
  auto ask = [&](std::multimap<std::string, std::string> params) {
    auto q = ParseQuery(params, "quotas");
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return QuotasJson(s, *q);
  };
  json near = ask({{"state", "near"}});
  ASSERT_EQ(near["total"], 2);
  EXPECT_EQ(near["items"][0]["owner"], "team-a");
  EXPECT_EQ(near["items"][1]["owner"], "team-c");
  EXPECT_EQ(near["items"][1]["gpus"]["fraction"], 1);
  json used = ask({{"sort", "used"}});
  EXPECT_EQ(used["items"][0]["owner"], "team-c");  // 100 % before 95 % before 25 %
  EXPECT_EQ(used["items"][1]["owner"], "team-a");
  EXPECT_EQ(used["items"][2]["owner"], "team-b");
  json ns = ask({{"namespace", "team-b"}});
  ASSERT_EQ(ns["total"], 1);
  EXPECT_EQ(ns["items"][0]["owner"], "team-b");
  EXPECT_EQ(ns["waiting"]["total"], 0);  // team-a's held pod is not team-b's
  EXPECT_EQ(ask({{"q", "TEAM-C"}})["total"], 1);
  json page2 = ask({{"page", "2"}, {"page_size", "2"}});
  EXPECT_EQ(page2["total"], 3);
  ASSERT_EQ(page2["items"].size(), 1u);
  EXPECT_EQ(page2["items"][0]["owner"], "team-c");
  EXPECT_EQ(ask({{"page", "9"}})["items"], json::array());
}

TEST(WebUiHistory, FineTierKeepsRecentSamplesAndMarksGaps) {
  History h({5, 100});
  Snapshot s = Sample();
  for (int64_t t = 100; t < 110; ++t) h.Record(s, t);
  h.Record(s, 109);  // same tick again: ignored
  s.workloads.pop_back();
  Finish(s, nullptr);
  h.Record(s, 115);
  HistorySeries g = h.Get("gpu:GPU-a", 900);
  EXPECT_EQ(g.step_s, 5);
  ASSERT_EQ(g.points.size(), 16u);  // 100..109, 5 missing, 115
  EXPECT_EQ(g.points.back().t_unix, 115 * 5);
  EXPECT_NEAR(g.points.back().mem_used_mib, 1000, 1);
  EXPECT_NEAR(g.points.back().mem_limit_mib, 4096, 1);
  EXPECT_NEAR(g.points.back().util, 0.29, 0.001);
  HistorySeries w2 = h.Get("workload:w2", 900);
  ASSERT_EQ(w2.points.size(), 10u);  // ended at tick 109
  EXPECT_TRUE(g.points[9].valid);
  EXPECT_FALSE(g.points[10].valid);
  EXPECT_FALSE(g.points[14].valid);
  EXPECT_TRUE(g.points[15].valid);
  EXPECT_TRUE(h.Get("gpu:unknown", 900).points.empty());
}

TEST(WebUiHistory, CoarseTiersAverageAndRingsStayBounded) {
  History h({5, 100});
  Snapshot s = Sample();
  for (int64_t t = 0; t < 2000; ++t) {
    s.workloads[0].slices[0].used_mib = (t % 2) ? 2000 : 0;  // averages to 1000 per bucket
    s.gpus[0].used_mib = -1;
    Finish(s, nullptr);
    h.Record(s, t);
  }
  HistorySeries hour = h.Get("gpu:GPU-a", 3600);
  EXPECT_EQ(hour.step_s, 30);
  ASSERT_EQ(hour.points.size(), 120u);
  EXPECT_NEAR(hour.points[50].mem_used_mib, 1000, 2);
  HistorySeries six = h.Get("gpu:GPU-a", 6 * 3600);
  EXPECT_EQ(six.step_s, 180);
  EXPECT_LE(six.points.size(), 120u);
  EXPECT_EQ(h.Get("gpu:GPU-a", 900).points.size(), 180u);
  const size_t per_series = h.bytes() / h.series_count();
  EXPECT_LT(per_series, 4096u);
}

TEST(WebUiHistory, OldestSeriesDroppedAtTheCap) {
  History h({5, 3});
  Snapshot s = Sample();  // 3 cards + 2 workloads = 5 series per record
  h.Record(s, 1);
  EXPECT_EQ(h.series_count(), 3u);
  EXPECT_TRUE(h.Get("gpu:GPU-a", 900).points.empty());  // evicted by the workloads
  EXPECT_FALSE(h.Get("workload:w2", 900).points.empty());
}

TEST(WebUiMonitor, ParsesNeededSeriesAndRejectsBrokenLines) {
  MonitorUsage u;
  const char* text =
      "# HELP x\n"
      "hami_host_gpu_memory_used_bytes{node=\"n1\",device_uuid=\"GPU-a\",device_index=\"0\"} "
      "1048576\n"
      "hami_host_gpu_utilization_ratio{node=\"n1\",device_uuid=\"GPU-a\"} 0.5\n"
      "hami_vgpu_memory_used_bytes{namespace=\"ns\",pod=\"p\",container=\"c1\",device_uuid="
      "\"GPU-a\"} 2097152\n"
      "hami_vgpu_memory_used_bytes{namespace=\"ns\",pod=\"p\",container=\"c2\",device_uuid="
      "\"GPU-a\"} 1048576\n"
      "hami_container_device_utilization_ratio{namespace=\"ns\",pod=\"p\",container=\"c1\","
      "device_uuid=\"GPU-a\"} 0.25\n"
      "other_metric{a=\"b\"} 1\n";
  ASSERT_TRUE(ParseMonitorMetrics(text, u).ok());
  EXPECT_EQ(u.gpus["GPU-a"].used_bytes, 1048576);
  EXPECT_DOUBLE_EQ(u.gpus["GPU-a"].util, 0.5);
  auto pod = u.pods[{"ns/p", "GPU-a"}];
  EXPECT_EQ(pod.used_bytes, 3145728);  // containers summed
  EXPECT_DOUBLE_EQ(pod.util, 0.25);
  MonitorUsage bad;
  Status st = ParseMonitorMetrics("hami_host_gpu_utilization_ratio{device_uuid=\"x} 1\n", bad);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("line 1"), std::string::npos);
  EXPECT_TRUE(bad.gpus.empty());
}

class FixedProvider : public DataProvider {
 public:
  explicit FixedProvider(Snapshot s) : s_(std::move(s)) {}
  Snapshot Collect() override {
    ++calls;
    return s_;
  }
  int calls = 0;

 private:
  Snapshot s_;
};

TEST(WebUiServer, HandleRoutesAndErrors) {
  auto p = std::make_unique<FixedProvider>(Sample());
  FixedProvider* raw = p.get();
  WebUi ui(std::move(p));
  Reply page = ui.Handle("/ui/", {});
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("app.js"), std::string::npos);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  ASSERT_NE(FindAsset("app.js"), nullptr);
  EXPECT_GT(FindAsset("app.js")->size, 1000u);
  EXPECT_EQ(ui.Handle("/ui/api/overview", {}).status, 200);
  EXPECT_EQ(ui.Handle("/ui/api/gpus", {}).status, 200);
  EXPECT_EQ(raw->calls, 1);  // the cached snapshot served both
  EXPECT_EQ(ui.Handle("/ui/api/gpus", {{"bogus", "1"}}).status, 400);
  EXPECT_EQ(ui.Handle("/ui/api/gpus/GPU-x", {}).status, 404);
  EXPECT_EQ(ui.Handle("/ui/api/nothing", {}).status, 404);
  EXPECT_EQ(ui.Handle("/ui/missing.js", {}).status, 404);
  EXPECT_EQ(ui.Handle("/ui/api/history/gpu/GPU-a", {{"range", "2d"}}).status, 400);
  ui.SampleAt(10);
  json hist = json::parse(ui.Handle("/ui/api/history/gpu/GPU-a", {{"range", "1h"}}).body);
  EXPECT_EQ(hist["step_s"], 30);
  EXPECT_EQ(hist["t"].size(), 1u);
}

TEST(WebUiServer, ServesOverHttpWithSecurityHeadersAndInvalidUtf8) {
  Snapshot s = Sample();
  s.workloads[0].command = "python \xff\xfe.py";  // not UTF-8: must not break the JSON
  auto p = std::make_unique<FixedProvider>(s);
  WebUi ui(std::move(p));
  httplib::Server srv;
  ui.Register(srv);
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread th([&] { srv.listen_after_bind(); });
  httplib::Client cli("127.0.0.1", port);
  auto root = cli.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(root->get_header_value("Location"), "/ui/");
  auto page = cli.Get("/ui/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  const std::string etag = page->get_header_value("ETag");
  auto again = cli.Get("/ui/", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  auto w = cli.Get("/ui/api/workloads");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200);
  json j = json::parse(w->body);
  EXPECT_EQ(j["total"], 2);
  srv.stop();
  th.join();
}

TEST(WebUiServer, GateRefusesOrRedactsApiButNotThePage) {
  Snapshot s = Sample();
  s.workloads[0].user = "bob";
  s.workloads[0].command = "python train.py";
  s.workloads[1].user = "alice";
  s.workloads[1].command = "python secret.py --key=abc";
  WebUi ui(std::make_unique<FixedProvider>(s));
  httplib::Server srv;
  ui.Register(srv, true, [](const httplib::Request& req) -> StatusOr<Viewer> {
    if (!req.has_header("X-User")) return Status(StatusCode::kPermissionDenied, "who are you");
    return Viewer{false, req.get_header_value("X-User")};
  });
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread th([&] { srv.listen_after_bind(); });
  httplib::Client cli("127.0.0.1", port);
  EXPECT_EQ(cli.Get("/ui/")->status, 200);
  EXPECT_EQ(cli.Get("/ui/app.js")->status, 200);
  auto refused = cli.Get("/ui/api/overview");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_NE(refused->body.find("who are you"), std::string::npos);
  auto bob = cli.Get("/ui/api/workloads?sort=name", {{"X-User", "bob"}});
  ASSERT_TRUE(bob);
  ASSERT_EQ(bob->status, 200);
  json j = json::parse(bob->body);
  std::map<std::string, std::string> cmd;
  for (const auto& w : j["items"]) cmd[w["user"]] = w["command"];
  EXPECT_EQ(cmd["bob"], "python train.py");
  EXPECT_EQ(cmd["alice"], "");  // another user's command line stays hidden
  auto detail = cli.Get("/ui/api/gpus/GPU-b", {{"X-User", "bob"}});
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->body.find("secret.py"), std::string::npos);
  auto alice = cli.Get("/ui/api/workloads?sort=name", {{"X-User", "alice"}});
  EXPECT_NE(alice->body.find("secret.py"), std::string::npos);  // not served from bob's cache
  srv.stop();
  th.join();
}

TEST(WebUiQuotas, BadParametersAreNamed400s) {
  WebUi ui(std::make_unique<FixedProvider>(WithQuotas()));
  struct Case {
    std::multimap<std::string, std::string> params;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"node", "n1"}}, "parameter \"node\" does not apply to quotas"},
      {{{"type", "A100"}}, "parameter \"type\" does not apply to quotas"},
      {{{"state", "idle"}}, "unknown state \"idle\" for quotas (near)"},
      {{{"sort", "age"}}, "unknown sort \"age\" for quotas (name, used)"},
      {{{"page", "0"}}, "parameter \"page\" must be a positive number, got \"0\""},
      {{{"limit", "5"}}, "unknown parameter \"limit\""},
      {{{"q", std::string(300, 'x')}}, "parameter \"q\" is longer than 253 characters"},
  };
  for (const auto& c : cases) {
    Reply r = ui.Handle("/ui/api/quotas", c.params);
    EXPECT_EQ(r.status, 400) << c.message;
    json e = json::parse(r.body);
    EXPECT_EQ(e["error"]["code"], "INVALID_ARGUMENT");
    EXPECT_EQ(e["error"]["message"], c.message);
  }
  // "near" is the quotas' own state: the other lists still refuse it.
  EXPECT_EQ(ui.Handle("/ui/api/gpus", {{"state", "near"}}).status, 400);
  EXPECT_EQ(ui.Handle("/ui/api/quotas/team-a", {}).status, 404);
  Reply ok = ui.Handle("/ui/api/quotas", {{"state", "near"}, {"sort", "used"}});
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body)["total"], 1);
}

}  // namespace
}  // namespace hami::webui
