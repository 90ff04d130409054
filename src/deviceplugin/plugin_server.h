// The kubelet-facing device plugin: serves DevicePlugin v1beta1 on a unix socket, registers
// with kubelet (again whenever kubelet restarts), follows GPU health, and keeps the node's
// `hami.io/node-nvidia-register` annotation current. gRPC stays inside plugin_server.cc.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "deviceplugin/allocator.h"
#include "deviceplugin/devices.h"
#include "gpu/gpu.h"
#include "deviceplugin/kube_api.h"

namespace hami::deviceplugin {

struct PluginServerOptions {
  std::string socket_dir = "/var/lib/kubelet/device-plugins";
  std::string socket_name = "hami-nvidia.sock";
  std::string kubelet_socket_name = "kubelet.sock";
  std::string resource_name = "nvidia.com/gpu";
  std::string node_name;
  std::string hook_path = "/usr/local";
  NodeConfig config;
  // hami.io/node-nvidia-register: "json" (HAMi v2.8+ and this project) or "text" (HAMi <= v2.7).
  std::string register_format = "json";
  std::chrono::milliseconds watch_interval{1000};      // kubelet.sock / own socket check
  std::chrono::milliseconds annotate_interval{30000};  // node annotation refresh
  std::chrono::milliseconds health_wait{1000};         // one NVML event wait
  std::chrono::seconds gc_min_age{300};  // directories of deleted pods go after this long
};

class PluginServer {
 public:
  // `gpus` and `kube` must outlive the server; `kube` may be null (no node annotations,
  // every Allocate fails).
  PluginServer(PluginServerOptions options, gpu::Backend* gpus, KubeApi* kube);
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // Discovers GPUs, starts serving and the background threads. Registration with kubelet
  // happens in the background (kubelet may come later). Errors: kUnavailable when the GPUs
  // cannot be listed or the socket cannot be served.
  Status Start();
  void Stop();

  // Successful Register calls so far (each kubelet restart adds one).
  int registrations() const;
  std::vector<NodeGpu> Gpus() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hami::deviceplugin
