// hami-device-plugin's command line (cli.h).
#include "deviceplugin/cli.h"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <memory>

#include "common/log.h"
#include "deviceplugin/config.h"
#include "deviceplugin/kube_adapter.h"
#include "deviceplugin/offline.h"
#include "gpu/nvml.h"

namespace hami::deviceplugin {
namespace {

// Flags of HAMi's device plugin (and the NVIDIA plugin it embeds) that change nothing here:
// accepted so HAMi's chart arguments work, and logged. Value flags, then boolean flags.
const char* const kHamiValueFlags[] = {
    "--driver-root",           "--nvidia-driver-root",    "--dev-root",
    "--nvidia-dev-root",       "--device-list-strategy",  "--device-id-strategy",
    "--cdi-annotation-prefix", "--nvidia-cdi-hook-path",  "--nvidia-ctk-path",
    "--driver-root-ctr-path",  "--container-driver-root", "--mps-root",
    "--device-discovery-strategy", "--imex-channel-ids"};
const char* const kHamiBoolFlags[] = {"--fail-on-init-error", "--pass-device-specs",
                                      "--gds-enabled",        "--mofed-enabled",
                                      "--gdrcopy-enabled",    "--imex-required"};

void AddOwnFlags(CLI::App& app, PluginFlags& f) {
  app.add_option("--config,--config-file", f.config_path,
                 "device-config.yaml (section nvidia:, nodeconfig:); --config-file is HAMi's name");
  app.add_option("--node-config", f.node_config_path, "JSON/YAML {\"nodeconfig\": [...]}");
  app.add_option("--node-name", f.opts.node_name, "this node (default: $NODE_NAME)");
  app.add_option("--socket-dir", f.opts.socket_dir, "kubelet device plugin directory")
      ->capture_default_str();
  app.add_option("--socket-name", f.opts.socket_name, "this plugin's socket")
      ->capture_default_str();
  app.add_option("--hook-path", f.opts.hook_path, "host hook path (global.gpuHookPath)")
      ->capture_default_str();
  app.add_option("--nvml-lib", f.nvml_lib, "NVML library to dlopen")->capture_default_str();
  app.add_option("--vgpu-lib-source", f.lib_source,
                 "libvgpu.so to install into <hook-path>/vgpu/ at start");
  app.add_option("--device-split-count", f.split, "overrides nvidia.deviceSplitCount");
  app.add_option("--device-memory-scaling", f.mem_scaling, "overrides nvidia.deviceMemoryScaling");
  app.add_option("--device-core-scaling,--device-cores-scaling", f.core_scaling,
                 "overrides nvidia.deviceCoreScaling (--device-cores-scaling: HAMi's name)");
  app.add_option("--gpu-core-policy", f.core_policy, "overrides nvidia.gpuCorePolicy");
  app.add_option("--disable-core-limit", f.disable_core_limit,
                 "overrides nvidia.disableCoreLimit (true|false)")
      ->expected(0, 1)
      ->default_str("true");
  app.add_option("--resource-name", f.resource_name, "overrides nvidia.resourceCountName");
  app.add_option("--register-format", f.opts.register_format,
                 "node register annotation: json (HAMi v2.8+) or text (HAMi <= v2.7 schedulers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "text"}));
  app.add_option("--mig-strategy", f.mig_strategy, "HAMi's MIG strategy: none | single | mixed")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "single", "mixed"}));
  app.add_option("--annotate-interval", f.annotate_s, "seconds between node annotation refreshes")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--kubeconfig", f.kubeconfig,
                 "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--log-level", f.log_level, "debug, info, warn or error ($HAMI_LOG_LEVEL)");
  app.add_flag("--print-devices", f.print_devices,
               "print the GPUs found and the node annotation, then exit");
  app.add_option("--simulate-pod", f.simulate_pod,
                 "serve Allocate for this pod JSON (kubectl get pod -o json) against an "
                 "in-memory API, print the responses, then exit");
}

// HAMi's flags that change nothing here; their values are kept for the start-up log.
void AddHamiFlags(CLI::App& app, std::vector<std::pair<std::string, std::string>>& v,
                  std::string& kubelet_socket) {
  v.reserve(std::size(kHamiValueFlags) + std::size(kHamiBoolFlags));
  for (const char* name : kHamiValueFlags) {
    v.emplace_back(name, "");
    app.add_option(name, v.back().second, "HAMi flag, accepted and ignored")->group("HAMi");
  }
  for (const char* name : kHamiBoolFlags) {
    v.emplace_back(name, "");
    app.add_option(name, v.back().second, "HAMi flag, accepted and ignored")
        ->expected(0, 1)
        ->default_str("true")
        ->group("HAMi");
  }
  // kubelet's socket: its directory is where this plugin serves (--socket-dir).
  app.add_option("--kubelet-socket", kubelet_socket, "HAMi's kubelet socket path")->group("HAMi");
}

}  // namespace

std::optional<PluginFlags> ParseFlags(int argc, char** argv, int& exit_code) {
  PluginFlags f;
  if (const char* n = std::getenv("NODE_NAME")) f.opts.node_name = n;
  if (const char* h = std::getenv("HOOK_PATH")) f.opts.hook_path = h;
  if (const char* c = std::getenv("CONFIG_FILE")) f.config_path = c;  // HAMi's env name
  if (const char* m = std::getenv("MIG_STRATEGY")) f.mig_strategy = m;
  CLI::App app{"HAMi device plugin: advertises GPU slices to kubelet and serves Allocate"};
  AddOwnFlags(app, f);
  std::vector<std::pair<std::string, std::string>> hami;
  std::string kubelet_socket;
  AddHamiFlags(app, hami, kubelet_socket);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e) == 0 ? 0 : 2;
    return std::nullopt;
  }
  for (const auto& [name, value] : hami) {
    if (app.count(name) > 0) f.ignored_hami_flags.push_back(name + "=" + value);
  }
  if (!kubelet_socket.empty()) {
    const auto slash = kubelet_socket.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      f.opts.socket_dir = kubelet_socket.substr(0, slash);
      f.opts.kubelet_socket_name = kubelet_socket.substr(slash + 1);
    }
  }
  return f;
}

namespace {

StatusOr<PluginConfig> LoadConfig(const PluginFlags& f) {
  PluginConfig config;
  if (!f.config_path.empty()) {
    auto text = ReadFile(f.config_path);
    if (!text.ok()) return text.status();
    auto parsed = ParsePluginConfig(*text);
    if (!parsed.ok()) return InvalidArgument(f.config_path + ": " + parsed.status().message());
    config = std::move(*parsed);
  }
  if (!f.node_config_path.empty()) {
    auto text = ReadFile(f.node_config_path);
    if (!text.ok()) return text.status();
    if (Status s = ParseNodeConfigs(*text, config); !s.ok()) {
      return InvalidArgument(f.node_config_path + ": " + s.message());
    }
  }
  if (f.split) config.nvidia.device_split_count = *f.split;
  if (f.mem_scaling) config.nvidia.device_memory_scaling = *f.mem_scaling;
  if (f.core_scaling) config.nvidia.device_core_scaling = *f.core_scaling;
  if (f.core_policy) config.nvidia.gpu_core_policy = *f.core_policy;
  if (f.disable_core_limit) config.nvidia.disable_core_limit = *f.disable_core_limit;
  if (f.resource_name) config.nvidia.resource_count_name = *f.resource_name;
  if (Status s = config.Validate(); !s.ok()) {
    return InvalidArgument(s.message() + " (after command-line overrides)");
  }
  return config;
}

}  // namespace

StatusOr<PluginServerOptions> BuildOptions(const PluginFlags& f) {
  PluginServerOptions opts = f.opts;
  const bool offline = f.print_devices || !f.simulate_pod.empty();
  if (offline && opts.node_name.empty()) opts.node_name = "local";
  auto config = LoadConfig(f);
  if (!config.ok()) return config.status();
  if (opts.node_name.empty()) return InvalidArgument("--node-name or $NODE_NAME is required");
  opts.config = ResolveForNode(*config, opts.node_name);
  opts.resource_name = opts.config.nvidia.resource_count_name;
  opts.annotate_interval = std::chrono::seconds(f.annotate_s);
  return opts;
}

namespace {

int RunOffline(const PluginFlags& f, const PluginServerOptions& opts, gpu::Backend& gpus,
               std::ostream& out) {
  if (f.print_devices) {
    if (Status s = PrintDevices(opts, gpus, out); !s.ok()) {
      log::Error("{}", s.ToString());
      return 1;
    }
  }
  if (f.simulate_pod.empty()) return 0;
  auto text = ReadFile(f.simulate_pod);
  Status s = text.ok() ? SimulatePod(opts, gpus, *text, out) : text.status();
  if (!s.ok()) {
    log::Error("{}: {}", f.simulate_pod, s.ToString());
    return 1;
  }
  return 0;
}

int Serve(const PluginFlags& f, const PluginServerOptions& opts, gpu::Backend& gpus) {
  auto kube = ConnectKube(f.kubeconfig);
  if (!kube.ok()) {
    log::Error("{}", kube.status().ToString());
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts
  PluginServer server(opts, &gpus, kube->get());
  if (Status s = server.Start(); !s.ok()) {
    log::Error("{}", s.ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("signal {}, stopping", sig);
  server.Stop();
  return 0;
}

}  // namespace

int Run(const PluginFlags& f, std::ostream& out) {
  if (!f.log_level.empty()) {
    if (Status s = log::SetLevel(std::string_view(f.log_level)); !s.ok()) {
      log::Error("--log-level: {}", s.ToString());
      return 2;
    }
  }
  for (const auto& flag : f.ignored_hami_flags) {
    log::Info("HAMi flag {} accepted; it has no effect here", flag);
  }
  if (f.mig_strategy != "none") {
    log::Warn("--mig-strategy={}: MIG devices are not advertised by this plugin; GPUs are shared "
              "as hami-core slices", f.mig_strategy);
  }
  auto opts = BuildOptions(f);
  if (!opts.ok()) {
    log::Error("{}", opts.status().ToString());
    return 2;
  }
  const bool offline = f.print_devices || !f.simulate_pod.empty();
  if (!(offline && f.simulate_pod.empty())) {
    if (Status s = PrepareHookDir(opts->hook_path, f.lib_source); !s.ok()) {
      log::Error("{}", s.ToString());
      return 1;
    }
  }
  auto gpus = gpu::OpenNvml(f.nvml_lib);
  if (!gpus.ok()) {
    log::Error("{}", gpus.status().ToString());
    return 1;
  }
  if (offline) return RunOffline(f, *opts, **gpus, out);
  return Serve(f, *opts, **gpus);
}

}  // namespace hami::deviceplugin
