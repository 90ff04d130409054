// KubeApi over the project's Kubernetes client (src/k8s/client): the pods bound to this node
// and annotation merge-patches (resourceVersion-guarded for pods). Also the pod JSON parsing
// and host hook-directory set-up the daemon needs.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "deviceplugin/kube_api.h"
#include "k8s/client/kube_client.h"

namespace hami::deviceplugin {

std::unique_ptr<KubeApi> AdaptKubeClient(std::unique_ptr<k8s::KubeClient> client);

// Connects with a kubeconfig (empty: $KUBECONFIG, in-cluster, ~/.kube/config).
// Errors: those of k8s::ResolveClientConfig and HttpKubeClient::Create.
StatusOr<std::unique_ptr<KubeApi>> ConnectKube(const std::string& kubeconfig);

// One pod object / a PodList body (exposed for tests). Errors: kInvalidArgument.
StatusOr<PodInfo> PodFromJson(const nlohmann::json& pod);
StatusOr<std::vector<PodInfo>> ParsePodList(const std::string& body);

// Installs <hook>/vgpu/ld.so.preload (naming <hook>/vgpu/libvgpu.so) and, when `lib_source`
// is given, copies the library there. Errors: kInternal naming the path.
Status PrepareHookDir(const std::string& hook_path, const std::string& lib_source);

}  // namespace hami::deviceplugin
