// KubeApi over the API server's REST interface (in-cluster service account by default).
// Small on purpose: list this node's pods, merge-patch annotations. When src/k8s/client is
// complete this becomes an adapter over it.
#pragma once

#include <memory>
#include <string>

#include "deviceplugin/kube_api.h"

namespace hami::deviceplugin {

struct KubeConnection {
  std::string server;  // "https://host:port" or "http://..."; empty: in-cluster environment
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};

// Errors: kFailedPrecondition when no server is given and the in-cluster environment
// (KUBERNETES_SERVICE_HOST/PORT) is missing.
StatusOr<std::unique_ptr<KubeApi>> ConnectKube(const KubeConnection& conn);

// Parses a PodList JSON body (exposed for tests). Errors: kInvalidArgument.
StatusOr<std::vector<PodInfo>> ParsePodList(const std::string& body);

// Installs <hook>/vgpu/ld.so.preload (naming <hook>/vgpu/libvgpu.so) and, when `lib_source`
// is given, copies the library there. Errors: kInternal naming the path.
Status PrepareHookDir(const std::string& hook_path, const std::string& lib_source);

}  // namespace hami::deviceplugin
