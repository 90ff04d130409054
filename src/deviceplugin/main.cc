// hami-device-plugin: flags and configuration, then the PluginServer until SIGTERM.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "common/log.h"

#include <nlohmann/json.hpp>

#include "deviceplugin/config.h"
#include "deviceplugin/fake_kube_api.h"
#include "deviceplugin/kube_adapter.h"
#include "gpu/nvml.h"
#include "deviceplugin/plugin_server.h"

namespace dp = hami::deviceplugin;

namespace {

// --print-devices / --simulate-pod: the plugin's view of this machine without kubelet or a
// cluster (used to check a real GPU by hand, docs/node-agents.md).
int RunOffline(const dp::PluginServerOptions& opts, hami::gpu::Backend* gpus, bool print_devices,
               const std::string& pod_file) {
  auto list = gpus->ListGpus();
  if (!list.ok()) {
    hami::log::Error("{}", list.status().ToString());
    return 1;
  }
  auto node_gpus = dp::FilterGpus(*list, opts.config);
  if (print_devices) {
    for (const auto& g : node_gpus) {
      std::cout << g.info.index << " " << g.info.uuid << " \"" << g.info.name << "\" "
                << (g.info.memory_bytes >> 20) << " MiB numa " << g.info.numa << "\n";
    }
    std::cout << dp::kRegisterAnnotation << ": "
              << dp::EncodeRegisterAnnotation(node_gpus, opts.config) << "\n";
  }
  if (pod_file.empty()) return 0;
  auto text = dp::ReadFile(pod_file);
  if (!text.ok()) {
    hami::log::Error("{}", text.status().ToString());
    return 1;
  }
  auto pods = dp::ParsePodList("{\"items\": [" + *text + "]}");
  if (!pods.ok() || pods->size() != 1) {
    hami::log::Error("{}: not a pod object", pod_file);
    return 1;
  }
  dp::PodInfo pod = (*pods)[0];
  pod.node_name = opts.node_name;
  pod.annotations[dp::kVgpuNodeAnnotation] = opts.node_name;
  pod.annotations[dp::kBindPhaseAnnotation] = "allocating";
  auto it = pod.annotations.find(dp::kToAllocateAnnotation);
  auto segs = dp::ParsePodDevices(it == pod.annotations.end() ? "" : it->second);
  if (!segs.ok()) {
    hami::log::Error("{}", segs.status().ToString());
    return 1;
  }
  dp::FakeKubeApi kube;
  kube.AddPod(pod);
  dp::AllocatorOptions a;
  a.node_name = opts.node_name;
  a.hook_path = opts.hook_path;
  a.config = opts.config;
  for (const auto& g : node_gpus) a.node_uuids.push_back(g.info.uuid);
  dp::Allocator alloc(a, &kube);
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < segs->size(); ++i) {
    if ((*segs)[i].empty()) continue;
    std::vector<std::string> ids;
    for (std::size_t d = 0; d < (*segs)[i].size(); ++d) {
      ids.push_back(dp::VirtualId((*segs)[i][d].uuid, static_cast<int>(d)));
    }
    auto r = alloc.AllocateContainer(ids);
    if (!r.ok()) {
      hami::log::Error("Allocate refused: {}", r.status().ToString());
      return 1;
    }
    nlohmann::json mounts = nlohmann::json::array();
    for (const auto& m : r->mounts) {
      mounts.push_back({{"containerPath", m.container_path},
                        {"hostPath", m.host_path},
                        {"readOnly", m.read_only}});
    }
    out.push_back({{"container", pod.containers[i].name}, {"envs", r->envs}, {"mounts", mounts}});
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  hami::log::Init("hami-device-plugin");
  CLI::App app{"HAMi device plugin: advertises GPU slices to kubelet and serves Allocate"};
  std::string config_path, node_config_path, nvml_lib = "libnvidia-ml.so.1", lib_source;
  dp::PluginServerOptions opts;
  if (const char* n = std::getenv("NODE_NAME")) opts.node_name = n;
  if (const char* h = std::getenv("HOOK_PATH")) opts.hook_path = h;
  std::optional<int> split;
  std::optional<double> mem_scaling, core_scaling;
  std::optional<std::string> core_policy;
  int annotate_s = 30;
  app.add_option("--config", config_path, "device-config.yaml (section nvidia:, nodeconfig:)");
  app.add_option("--node-config", node_config_path, "JSON/YAML {\"nodeconfig\": [...]}");
  app.add_option("--node-name", opts.node_name, "this node (default: $NODE_NAME)");
  app.add_option("--socket-dir", opts.socket_dir, "kubelet device plugin directory")
      ->capture_default_str();
  app.add_option("--socket-name", opts.socket_name, "this plugin's socket")->capture_default_str();
  app.add_option("--hook-path", opts.hook_path, "host hook path (global.gpuHookPath)")
      ->capture_default_str();
  app.add_option("--nvml-lib", nvml_lib, "NVML library to dlopen")->capture_default_str();
  app.add_option("--vgpu-lib-source", lib_source,
                 "libvgpu.so to install into <hook-path>/vgpu/ at start");
  app.add_option("--device-split-count", split, "overrides nvidia.deviceSplitCount");
  app.add_option("--device-memory-scaling", mem_scaling, "overrides nvidia.deviceMemoryScaling");
  app.add_option("--device-core-scaling", core_scaling, "overrides nvidia.deviceCoreScaling");
  app.add_option("--gpu-core-policy", core_policy, "overrides nvidia.gpuCorePolicy");
  app.add_option("--annotate-interval", annotate_s, "seconds between node annotation refreshes")
      ->capture_default_str();
  std::string kubeconfig;
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  bool print_devices = false;
  std::string simulate_pod;
  app.add_flag("--print-devices", print_devices,
               "print the GPUs found and the node annotation, then exit");
  app.add_option("--simulate-pod", simulate_pod,
                 "serve Allocate for this pod JSON (kubectl get pod -o json) against an "
                 "in-memory API, print the responses, then exit");
  std::string log_level;
  app.add_option("--log-level", log_level, "debug, info, warn or error ($HAMI_LOG_LEVEL)");
  CLI11_PARSE(app, argc, argv);
  if (!log_level.empty()) {
    if (hami::Status s = hami::log::SetLevel(std::string_view(log_level)); !s.ok()) {
      hami::log::Error("{}", s.ToString());
      return 2;
    }
  }
  const bool offline = print_devices || !simulate_pod.empty();
  if (offline && opts.node_name.empty()) opts.node_name = "local";

  dp::PluginConfig config;
  if (!config_path.empty()) {
    auto text = dp::ReadFile(config_path);
    auto parsed =
        text.ok() ? dp::ParsePluginConfig(*text) : hami::StatusOr<dp::PluginConfig>(text.status());
    if (!parsed.ok()) {
      hami::log::Error("{}: {}", config_path, parsed.status().ToString());
      return 2;
    }
    config = std::move(*parsed);
  }
  if (!node_config_path.empty()) {
    auto text = dp::ReadFile(node_config_path);
    hami::Status s = text.ok() ? dp::ParseNodeConfigs(*text, config) : text.status();
    if (!s.ok()) {
      hami::log::Error("{}: {}", node_config_path, s.ToString());
      return 2;
    }
  }
  if (split) config.nvidia.device_split_count = *split;
  if (mem_scaling) config.nvidia.device_memory_scaling = *mem_scaling;
  if (core_scaling) config.nvidia.device_core_scaling = *core_scaling;
  if (core_policy) config.nvidia.gpu_core_policy = *core_policy;
  if (config.nvidia.device_split_count < 1 || config.nvidia.device_memory_scaling <= 0 ||
      config.nvidia.device_core_scaling <= 0 ||
      (config.nvidia.gpu_core_policy != "default" && config.nvidia.gpu_core_policy != "force" &&
       config.nvidia.gpu_core_policy != "disable")) {
    hami::log::Error("invalid split count, scaling or core policy flag");
    return 2;
  }
  if (opts.node_name.empty()) {
    hami::log::Error("--node-name or $NODE_NAME is required");
    return 2;
  }
  opts.config = dp::ResolveForNode(config, opts.node_name);
  opts.resource_name = opts.config.nvidia.resource_count_name;
  opts.annotate_interval = std::chrono::seconds(annotate_s);

  hami::Status prepared = simulate_pod.empty() && print_devices
                              ? hami::Status::Ok()
                              : dp::PrepareHookDir(opts.hook_path, lib_source);
  if (hami::Status s = prepared; !s.ok()) {
    hami::log::Error("{}", s.ToString());
    return 1;
  }
  auto gpus = hami::gpu::OpenNvml(nvml_lib);
  if (!gpus.ok()) {
    hami::log::Error("{}", gpus.status().ToString());
    return 1;
  }
  if (offline) return RunOffline(opts, gpus->get(), print_devices, simulate_pod);
  auto kube = dp::ConnectKube(kubeconfig);
  if (!kube.ok()) {
    hami::log::Error("{}", kube.status().ToString());
    return 1;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

  dp::PluginServer server(opts, gpus->get(), kube->get());
  if (hami::Status s = server.Start(); !s.ok()) {
    hami::log::Error("{}", s.ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  hami::log::Info("signal {}, stopping", sig);
  server.Stop();
  return 0;
}
