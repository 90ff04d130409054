// How to reach and authenticate to the API server: from a kubeconfig file (current or named
// context; server, CA, client certificate/key or bearer token, inline *-data or file paths) or
// from the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT and
// /var/run/secrets/kubernetes.io/serviceaccount).
#pragma once

#include <string>

#include "common/status.h"

namespace hami::k8s {

struct ClientConfig {
  std::string server;  // "https://10.0.0.1:6443" or "http://127.0.0.1:8080"
  std::string ca_pem;  // PEM bundle; empty: system default trust
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // bearer token
  std::string token_file;  // re-read periodically (projected tokens rotate)
  std::string default_namespace = "default";
  double qps = 50;  // client-side rate limit; <= 0 disables
  int burst = 100;
  int timeout_seconds = 30;  // per non-watch request
  std::string user_agent = "hami-cpp";
};

// Errors: kNotFound (no such file or context), kInvalidArgument naming the bad field.
StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");
// Parses kubeconfig YAML text; relative file paths are resolved against `base_dir`.
StatusOr<ClientConfig> ParseKubeconfig(const std::string& yaml, const std::string& base_dir,
                                       const std::string& context = "");
// `sa_dir` is the service-account directory (overridable for tests).
// Errors: kFailedPrecondition when not running in a cluster.
StatusOr<ClientConfig> InClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
// kubeconfig path given, else $KUBECONFIG, else in-cluster, else ~/.kube/config.
StatusOr<ClientConfig> ResolveClientConfig(const std::string& kubeconfig_path);

// Whole file (at most 4 MiB, links followed, never a FIFO). Errors: as common::ReadFileBounded.
StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace hami::k8s
