// HAMi's published Grafana dashboards must return data against this project: every metric their
// queries name (testdata/hami_dashboard_queries.txt, copied from HAMi's repository) is exported,
// with every label the queries filter, group or join on, by the node monitor (run on the fake
// GPU driver through NVML, with HAMi's --legacy-metrics) or by the scheduler extender.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/hook_layout.h"
#include "common/pod_meta.h"
#include "common/testing/accounting_files.h"
#include "gpu/nvml.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/testing/fake_apiserver.h"
#include "k8s/testing/fixtures.h"
#include "monitor/collector.h"

namespace hami {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- The queries: which metrics they read and which labels they need on them. ----

struct Query {
  std::string dashboard, text;
  std::map<std::string, std::set<std::string>> metrics;  // metric -> labels it must carry
  std::set<std::string> join_labels;                     // `on (...)`: shared values needed
};

bool IdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

// A small PromQL reader, enough for dashboard queries: selectors with matchers, aggregations
// with by/on lists, functions, binary operators, numbers, label_values(selector, label).
class QueryReader {
 public:
  explicit QueryReader(const std::string& s) : s_(s) {}

  void Read(Query& q) {
    while (Skip(), i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '"') {
        String();
      } else if (IdentStart(c)) {
        Identifier(q);
      } else if (c == '{') {
        // A selector without a metric name: {__name__=~"a|b"}.
        for (const auto& m : Matchers(nullptr)) q.metrics[m];
      } else {
        ++i_;
      }
    }
    for (auto& [m, labels] : q.metrics) labels.insert(group_.begin(), group_.end());
    q.join_labels = join_;
  }

 private:
  void Skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  std::string Ident() {
    const std::size_t b = i_;
    while (i_ < s_.size() && IdentChar(s_[i_])) ++i_;
    return s_.substr(b, i_ - b);
  }
  std::string String() {
    std::string out;
    for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
      if (s_[i_] == '\\') ++i_;
      if (i_ < s_.size()) out += s_[i_];
    }
    ++i_;
    return out;
  }
  // `(a, b)`: label names.
  std::set<std::string> LabelList() {
    std::set<std::string> out;
    Skip();
    if (i_ >= s_.size() || s_[i_] != '(') return out;
    for (++i_; Skip(), i_ < s_.size() && s_[i_] != ')';) {
      if (IdentStart(s_[i_])) {
        out.insert(Ident());
      } else {
        ++i_;
      }
    }
    ++i_;
    return out;
  }
  // `{l="v", ...}`: adds the label names to `labels`; returns the names a __name__ matcher
  // allows ("a|b").
  std::vector<std::string> Matchers(std::set<std::string>* labels) {
    std::vector<std::string> names;
    for (++i_; Skip(), i_ < s_.size() && s_[i_] != '}';) {
      if (!IdentStart(s_[i_])) {
        ++i_;
        continue;
      }
      const std::string label = Ident();
      while (i_ < s_.size() && s_[i_] != '"') ++i_;
      const std::string value = String();
      if (label == "__name__") {
        std::stringstream alts(value);
        for (std::string n; std::getline(alts, n, '|');) names.push_back(n);
      } else if (labels != nullptr) {
        labels->insert(label);
      }
    }
    ++i_;
    return names;
  }
  void Identifier(Query& q) {
    const std::string id = Ident();
    Skip();
    const bool call = i_ < s_.size() && s_[i_] == '(';
    if (id == "by" || id == "on") {
      for (const auto& l : LabelList()) (id == "by" ? group_ : join_).insert(l);
    } else if (id == "without" || id == "ignoring" || id == "group_left" || id == "group_right") {
      (void)LabelList();
    } else if (id == "label_values" && call) {
      LabelValues(q);
    } else if (call || Keyword(id)) {
      // a function or aggregation (its argument is read on), or an operator
    } else {
      auto& labels = q.metrics[id];
      if (i_ < s_.size() && s_[i_] == '{') (void)Matchers(&labels);
    }
  }
  // Operators and aggregations, which may stand before "by (...)" rather than "(".
  static bool Keyword(const std::string& id) {
    static const std::set<std::string> k = {
        "and", "or",   "unless",  "bool",         "offset",   "sum",    "avg",    "count", "min",
        "max", "topk", "bottomk", "count_values", "quantile", "stddev", "stdvar", "group"};
    return k.count(id) != 0;
  }
  // label_values(<selector>, <label>): the selector's metrics must carry <label>.
  void LabelValues(Query& q) {
    ++i_;  // (
    Skip();
    std::vector<std::string> names;
    std::set<std::string> labels;
    if (i_ < s_.size() && s_[i_] == '{') {
      names = Matchers(&labels);
    } else {
      names.push_back(Ident());
      Skip();
      if (i_ < s_.size() && s_[i_] == '{') (void)Matchers(&labels);
    }
    Skip();
    if (i_ < s_.size() && s_[i_] == ',') {
      ++i_;
      Skip();
      labels.insert(Ident());
    }
    for (const auto& n : names) q.metrics[n].insert(labels.begin(), labels.end());
  }

  const std::string& s_;
  std::size_t i_ = 0;
  std::set<std::string> group_, join_;
};

std::vector<Query> LoadQueries() {
  std::ifstream in(HAMI_DASHBOARD_QUERIES);
  std::vector<Query> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t bar = line.find('|');
    Query q{line.substr(0, bar), line.substr(bar + 1), {}, {}};
    QueryReader(q.text).Read(q);
    out.push_back(std::move(q));
  }
  return out;
}

// Every target and templating query of this project's dashboard (deploy/grafana).
std::vector<Query> LoadOurDashboard() {
  std::ifstream in(HAMI_OUR_DASHBOARD);
  const auto d = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  std::vector<Query> out;
  const auto add = [&](const nlohmann::json& expr) {
    if (!expr.is_string()) return;
    Query q{"deploy/grafana/hami-dashboard.json", expr.get<std::string>(), {}, {}};
    QueryReader(q.text).Read(q);
    out.push_back(std::move(q));
  };
  for (const auto& p : d.value("panels", nlohmann::json::array())) {
    for (const auto& t : p.value("targets", nlohmann::json::array())) add(t.value("expr", ""));
  }
  for (const auto& v : d["templating"].value("list", nlohmann::json::array())) {
    if (v.contains("query") && v["query"].is_object()) add(v["query"].value("query", ""));
  }
  return out;
}

// ---- What this project exports: metric -> samples' labels, from Prometheus text. ----

using Exported = std::map<std::string, std::vector<std::map<std::string, std::string>>>;

void ParseExposition(const std::string& text, Exported& out) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t brace = line.find('{'), space = line.find(' ');
    auto& samples = out[line.substr(0, std::min(brace, space))];
    std::map<std::string, std::string> labels;
    if (brace != std::string::npos && brace < space) {
      for (std::size_t i = brace + 1; i < line.size() && line[i] != '}';) {
        const std::size_t eq = line.find("=\"", i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') ++j;
          value += line[j];
        }
        labels[line.substr(i, eq - i)] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
    }
    samples.push_back(std::move(labels));
  }
}

// Series of NVIDIA's dcgm-exporter, which HAMi's GPU dashboard shows next to HAMi's own.
bool FromDcgmExporter(const std::string& metric) { return metric.starts_with("DCGM_"); }
// Labels the user's Prometheus adds when it scrapes (HAMi's monitor does not export them
// either): node_name in HAMi's older dashboard.
bool AddedByScrape(const std::string& label) { return label == "node_name"; }

class HamiDashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami-dash-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/fakegpu.conf")
        << "uuid=" << kGpu0 << " name=NVIDIA A100-SXM4-80GB mem=80g temp=48 power=95000 ecc=1,0\n"
        << "uuid=" << kGpu1 << " name=NVIDIA A100-SXM4-80GB mem=80g migs=1g.10gb:9:0\n";
    setenv("FAKEGPU_CONFIG", (dir_ + "/fakegpu.conf").c_str(), 1);
    setenv("FAKEGPU_STATE", (dir_ + "/fakegpu.state").c_str(), 1);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The monitor's text: one container with a slice of GPU 0 and an accounting file.
  std::string MonitorText() {
    auto gpus = gpu::OpenNvml(HAMI_FAKE_NVML);
    EXPECT_TRUE(gpus.ok()) << gpus.status().ToString();
    if (!gpus.ok()) return "";
    common::PodMeta m{"ml", "train-0", "uid-train-0", "main", 0, {{kGpu0, "NVIDIA", 8192, 30}}};
    const auto layout = common::LayoutFor(dir_);
    fs::create_directories(layout.AllocationDir(m.pod_uid, "main"));
    fs::create_directories(layout.ContainerDir(m.pod_uid, "main"));
    std::ofstream(layout.AllocationDir(m.pod_uid, "main") + "/" + abi::kPodMetaFileName)
        << common::EncodePodMeta(m);
    // A kernel a second ago, so the last-kernel series exists too.
    const uint64_t now_ns =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    testing::WriteFile(layout.ContainerDir(m.pod_uid, "main") + "/vgpu.cache",
                       testing::AccountingBytes(
                           {{kGpu0, 8192ull << 20, 1ull << 30, now_ns - 1000000000ull, 0, 0}}, 1));
    // A second container on a MIG device of GPU 1 (the fake's "MIG-" UUID of its first slot).
    common::PodMeta mig{"ml", "infer-0", "uid-infer-0", "main", 0, {{kMig10, "NVIDIA", 9728, 0}}};
    fs::create_directories(layout.AllocationDir(mig.pod_uid, "main"));
    std::ofstream(layout.AllocationDir(mig.pod_uid, "main") + "/" + abi::kPodMetaFileName)
        << common::EncodePodMeta(mig);
    monitor::CollectorOptions opts;
    opts.hook_path = dir_;
    opts.node_name = "node-1";
    opts.legacy_metrics = true;  // HAMi's chart sets --legacy-metrics for its older dashboard
    monitor::Collector c(opts, gpus->get());
    return c.MetricsText();
  }

  // The extender's text: node-1 registers the same two GPUs, one pod bound to it.
  std::string SchedulerText() {
    k8s::testing::FakeApiServer api;
    EXPECT_TRUE(api.Start().ok());
    auto gpus = k8s::testing::MakeGpus("node-1", 2);
    gpus[0].uuid = kGpu0;
    gpus[1].uuid = kGpu1;
    EXPECT_TRUE(api.Create("nodes", k8s::testing::MakeNode("node-1", gpus)).ok());
    k8s::ClientConfig cfg = api.client_config();
    auto client = k8s::HttpKubeClient::Create(cfg);
    EXPECT_TRUE(client.ok());
    std::string text;
    {
      k8s::Extender ext({}, client->get());
      ext.Start();
      EXPECT_TRUE(ext.WaitReady(5s));
      auto pod = api.Create("pods", k8s::testing::MakeGpuPod("ml", "train-0", 1, 8192, 30));
      EXPECT_TRUE(pod.ok());
      const auto& meta = (*pod)["metadata"];
      auto bound = ext.Bind({{"podName", meta["name"]},
                             {"podNamespace", meta["namespace"]},
                             {"podUID", meta["uid"]},
                             {"node", "node-1"}});
      EXPECT_TRUE(bound.ok() && (*bound)["error"] == "");
      text = ext.Metrics();
    }
    api.Stop();
    return text;
  }

  static constexpr char kGpu0[] = "GPU-da5b0000-0000-4000-8000-000000000000";
  static constexpr char kGpu1[] = "GPU-da5b0000-0000-4000-8000-000000000001";
  static constexpr char kMig10[] = "MIG-da5b0000-0000-4000-8000-a00001000000";
  std::string dir_;
};

TEST(HamiDashboardQueries, TheReaderFindsEveryMetricAndLabel) {
  std::set<std::string> names;
  for (const auto& q : LoadQueries()) {
    for (const auto& [m, l] : q.metrics) names.insert(m);
  }
  EXPECT_EQ(names, (std::set<std::string>{"DCGM_FI_DEV_FB_FREE",
                                          "DCGM_FI_DEV_FB_USED",
                                          "DCGM_FI_DEV_GPU_TEMP",
                                          "DCGM_FI_DEV_GPU_UTIL",
                                          "DCGM_FI_DEV_POWER_USAGE",
                                          "DCGM_FI_DEV_SM_CLOCK",
                                          "Device_memory_desc_of_container",
                                          "HostCoreUtilization",
                                          "HostGPUMemoryUsage",
                                          "hami_container_device_utilization_ratio",
                                          "hami_gpu_core_allocated_ratio",
                                          "hami_gpu_memory_allocated_bytes",
                                          "hami_gpu_memory_limit_bytes",
                                          "hami_gpu_shared_count",
                                          "hami_host_gpu_memory_used_bytes",
                                          "hami_host_gpu_utilization_ratio",
                                          "hami_node_gpu_memory_allocated_ratio",
                                          "hami_vgpu_memory_limit_bytes",
                                          "hami_vgpu_memory_used_bytes",
                                          "vGPU_device_memory_limit_in_bytes"}));
  Query q{"", "sum by (node) (a{x=~\"$x\", y=\"1\"}) and on (device_uuid) b", {}, {}};
  QueryReader(q.text).Read(q);
  EXPECT_EQ(q.metrics["a"], (std::set<std::string>{"node", "x", "y"}));
  EXPECT_EQ(q.join_labels, std::set<std::string>{"device_uuid"});
}

// Checks every query's metrics against `exported`; returns the (query, metric) pairs checked.
int ExpectSeriesFor(const std::vector<Query>& queries, Exported& exported) {
  int checked = 0;
  for (const auto& q : queries) {
    for (const auto& [metric, labels] : q.metrics) {
      if (FromDcgmExporter(metric)) continue;
      SCOPED_TRACE(q.dashboard + ": " + q.text + " -> " + metric);
      ++checked;
      const auto it = exported.find(metric);
      if (it == exported.end() || it->second.empty()) {
        ADD_FAILURE() << "no series";
        continue;
      }
      bool labelled = false;
      for (const auto& sample : it->second) {
        bool all = true;
        for (const auto& l : labels) {
          if (AddedByScrape(l)) continue;
          all = all && sample.count(l) != 0 && !sample.at(l).empty();
        }
        labelled = labelled || all;
      }
      EXPECT_TRUE(labelled) << "no series carries every label the query uses";
    }
    // `a and on (device_uuid) b`: monitor and scheduler must agree on the join's values.
    for (const auto& l : q.join_labels) {
      std::set<std::string> common_values;
      bool first = true;
      for (const auto& [metric, labels] : q.metrics) {
        std::set<std::string> values;
        for (const auto& sample : exported[metric]) {
          if (sample.count(l) && (first || common_values.count(sample.at(l)))) {
            values.insert(sample.at(l));
          }
        }
        common_values = values;
        first = false;
      }
      EXPECT_FALSE(common_values.empty()) << q.text << ": no " << l << " on both sides";
    }
  }
  return checked;
}

TEST_F(HamiDashboardTest, EveryQueryOfHamisDashboardsFindsItsSeries) {
#ifndef HAMI_FAKE_NVML
  GTEST_SKIP() << "the fake NVML is not part of this build";
#else
  Exported exported;
  ParseExposition(MonitorText(), exported);
  ParseExposition(SchedulerText(), exported);
  EXPECT_EQ(ExpectSeriesFor(LoadQueries(), exported), 27);  // every HAMi series read, per query
#endif
}

// This project's dashboard too, including the temperature, power, ECC and MIG panels.
TEST_F(HamiDashboardTest, EveryQueryOfOurDashboardFindsItsSeries) {
#ifndef HAMI_FAKE_NVML
  GTEST_SKIP() << "the fake NVML is not part of this build";
#else
  const auto queries = LoadOurDashboard();
  std::set<std::string> names;
  for (const auto& q : queries) {
    for (const auto& [m, l] : q.metrics) names.insert(m);
  }
  for (const char* m : {"hami_host_gpu_temperature_celsius", "hami_host_gpu_power_usage_watts",
                        "hami_host_gpu_ecc_errors_total", "hami_mig_device_info"}) {
    EXPECT_TRUE(names.count(m)) << m << " is not on the dashboard";
  }
  Exported exported;
  ParseExposition(MonitorText(), exported);
  ParseExposition(SchedulerText(), exported);
  EXPECT_GE(ExpectSeriesFor(queries, exported), 20);
  // The MIG slice of the second container, identified through NVML.
  bool mig = false;
  for (const auto& s : exported["hami_mig_device_info"]) {
    mig = mig ||
          (s.at("pod") == "infer-0" && s.at("mig_uuid") == kMig10 && s.at("device_uuid") == kGpu1 &&
           s.at("profile") == "1g.10gb" && s.at("gpu_instance_id") == "9");
  }
  EXPECT_TRUE(mig);
#endif
}

}  // namespace
}  // namespace hami
