// hami-vgpu-monitor: serves node metrics and keeps the per-GPU contention files current.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>

#include "common/log.h"
#include "gpu/nvml.h"
#include "monitor/collector.h"
#include "monitor/metrics_server.h"

namespace mon = hami::monitor;

int main(int argc, char** argv) {
  CLI::App app{"HAMi node monitor: per-container GPU metrics and contention files"};
  mon::CollectorOptions opts;
  if (const char* n = std::getenv("NODE_NAME")) opts.node_name = n;
  if (const char* h = std::getenv("HOOK_PATH")) opts.hook_path = h;
  std::string host = "0.0.0.0", nvml_lib = "libnvidia-ml.so.1";
  int port = 9394, interval_ms = 1000, window_ms = 5000;
  bool no_nvml = false;
  std::string log_level;
  hami::log::Init("hami-vgpu-monitor");
  app.add_option("--hook-path", opts.hook_path, "host hook path (global.gpuHookPath)")
      ->capture_default_str();
  app.add_option("--node-name", opts.node_name, "node label of host metrics ($NODE_NAME)");
  app.add_option("--host", host, "listen address")->capture_default_str();
  app.add_option("--port", port, "metrics port")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--nvml-lib", nvml_lib, "NVML library to dlopen")->capture_default_str();
  app.add_flag("--no-nvml", no_nvml, "run without NVML (no host metrics)");
  app.add_option("--contention-interval-ms", interval_ms, "contention file refresh period")
      ->capture_default_str()
      ->check(CLI::Range(50, 600000));
  app.add_option("--active-window-ms", window_ms, "a container is active this long after a kernel")
      ->capture_default_str()
      ->check(CLI::Range(100, 3600000));
  app.add_option("--log-level", log_level, "debug, info, warn or error ($HAMI_LOG_LEVEL)");
  CLI11_PARSE(app, argc, argv);
  if (!log_level.empty()) {
    if (hami::Status s = hami::log::SetLevel(std::string_view(log_level)); !s.ok()) {
      hami::log::Error("{}", s.ToString());
      return 2;
    }
  }
  opts.active_window = std::chrono::milliseconds(window_ms);

  std::unique_ptr<hami::gpu::Backend> gpus;
  if (!no_nvml) {
    auto b = hami::gpu::OpenNvml(nvml_lib);
    if (!b.ok()) {
      hami::log::Error("{} (use --no-nvml to run without host metrics)", b.status().ToString());
      return 1;
    }
    gpus = std::move(*b);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  mon::Collector collector(opts, gpus.get());
  mon::MetricsServer server(&collector);
  if (hami::Status s = server.Start(host, port); !s.ok()) {
    hami::log::Error("{}", s.ToString());
    return 1;
  }
  hami::log::Info("serving /metrics on {}:{}", host, server.port());
  timespec ts{interval_ms / 1000, (interval_ms % 1000) * 1000000L};
  std::string last_error;
  while (true) {
    if (hami::Status s = collector.WriteContentionFiles(); !s.ok() && s.message() != last_error) {
      last_error = s.message();
      hami::log::Warn("{}", s.ToString());
    }
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  server.Stop();
  return 0;
}
