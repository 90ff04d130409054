// API objects shaped like the Kubernetes API's (core/v1 Pod and Node, AdmissionReview v1) for
// tests and benchmarks of the control plane.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hami::k8s::testing {

using Json = nlohmann::json;

struct FakeGpu {
  std::string uuid;
  std::string type = "NVIDIA-NVIDIA A100-SXM4-80GB";
  int64_t memory_mib = 81920;
  int cores = 100;
  int split = 10;
  int numa = 0;
  bool healthy = true;
};

// GPUs GPU-<node>-0..n-1 of one type.
std::vector<FakeGpu> MakeGpus(const std::string& node, int n, int64_t memory_mib = 81920);
// The JSON `hami.io/node-nvidia-register` value for these GPUs.
std::string RegisterAnnotation(const std::vector<FakeGpu>& gpus);
// A Ready node labelled gpu=on with the register annotation (none when `gpus` is empty).
Json MakeNode(const std::string& name, const std::vector<FakeGpu>& gpus);

struct FakeContainer {
  std::string name = "main";
  std::map<std::string, std::string> limits;  // resource name -> quantity string
  bool privileged = false;
};

// A pending pod (no nodeName) with these containers.
Json MakePod(const std::string& ns, const std::string& name,
             const std::vector<FakeContainer>& containers,
             const std::vector<FakeContainer>& init_containers = {},
             const std::map<std::string, std::string>& annotations = {});
// A pod asking for `count` GPUs with `mem` MiB and `cores` % (0 = not given) in one container.
Json MakeGpuPod(const std::string& ns, const std::string& name, int count, int64_t mem,
                int cores = 0);

// An AdmissionReview v1 request for CREATE of `pod`.
Json MakeAdmissionReview(const Json& pod, const std::string& uid = "705ab4f5-6393-11e8-b7cc");

}  // namespace hami::k8s::testing
