#include "k8s/testing/fixtures.h"

namespace hami::k8s::testing {

std::vector<FakeGpu> MakeGpus(const std::string& node, int n, int64_t memory_mib) {
  std::vector<FakeGpu> out;
  for (int i = 0; i < n; ++i) {
    FakeGpu g;
    g.uuid = "GPU-" + node + "-" + std::to_string(i);
    g.memory_mib = memory_mib;
    g.numa = i < n / 2 ? 0 : 1;
    out.push_back(g);
  }
  return out;
}

std::string RegisterAnnotation(const std::vector<FakeGpu>& gpus) {
  Json list = Json::array();
  int index = 0;
  for (const auto& g : gpus) {
    list.push_back({{"id", g.uuid},
                    {"index", index++},
                    {"count", g.split},
                    {"devmem", g.memory_mib},
                    {"devcore", g.cores},
                    {"type", g.type},
                    {"numa", g.numa},
                    {"mode", "hami-core"},
                    {"health", g.healthy}});
  }
  return list.dump();
}

Json MakeNode(const std::string& name, const std::vector<FakeGpu>& gpus) {
  Json annotations = Json::object();
  if (!gpus.empty()) annotations["hami.io/node-nvidia-register"] = RegisterAnnotation(gpus);
  int slices = 0;
  for (const auto& g : gpus) slices += g.split;
  Json capacity = {{"cpu", "64"}, {"memory", "527951104Ki"}, {"pods", "110"}};
  if (slices > 0) capacity["nvidia.com/gpu"] = std::to_string(slices);
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name},
            {"labels", {{"kubernetes.io/hostname", name}, {"gpu", "on"}}},
            {"annotations", annotations}}},
          {"spec", {{"podCIDR", "10.244.0.0/24"}}},
          {"status",
           {{"capacity", capacity},
            {"allocatable", capacity},
            {"conditions", Json::array({{{"type", "Ready"},
                                         {"status", "True"},
                                         {"reason", "KubeletReady"},
                                         {"message", "kubelet is posting ready status"}}})}}}};
}

static Json ContainerJson(const FakeContainer& c) {
  Json limits = Json::object();
  for (const auto& [k, v] : c.limits) limits[k] = v;
  Json j = {{"name", c.name},
            {"image", "nvidia/cuda:12.4.0-base-ubuntu22.04"},
            {"imagePullPolicy", "IfNotPresent"},
            {"resources", {{"limits", limits}}}};
  if (c.privileged) j["securityContext"] = {{"privileged", true}};
  return j;
}

Json MakePod(const std::string& ns, const std::string& name,
             const std::vector<FakeContainer>& containers,
             const std::vector<FakeContainer>& init_containers,
             const std::map<std::string, std::string>& annotations) {
  Json cs = Json::array();
  for (const auto& c : containers) cs.push_back(ContainerJson(c));
  Json spec = {{"containers", cs},
               {"restartPolicy", "Always"},
               {"schedulerName", "default-scheduler"},
               {"terminationGracePeriodSeconds", 30}};
  if (!init_containers.empty()) {
    Json ic = Json::array();
    for (const auto& c : init_containers) ic.push_back(ContainerJson(c));
    spec["initContainers"] = ic;
  }
  Json md = {{"name", name}, {"namespace", ns}, {"labels", {{"app", name}}}};
  if (!annotations.empty()) md["annotations"] = annotations;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", md},
          {"spec", spec},
          {"status", {{"phase", "Pending"}, {"qosClass", "BestEffort"}}}};
}

Json MakeGpuPod(const std::string& ns, const std::string& name, int count, int64_t mem, int cores) {
  FakeContainer c;
  c.limits["nvidia.com/gpu"] = std::to_string(count);
  if (mem > 0) c.limits["nvidia.com/gpumem"] = std::to_string(mem);
  if (cores > 0) c.limits["nvidia.com/gpucores"] = std::to_string(cores);
  return MakePod(ns, name, {c});
}

Json MakeAdmissionReview(const Json& pod, const std::string& uid) {
  std::string ns = pod["metadata"].value("namespace", "default");
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"requestKind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"requestResource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"name", pod["metadata"].value("name", "")},
            {"namespace", ns},
            {"operation", "CREATE"},
            {"userInfo", {{"username", "admin"}, {"groups", {"system:authenticated"}}}},
            {"object", pod},
            {"oldObject", nullptr},
            {"dryRun", false},
            {"options", {{"apiVersion", "meta.k8s.io/v1"}, {"kind", "CreateOptions"}}}}}};
}

}  // namespace hami::k8s::testing
