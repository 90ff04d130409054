#include "monitor/collector.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/testing/accounting_files.h"
#include "common/hook_layout.h"
#include "common/pod_meta.h"
#include "gpu/fake_backend.h"
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
                         "vdevice_index=\"0\",device_uuid=\"" + kGpuA + "\"}";
  const std::string l1 = std::string("{namespace=\"team-a\",pod=\"llm-0\",container=\"main\",") +
                         "vdevice_index=\"1\",device_uuid=\"" + kGpuB + "\"}";
  EXPECT_NE(text.find("hami_vgpu_memory_limit_bytes" + l0 + " 3145728000\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_vgpu_memory_limit_bytes" + l1 + " 2097152000\n"), std::string::npos);
  EXPECT_NE(text.find("hami_vgpu_memory_used_bytes" + l0 + " 0\n"), std::string::npos);
  EXPECT_NE(text.find("hami_container_device_utilization_ratio" + l0 + " 0\n"), std::string::npos);
  EXPECT_EQ(text.find("hami_container_last_kernel_elapsed_seconds{"), std::string::npos);
  EXPECT_NE(text.find("hami_build_info{component=\"vgpu-monitor\",version=\"0.1.0\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("hami_host_gpu_memory_used_bytes{node=\"node-1\",device_uuid=\"" +
                      std::string(kGpuA) +
                      "\",device_index=\"0\",device_type=\"NVIDIA-Tesla V100-SXM2-16GB\"} " +
                      std::to_string(5ull << 30) + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_host_gpu_utilization_ratio{node=\"node-1\",device_uuid=\"" +
                      std::string(kGpuA) + "\",device_index=\"0\",device_type=\"NVIDIA-Tesla " +
                      "V100-SXM2-16GB\"} 0.42\n"),
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
                         "vdevice_index=\"0\",device_uuid=\"" + kGpuA + "\"}";
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
  EXPECT_GT(ratio, 0.15 / (wall + 0.5));
  EXPECT_LE(ratio, 0.15 / 0.3 + 1e-9);
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

}  // namespace
}  // namespace hami::monitor
