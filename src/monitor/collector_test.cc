#include "monitor/collector.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/hook_layout.h"
#include "common/pod_meta.h"
#include "common/testing/accounting_files.h"
#include "common/testing/hamicore_files.h"
#include "gpu/fake_backend.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/testing/fake_apiserver.h"
#include "monitor/metrics_server.h"
#include "sched/annotation.h"

namespace hami::monitor {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char kGpuA[] = "GPU-aaaaaaaa-0000-0000-0000-000000000001";
const char kGpuB[] = "GPU-aaaaaaaa-0000-0000-0000-000000000002";

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami-mon-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.hook_path = dir_;
    opts_.node_name = "node-1";
    gpus_.SetUsage(kGpuA, {5ull << 30, 0, 42});
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes what the device plugin's Allocate leaves on the node for one container (the
  // allocation record and the empty container directory), from a to-allocate annotation.
  void Allocate(const std::string& pod, const std::string& to_allocate, std::size_t ndev) {
    auto segs = sched::DecodeContainerDevices(to_allocate);
    ASSERT_TRUE(segs.ok()) << segs.status().ToString();
    ASSERT_EQ((*segs)[0].size(), ndev);
    common::PodMeta m{"team-a", pod, "uid-" + pod, "main", 0, {}};
    for (const auto& d : (*segs)[0]) {
      m.devices.push_back({d.uuid, d.type, d.used_mem_mib, d.used_cores});
    }
    const auto layout = common::LayoutFor(dir_);
    fs::create_directories(layout.AllocationDir(m.pod_uid, "main"));
    fs::create_directories(layout.ContainerDir(m.pod_uid, "main"));
    std::ofstream(layout.AllocationDir(m.pod_uid, "main") + "/" + abi::kPodMetaFileName)
        << common::EncodePodMeta(m);
  }
  std::string CacheDir(const std::string& pod) {
    return dir_ + "/vgpu/containers/uid-" + pod + "_main";
  }

  std::string dir_;
  CollectorOptions opts_;
  gpu::FakeBackend gpus_{{{kGpuA, 0, "Tesla V100-SXM2-16GB", 16ull << 30, 0, false},
                          {kGpuB, 1, "Tesla V100-SXM2-16GB", 16ull << 30, 1, false}}};
};

TEST_F(CollectorTest, SeriesExistFromAllocationTimeBeforeAnyAccountingFile) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:" + kGpuB + ",NVIDIA,2000,30:;", 2);
  Collector c(opts_, &gpus_);
  const std::string text = c.MetricsText();
  const std::string l0 = std::string("{namespace=\"team-a\",pod=\"llm-0\",container=\"main\",") +
                         "vdevice_index=\"0\",device_uuid=\"" + kGpuA + "\",zone=\"vGPU\"}";
  const std::string l1 = std::string("{namespace=\"team-a\",pod=\"llm-0\",container=\"main\",") +
                         "vdevice_index=\"1\",device_uuid=\"" + kGpuB + "\",zone=\"vGPU\"}";
  EXPECT_NE(text.find("hami_vgpu_memory_limit_bytes" + l0 + " 3145728000\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_vgpu_memory_limit_bytes" + l1 + " 2097152000\n"), std::string::npos);
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes" + l0 + " 0\n"), std::string::npos);
  EXPECT_NE(text.find("hami_container_device_utilization_ratio" + l0 + " 0\n"), std::string::npos);
  EXPECT_EQ(text.find("hami_container_last_kernel_elapsed_seconds{"), std::string::npos);
  EXPECT_NE(text.find("hami_build_info{component=\"vgpu-monitor\",version=\"0.1.0\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "hami_host_gpu_memory_used_bytes{node=\"node-1\",device_uuid=\"" + std::string(kGpuA) +
          "\",device_index=\"0\",device_type=\"NVIDIA-Tesla V100-SXM2-16GB\",zone=\"vGPU\"} " +
          std::to_string(5ull << 30) + "\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_host_gpu_utilization_ratio{node=\"node-1\",device_uuid=\"" +
                      std::string(kGpuA) + "\",device_index=\"0\",device_type=\"NVIDIA-Tesla " +
                      "V100-SXM2-16GB\",zone=\"vGPU\"} 42\n"),  // percent, as HAMi reports it
            std::string::npos);
  EXPECT_NE(text.find("# TYPE hami_vgpu_memory_used_bytes gauge\n"), std::string::npos);
}

TEST_F(CollectorTest, AccountingFileFillsUsageAndCorruptFilesAreCountedAndSkipped) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  Allocate("llm-1", std::string(kGpuA) + ",NVIDIA,1000,10:;", 1);
  const uint64_t now = NowNs();
  testing::WriteFile(
      CacheDir("llm-0") + "/vgpu.cache",
      testing::AccountingBytes(
          {{kGpuA, 3000ull << 20, 777ull << 20, now - 2'000'000'000ull, 1'000'000, 0}}, 1));
  testing::WriteFile(CacheDir("llm-1") + "/vgpu.cache", "this is not an accounting file");
  Collector c(opts_, &gpus_);
  const std::string text = c.MetricsText();
  const std::string l0 = std::string("{namespace=\"team-a\",pod=\"llm-0\",container=\"main\",") +
                         "vdevice_index=\"0\",device_uuid=\"" + kGpuA + "\",zone=\"vGPU\"}";
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes" + l0 + " " + std::to_string(777ull << 20)),
            std::string::npos)
      << text;
  const std::size_t p = text.find("hami_container_last_kernel_elapsed_seconds" + l0 + " ");
  ASSERT_NE(p, std::string::npos);
  const double elapsed = std::stod(text.substr(p + text.substr(p).find(' ') + 1));
  EXPECT_GE(elapsed, 2.0);
  EXPECT_LT(elapsed, 60.0);
  // The corrupt file's container still has its allocation series; the error is counted.
  EXPECT_NE(text.find("pod=\"llm-1\""), std::string::npos);
  EXPECT_NE(text.find("hami_monitor_corrupt_accounting_files 1\n"), std::string::npos);
  EXPECT_EQ(c.corrupt_files_total(), 1u);
}

// NVML's used memory beyond what the slices' accounting files account for: a process without
// libvgpu.so, or one that went around it. A tenant's file claiming more than the GPU has
// cannot make the sum wrap (it saturates, and the gauge stops at 0).
TEST_F(CollectorTest, UnaccountedMemoryIsNvmlUseBeyondTheSlicesFiles) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  Allocate("llm-1", std::string(kGpuA) + ",NVIDIA,1000,10:;", 1);
  Allocate("llm-2", std::string(kGpuB) + ",NVIDIA,1000,10:;", 1);
  const uint64_t now = NowNs();
  testing::WriteFile(
      CacheDir("llm-0") + "/vgpu.cache",
      testing::AccountingBytes({{kGpuA, 3000ull << 20, 777ull << 20, now, 0, 0}}, 1));
  testing::WriteFile(
      CacheDir("llm-1") + "/vgpu.cache",
      testing::AccountingBytes({{kGpuA, 1000ull << 20, 200ull << 20, now, 0, 0}}, 1));
  gpus_.SetUsage(kGpuB, {1ull << 30, 0, 0});
  testing::WriteFile(CacheDir("llm-2") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuB, 1000ull << 20, UINT64_MAX, now, 0, 0},
                                               {kGpuB, 1000ull << 20, UINT64_MAX, now, 0, 0}},
                                              1));
  Collector c(opts_, &gpus_);
  const std::string text = c.MetricsText();
  const auto series = [](const char* uuid, const char* index) {
    return std::string("hami_host_gpu_memory_unaccounted_bytes{node=\"node-1\",device_uuid=\"") +
           uuid + "\",device_index=\"" + index +
           "\",device_type=\"NVIDIA-Tesla V100-SXM2-16GB\",zone=\"vGPU\"} ";
  };
  EXPECT_NE(text.find(series(kGpuA, "0") + std::to_string((5ull << 30) - (977ull << 20)) + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(series(kGpuB, "1") + "0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE hami_host_gpu_memory_unaccounted_bytes gauge\n"), std::string::npos);
  // A MIG slice's memory is its GPU's.
  const std::string mig = "MIG-aaaaaaaa-0000-0000-0000-00000000a001";
  Allocate("mig-0", mig + ",NVIDIA,5120,0:;", 1);
  gpus_.SetMigDevices({{mig, kGpuA, "1g.5gb", 7, 0}});
  testing::WriteFile(CacheDir("mig-0") + "/vgpu.cache",
                     testing::AccountingBytes({{mig, 5120ull << 20, 1000ull << 20, now, 0, 0}}, 1));
  const std::string with_mig = c.MetricsText();
  EXPECT_NE(
      with_mig.find(series(kGpuA, "0") + std::to_string((5ull << 30) - (1977ull << 20)) + "\n"),
      std::string::npos)
      << with_mig;
}

TEST_F(CollectorTest, UtilizationComesFromBusyTimeBetweenScrapes) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  const std::string cache = CacheDir("llm-0") + "/vgpu.cache";
  testing::WriteFile(cache, testing::AccountingBytes({{kGpuA, 0, 0, NowNs(), 0, 0}}, 1));
  Collector c(opts_, nullptr);
  (void)c.Collect();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(300ms);
  // Busy for 150 ms worth of GPU time in that interval.
  testing::WriteFile(cache, testing::AccountingBytes({{kGpuA, 0, 0, NowNs(), 150'000'000, 0}}, 1));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double ratio = -1;
  for (const auto& f : c.Collect()) {
    if (f.name == "hami_container_device_utilization_ratio") ratio = f.samples.at(0).value;
  }
  // Percent (0..100), as HAMi reports it.
  EXPECT_GT(ratio, 100 * 0.15 / (wall + 0.5));
  EXPECT_LE(ratio, 100 * 0.15 / 0.3 + 1e-9);
}

TEST_F(CollectorTest, HamiNamesUnitsAndLegacyNames) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  gpus_.SetUsage(kGpuA, {5ull << 30, 0, 42, 17});
  Collector c(opts_, &gpus_);
  std::string text = c.MetricsText();
  const std::string host =
      std::string("{node=\"node-1\",device_uuid=\"") + kGpuA +
      "\",device_index=\"0\",device_type=\"NVIDIA-Tesla V100-SXM2-16GB\",zone=\"vGPU\"}";
  EXPECT_NE(text.find("hami_host_gpu_memory_controller_utilization_ratio" + host + " 17\n"),
            std::string::npos)
      << text;
  const std::string ctr = std::string("{namespace=\"team-a\",pod=\"llm-0\",container=\"main\",") +
                          "vdevice_index=\"0\",device_uuid=\"" + kGpuA + "\",zone=\"vGPU\"}";
  EXPECT_NE(text.find("hami_container_device_memory_bytes" + ctr + " 0\n"), std::string::npos);
  EXPECT_EQ(text.find("HostGPUMemoryUsage"), std::string::npos) << "legacy names only on request";
  opts_.legacy_metrics = true;
  Collector legacy(opts_, &gpus_);
  text = legacy.MetricsText();
  // HAMi's pre-v2.8 names and label names, same values.
  EXPECT_NE(
      text.find(std::string("HostGPUMemoryUsage{nodeid=\"node-1\",deviceuuid=\"") + kGpuA +
                "\",deviceidx=\"0\",devicetype=\"NVIDIA-Tesla V100-SXM2-16GB\",zone=\"vGPU\"} " +
                std::to_string(5ull << 30) + "\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("HostCoreUtilization{nodeid=\"node-1\""), std::string::npos);
  EXPECT_NE(text.find(std::string("vGPU_device_memory_limit_in_bytes{podnamespace=\"team-a\",") +
                      "podname=\"llm-0\",ctrname=\"main\",vdeviceid=\"0\",deviceuuid=\"" + kGpuA +
                      "\",zone=\"vGPU\"} 3145728000\n"),
            std::string::npos);
  EXPECT_NE(text.find("vGPU_device_memory_usage_in_bytes{"), std::string::npos);
  EXPECT_NE(text.find("# TYPE Device_utilization_desc_of_container gauge"), std::string::npos);
  // The new names are still there.
  EXPECT_NE(text.find("hami_vgpu_memory_limit_bytes{"), std::string::npos);
}

// HAMi's own device plugin writes containers/<podUID>_<ctr> and no pod.json: the pod's name
// comes from the API server, as HAMi's monitor gets it from its pod informer.
TEST_F(CollectorTest, HamiWrittenContainerDirectoriesGetPodLabelsFromTheApi) {
  k8s::testing::FakeApiServer api;
  ASSERT_TRUE(api.Start().ok());
  auto pod =
      api.Create("pods", {{"apiVersion", "v1"},
                          {"kind", "Pod"},
                          {"metadata", {{"name", "train-0"}, {"namespace", "ml"}}},
                          {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}}}}}}});
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  const std::string uid = (*pod)["metadata"]["uid"].get<std::string>();
  k8s::ClientConfig cfg = api.client_config();
  auto client = k8s::HttpKubeClient::Create(cfg);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  KubePodResolver pods(std::move(*client), "node-1");
  const std::string ctr_dir = dir_ + "/vgpu/containers/" + uid + "_c";
  fs::create_directories(ctr_dir);
  testing::WriteFile(ctr_dir + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 1ull << 30, 5ull << 20, 0, 0, 0}}, 1));
  Collector c(opts_, nullptr);
  c.set_pod_resolver(&pods);
  const std::string text = c.MetricsText();
  EXPECT_NE(text.find(std::string("hami_vgpu_memory_used_bytes{namespace=\"ml\",pod=\"train-0\",") +
                      "container=\"c\",vdevice_index=\"0\",device_uuid=\"" + kGpuA +
                      "\",zone=\"vGPU\"} " + std::to_string(5ull << 20)),
            std::string::npos)
      << text;
  // A UID the API does not know keeps the UID as its name.
  fs::create_directories(dir_ + "/vgpu/containers/gone-uid_c");
  EXPECT_EQ(pods.Lookup("gone-uid").has_value(), false);
  api.Stop();
}

TEST_F(CollectorTest, ContentionFilesCountActiveContainersPerGpu) {
  Allocate("a", std::string(kGpuA) + ",NVIDIA,1000,30:;", 1);
  Allocate("b", std::string(kGpuA) + ",NVIDIA,1000,30:;", 1);
  Allocate("c", std::string(kGpuA) + ",NVIDIA,1000,30:;", 1);
  const uint64_t now = NowNs();
  testing::WriteFile(CacheDir("a") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 0, 0, now, 0, 1}}, 1));
  testing::WriteFile(CacheDir("b") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 0, 0, now, 0, 0}}, 1));
  // c ran a kernel long ago: allocated but not active.
  testing::WriteFile(CacheDir("c") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 0, 0, now - 60'000'000'000ull, 0, 0}}, 1));
  Collector c(opts_, &gpus_);
  ASSERT_TRUE(c.WriteContentionFiles().ok());
  std::ifstream in(dir_ + "/vgpu/contention/" + kGpuA);
  std::map<std::string, std::string> kv;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    kv[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
  }
  EXPECT_EQ(kv["ALLOCATED_CONTAINERS"], "3");
  EXPECT_EQ(kv["ACTIVE_CONTAINERS"], "2");
  EXPECT_EQ(kv["ACTIVE_HIGH_PRIORITY"], "1");
  EXPECT_EQ(kv["MIN_ACTIVE_PRIORITY"], "0");
  EXPECT_FALSE(kv["UPDATED_UNIX_MS"].empty());
  // An idle GPU of the node gets a file too.
  std::ifstream idle(dir_ + "/vgpu/contention/" + kGpuB);
  std::string all((std::istreambuf_iterator<char>(idle)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("ACTIVE_CONTAINERS=0\n"), std::string::npos);
  EXPECT_NE(all.find("MIN_ACTIVE_PRIORITY=-1\n"), std::string::npos);
}

TEST_F(CollectorTest, ServesMetricsOverHttp) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  Collector c(opts_, &gpus_);
  MetricsServer server(&c);
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  httplib::Client cli("127.0.0.1", server.port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("hami_vgpu_memory_limit_bytes{namespace=\"team-a\",pod=\"llm-0\""),
            std::string::npos);
  EXPECT_EQ(cli.Get("/healthz")->status, 200);
  server.Stop();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A real Prometheus server scrapes the monitor; PromQL must return the per-container series.
TEST_F(CollectorTest, PrometheusScrapesPerContainerSeries) {
#ifndef HAMI_PROMETHEUS
  GTEST_SKIP() << "prometheus binary not found at configure time (scripts/install-deps.sh --test)";
#else
  if (access(HAMI_PROMETHEUS, X_OK) != 0) GTEST_SKIP() << HAMI_PROMETHEUS << " missing";
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  testing::WriteFile(
      CacheDir("llm-0") + "/vgpu.cache",
      testing::AccountingBytes({{kGpuA, 3000ull << 20, 512ull << 20, NowNs(), 0, 0}}, 1));
  Collector c(opts_, &gpus_);
  MetricsServer server(&c);
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  const int prom_port = FreePort();
  const std::string cfg = dir_ + "/prometheus.yml";
  {
    std::ofstream out(cfg);
    out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: hami-vgpu-monitor\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << server.port() << "']\n";
  }
  const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(prom_port);
  const std::string config = "--config.file=" + cfg;
  const std::string storage = "--storage.tsdb.path=" + dir_ + "/tsdb";
  const std::string log = dir_ + "/prometheus.log";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(HAMI_PROMETHEUS, HAMI_PROMETHEUS, config.c_str(), listen.c_str(), storage.c_str(),
          "--web.enable-lifecycle", static_cast<char*>(nullptr));
    _exit(127);
  }
  httplib::Client cli("127.0.0.1", prom_port);
  cli.set_connection_timeout(1, 0);
  const std::string query =
      "/api/v1/query?query=" +
      httplib::detail::encode_query_param("hami_vgpu_memory_used_bytes{pod=\"llm-0\"}");
  nlohmann::json result;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto res = cli.Get(query.c_str()); res && res->status == 200) {
      auto j = nlohmann::json::parse(res->body, nullptr, false);
      if (!j.is_discarded() && j["status"] == "success" && !j["data"]["result"].empty()) {
        result = j["data"]["result"];
        break;
      }
    }
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      pid = -1;
      break;
    }
    std::this_thread::sleep_for(250ms);
  }
  if (pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  server.Stop();
  std::ifstream logf(log);
  std::string logtext((std::istreambuf_iterator<char>(logf)), std::istreambuf_iterator<char>());
  ASSERT_EQ(result.size(), 1u) << "no series from Prometheus; its log:\n"
                               << logtext.substr(0, 4000);
  const auto& metric = result[0]["metric"];
  EXPECT_EQ(metric["namespace"], "team-a");
  EXPECT_EQ(metric["pod"], "llm-0");
  EXPECT_EQ(metric["container"], "main");
  EXPECT_EQ(metric["vdevice_index"], "0");
  EXPECT_EQ(metric["device_uuid"], kGpuA);
  EXPECT_EQ(metric["job"], "hami-vgpu-monitor");
  EXPECT_EQ(result[0]["value"][1], std::to_string(512ull << 20));
#endif
}

// The value of the one sample of `name` whose rendered labels contain every `parts` entry; NaN
// when none does.
double ValueOf(const std::string& text, const std::string& name,
               const std::vector<std::string>& parts) {
  std::size_t at = 0;
  while ((at = text.find("\n" + name + "{", at)) != std::string::npos) {
    const std::size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end - at - 1);
    at = end;
    bool all = true;
    for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nan("");
}

// HAMi's temperature, power and ECC series (cmd/vGPUmonitor/metrics.go): names, the host
// labels plus zone="vGPU", error_type for ECC, degrees Celsius and watts (NVML's milliwatts
// / 1000); a sensor the GPU lacks has no series rather than a 0.
TEST_F(CollectorTest, HostTemperaturePowerAndEccSeries) {
  gpus_.SetTelemetry(kGpuA, {61, 212500, 3, 1});
  gpus_.SetTelemetry(kGpuB, {44, std::nullopt, std::nullopt, std::nullopt});
  gpus_.SetUsage(kGpuB, {1ull << 30, 0, 0});
  Collector c(opts_, &gpus_);
  const std::string text = "\n" + c.MetricsText();
  const std::string host = std::string("{node=\"node-1\",device_uuid=\"") + kGpuA +
                           "\",device_index=\"0\",device_type=\"NVIDIA-Tesla V100-SXM2-16GB\"";
  EXPECT_NE(text.find("\nhami_host_gpu_temperature_celsius" + host + ",zone=\"vGPU\"} 61\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nhami_host_gpu_power_usage_watts" + host + ",zone=\"vGPU\"} 212.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nhami_host_gpu_ecc_errors_total" + host +
                      ",error_type=\"corrected\",zone=\"vGPU\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nhami_host_gpu_ecc_errors_total" + host +
                      ",error_type=\"uncorrected\",zone=\"vGPU\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE hami_host_gpu_ecc_errors_total gauge\n"), std::string::npos);
  EXPECT_EQ(ValueOf(text, "hami_host_gpu_temperature_celsius", {kGpuB}), 44);
  EXPECT_TRUE(std::isnan(ValueOf(text, "hami_host_gpu_power_usage_watts", {kGpuB}))) << text;
  EXPECT_TRUE(std::isnan(ValueOf(text, "hami_host_gpu_ecc_errors_total", {kGpuB})));
  // zone is HAMi's collector's label only: this project's own series do not carry it.
  EXPECT_NE(text.find("\nhami_monitor_corrupt_accounting_files 0\n"), std::string::npos);
  opts_.zone = "";
  Collector no_zone(opts_, &gpus_);
  EXPECT_EQ(no_zone.MetricsText().find("zone="), std::string::npos);
}

// A container whose slice is a MIG device: NVML names its GPU, profile and instances.
TEST_F(CollectorTest, MigDeviceInfoForAContainerOnAMigDevice) {
  const std::string mig = "MIG-aaaaaaaa-0000-0000-0000-00000000a001";
  Allocate("mig-0", mig + ",NVIDIA,5120,0:;", 1);
  gpus_.SetMigDevices({{mig, kGpuA, "1g.5gb", 7, 0}, {"MIG-other", kGpuA, "2g.10gb", 3, 0}});
  opts_.legacy_metrics = true;
  Collector c(opts_, &gpus_);
  const std::string text = "\n" + c.MetricsText();
  EXPECT_NE(
      text.find("\nhami_mig_device_info{namespace=\"team-a\",pod=\"mig-0\",container=\"main\","
                "vdevice_index=\"0\",device_uuid=\"" +
                std::string(kGpuA) + "\",mig_uuid=\"" + mig +
                "\",profile=\"1g.5gb\",gpu_instance_id=\"7\",compute_instance_id=\"0\","
                "zone=\"vGPU\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("MIG-other"), std::string::npos) << "only MIG devices a container uses";
  // HAMi's legacy MigInfo: the GPU instance as instanceid, no MIG UUID, profile or CI.
  EXPECT_NE(text.find("\nMigInfo{podnamespace=\"team-a\",podname=\"mig-0\",ctrname=\"main\","
                      "vdeviceid=\"0\",deviceuuid=\"" +
                      std::string(kGpuA) + "\",instanceid=\"7\",zone=\"vGPU\"} 1\n"),
            std::string::npos);
  // A node without MIG slices has the family and no samples.
  CollectorOptions none = opts_;
  none.hook_path = dir_ + "/none";
  Collector plain(none, &gpus_);
  EXPECT_EQ(plain.MetricsText().find("hami_mig_device_info{"), std::string::npos);
}

// HAMi's device plugin in MIG mode records what it realised on the pod; HAMi's monitor exports
// that, and so does this one when it lists the node's pods.
TEST_F(CollectorTest, MigDeviceInfoFromHamisPodAnnotation) {
  k8s::testing::FakeApiServer api;
  ASSERT_TRUE(api.Start().ok());
  // HAMi's own sample (pkg/device/nvidia tests), container index 1 = the second container.
  const std::string ann =
      R"([{"containerIndex":1,"deviceIndex":0,"gpuUUID":"GPU-M","profile":"3g.40gb",)"
      R"("placement":{"start":4,"size":4},"migUUID":"MIG-1","gpuInstanceID":2,)"
      R"("computeInstanceID":0},{"containerIndex":0,"deviceIndex":0,"gpuUUID":"GPU-M",)"
      R"("profile":"1g.5gb","placement":{"start":6,"size":1}}])";
  auto pod = api.Create("pods", {{"apiVersion", "v1"},
                                 {"kind", "Pod"},
                                 {"metadata",
                                  {{"name", "mig-pod"},
                                   {"namespace", "ml"},
                                   {"annotations", {{"hami.io/vgpu-mig-allocations", ann}}}}},
                                 {"spec",
                                  {{"nodeName", "node-1"},
                                   {"initContainers", {{{"name", "init"}}}},
                                   {"containers", {{{"name", "train"}}}}}}});
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  k8s::ClientConfig cfg = api.client_config();
  auto client = k8s::HttpKubeClient::Create(cfg);
  ASSERT_TRUE(client.ok());
  KubePodResolver pods(std::move(*client), "node-1");
  Collector c(opts_, nullptr);
  c.set_pod_resolver(&pods);
  const std::string text = c.MetricsText();
  EXPECT_NE(text.find("hami_mig_device_info{namespace=\"ml\",pod=\"mig-pod\",container=\"train\","
                      "vdevice_index=\"0\",device_uuid=\"GPU-M\",mig_uuid=\"MIG-1\","
                      "profile=\"3g.40gb\",gpu_instance_id=\"2\",compute_instance_id=\"0\","
                      "zone=\"vGPU\"} 1\n"),
            std::string::npos)
      << text;
  // The reservation not yet realised (no MIG UUID) has no series.
  EXPECT_EQ(text.find("1g.5gb"), std::string::npos);
  api.Stop();
}

TEST(MigAllocationsTest, HamisEncodingAndItsFailures) {
  const std::vector<std::string> ctrs = {"a", "b"};
  auto ok = ParseMigAllocations(
      R"([{"containerIndex":1,"deviceIndex":2,"gpuUUID":"GPU-M","profile":"3g.40gb",)"
      R"("migUUID":"MIG-1","gpuInstanceID":2,"computeInstanceID":0}])",
      ctrs);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].container, "b");
  EXPECT_EQ((*ok)[0].device_index, 2);
  EXPECT_EQ((*ok)[0].gpu_instance_id, 2u);
  // HAMi's broken sample: a string where an integer belongs.
  EXPECT_EQ(ParseMigAllocations(R"([{"containerIndex":"1"}])", ctrs).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseMigAllocations("{}", ctrs).ok());
  EXPECT_FALSE(ParseMigAllocations("not json", ctrs).ok());
  auto out_of_range = ParseMigAllocations(
      R"([{"containerIndex":5,"migUUID":"MIG-1","gpuInstanceID":2,"computeInstanceID":0}])", ctrs);
  EXPECT_NE(out_of_range.status().message().find("container index 5"), std::string::npos);
  auto pending = ParseMigAllocations(R"([{"containerIndex":0,"gpuUUID":"GPU-M"}])", ctrs);
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

// Per-container memory: HAMi-core's shared region splits it into context, module and buffer
// bytes; this project's accounting file keeps one total per process, so those three series are
// not exported (no made-up split), and the legacy Device_memory_desc_of_container carries the
// total without HAMi's context/module/data/offset labels.
TEST_F(CollectorTest, ContainerMemoryTotalsWithoutAnInventedBreakdown) {
  Allocate("llm-0", std::string(kGpuA) + ",NVIDIA,3000,30:;", 1);
  testing::WriteFile(CacheDir("llm-0") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 3000ull << 20, 777ull << 20, 0, 0, 0}}, 1));
  opts_.legacy_metrics = true;
  Collector c(opts_, &gpus_);
  const std::string text = c.MetricsText();
  EXPECT_NE(
      text.find("Device_memory_desc_of_container{podnamespace=\"team-a\",podname=\"llm-0\","
                "ctrname=\"main\",vdeviceid=\"0\",deviceuuid=\"" +
                std::string(kGpuA) + "\",zone=\"vGPU\"} " + std::to_string(777ull << 20) + "\n"),
      std::string::npos)
      << text;
  for (const char* absent : {"hami_vgpu_memory_context_bytes", "hami_vgpu_memory_module_bytes",
                             "hami_vgpu_memory_buffer_bytes", "context=", "offset="}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
  }
}

class FixedPods final : public PodResolver {
 public:
  std::optional<PodRef> Lookup(const std::string& pod_uid) override {
    if (pod_uid == "uid-hc") return PodRef{"ml", "train-hc"};
    return std::nullopt;
  }
};

// Next to HAMi-core (HAMi's device plugin and libvgpu.so), a container directory holds
// HAMi-core's region under the name HAMi's device plugin gave it: the monitor reads it, names
// the pod through the resolver and exports HAMi's series, with the context/module/buffer split
// that only HAMi-core's region has (our own file's container gets none).
TEST_F(CollectorTest, HamiCoreRegionGivesHamiSeriesAndTheMemorySplit) {
  const std::string ctr_dir = dir_ + "/vgpu/containers/uid-hc_main";
  fs::create_directories(ctr_dir);
  testing::HamiCoreRegion r;
  r.DeviceNum(1);
  r.Device(0, kGpuB, 2ull << 30, 40);
  r.Proc(0, 7, 0, 1ull << 20, 2ull << 20, 100ull << 20);
  r.Proc(1, 8, 0, 1ull << 20, 0, 20ull << 20);
  r.SmUtil(0, 0, 30);
  r.SmUtil(1, 0, 12);
  r.ProcNum(2);
  r.Priority(0);
  r.LastKernelTime(static_cast<int64_t>(NowNs() / 1'000'000'000ull) - 3);
  testing::WriteFile(ctr_dir + "/4b1c7e0a-1f7e-4c5e-9d0b-0a9d5c1e2f3a.cache", r.bytes());
  Allocate("ours", std::string(kGpuA) + ",NVIDIA,1000,30:;", 1);
  testing::WriteFile(CacheDir("ours") + "/vgpu.cache",
                     testing::AccountingBytes({{kGpuA, 1000ull << 20, 9ull << 20, 0, 0, 0}}, 1));
  FixedPods pods;
  Collector c(opts_, &gpus_);
  c.set_pod_resolver(&pods);
  const std::string text = c.MetricsText();
  const std::string l = std::string("{namespace=\"ml\",pod=\"train-hc\",container=\"main\",") +
                        "vdevice_index=\"0\",device_uuid=\"" + kGpuB + "\",zone=\"vGPU\"} ";
  const uint64_t used = (1ull << 20) * 2 + (2ull << 20) + (120ull << 20);
  for (const auto& [name, value] : std::vector<std::pair<std::string, uint64_t>>{
           {"hami_vgpu_memory_used_bytes", used},
           {"hami_container_device_memory_bytes", used},
           {"hami_vgpu_memory_limit_bytes", 2ull << 30},
           {"hami_vgpu_memory_context_bytes", 2ull << 20},
           {"hami_vgpu_memory_module_bytes", 2ull << 20},
           {"hami_vgpu_memory_buffer_bytes", 120ull << 20}}) {
    EXPECT_NE(text.find(name + l + std::to_string(value) + "\n"), std::string::npos) << name << "\n"
                                                                                     << text;
  }
  EXPECT_NE(text.find("hami_container_last_kernel_elapsed_seconds" + l), std::string::npos);
  EXPECT_NE(text.find("hami_container_device_utilization_ratio" + l + "42\n"), std::string::npos)
      << text;
  EXPECT_EQ(c.corrupt_files_total(), 0u);
  // Our own libvgpu.so's container: used bytes, no split series.
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes{namespace=\"team-a\",pod=\"ours\""),
            std::string::npos);
  EXPECT_EQ(text.find("hami_vgpu_memory_context_bytes{namespace=\"team-a\""), std::string::npos);
}

// A hostile HAMi-core region (a tenant writes it) is skipped and counted, never trusted.
TEST_F(CollectorTest, HostileHamiCoreRegionIsCountedCorrupt) {
  const std::string ctr_dir = dir_ + "/vgpu/containers/uid-hc_main";
  fs::create_directories(ctr_dir);
  testing::HamiCoreRegion r;
  r.DeviceNum(1);
  r.Device(0, kGpuB, 2ull << 30, 0);
  r.ProcNum(100000);
  testing::WriteFile(ctr_dir + "/x.cache", r.bytes());
  Collector c(opts_, nullptr);
  const std::string text = c.MetricsText();
  EXPECT_EQ(c.corrupt_files_total(), 1u);
  EXPECT_EQ(text.find("hami_vgpu_memory_used_bytes{"), std::string::npos) << text;
}

}  // namespace
}  // namespace hami::monitor
