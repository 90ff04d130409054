// Offline modes of the device plugin (offline.h).
#include "deviceplugin/offline.h"

#include <nlohmann/json.hpp>

#include "deviceplugin/fake_kube_api.h"
#include "deviceplugin/kube_adapter.h"

namespace hami::deviceplugin {
namespace {

StatusOr<std::vector<NodeGpu>> NodeGpus(const PluginServerOptions& opts, gpu::Backend& gpus) {
  auto list = gpus.ListGpus();
  if (!list.ok()) return list.status();
  return FilterGpus(*list, opts.config);
}

nlohmann::json ResponseJson(const std::string& container, const ContainerResponse& r) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : r.mounts) {
    mounts.push_back(
        {{"containerPath", m.container_path}, {"hostPath", m.host_path}, {"readOnly", m.read_only}});
  }
  return {{"container", container}, {"envs", r.envs}, {"mounts", mounts}};
}

}  // namespace

Status PrintDevices(const PluginServerOptions& opts, gpu::Backend& gpus, std::ostream& out) {
  auto node_gpus = NodeGpus(opts, gpus);
  if (!node_gpus.ok()) return node_gpus.status();
  for (const auto& g : *node_gpus) {
    out << g.info.index << " " << g.info.uuid << " \"" << g.info.name << "\" "
        << (g.info.memory_bytes >> 20) << " MiB numa " << g.info.numa << "\n";
  }
  out << kRegisterAnnotation << ": " << EncodeRegisterAnnotation(*node_gpus, opts.config, opts.register_format)
      << "\n";
  return Status::Ok();
}

Status SimulatePod(const PluginServerOptions& opts, gpu::Backend& gpus,
                   const std::string& pod_json, std::ostream& out) {
  auto node_gpus = NodeGpus(opts, gpus);
  if (!node_gpus.ok()) return node_gpus.status();
  auto pods = ParsePodList("{\"items\": [" + pod_json + "]}");
  if (!pods.ok() || pods->size() != 1) return InvalidArgument("not a pod object");
  PodInfo pod = (*pods)[0];
  pod.node_name = opts.node_name;
  pod.annotations[kVgpuNodeAnnotation] = opts.node_name;
  pod.annotations[kBindPhaseAnnotation] = "allocating";
  auto it = pod.annotations.find(kToAllocateAnnotation);
  auto segs = ParsePodDevices(it == pod.annotations.end() ? "" : it->second);
  if (!segs.ok()) return segs.status();
  FakeKubeApi kube;  // in memory: nothing leaves this process
  kube.AddPod(pod);
  AllocatorOptions a;
  a.node_name = opts.node_name;
  a.hook_path = opts.hook_path;
  a.config = opts.config;
  for (const auto& g : *node_gpus) a.node_uuids.push_back(g.info.uuid);
  Allocator alloc(a, &kube);
  nlohmann::json result = nlohmann::json::array();
  for (std::size_t i = 0; i < segs->size() && i < pod.containers.size(); ++i) {
    if ((*segs)[i].empty()) continue;
    std::vector<std::string> ids;
    for (std::size_t d = 0; d < (*segs)[i].size(); ++d) {
      ids.push_back(VirtualId((*segs)[i][d].uuid, static_cast<int>(d)));
    }
    auto r = alloc.AllocateContainer(ids);
    if (!r.ok()) return Status(r.status().code(), "Allocate refused: " + r.status().message());
    result.push_back(ResponseJson(pod.containers[i].name, *r));
  }
  out << result.dump(2) << "\n";
  return Status::Ok();
}

}  // namespace hami::deviceplugin
