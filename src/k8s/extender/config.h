// hami-scheduler's configuration: command-line flags (HAMi's names where they exist) and the
// device ConfigMap's device-config.yaml (`nvidia:` section and `nodeconfig`, SPEC 2.7), turned
// into the options of the extender, the webhook and the HTTP server.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "k8s/client/client_config.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/webhook.h"

namespace hami::k8s {

struct SchedulerFlags {
  std::string http_bind = "0.0.0.0:443";  // --http_bind host:port
  std::string cert_file, key_file;        // TLS when both are set
  std::string kubeconfig;                 // empty: $KUBECONFIG, in-cluster, ~/.kube/config
  std::string device_config_file;         // device-config.yaml
  std::string scheduler_name = "hami-scheduler";
  std::string node_scheduler_policy = "binpack";
  std::string gpu_scheduler_policy = "spread";
  std::optional<int64_t> default_mem, default_cores, default_gpu;  // override the file
  bool single_node_filter = false;
  int bind_wait_timeout_ms = 20000;
  int allocate_timeout_ms = 60000;
  double kube_qps = 200;
  int kube_burst = 400;
  int threads = 64;
  bool record_events = true;
  bool quotas = true;  // --quotas: enforce limits.<resource> of ResourceQuota objects
};

struct SchedulerConfig {
  ExtenderOptions extender;
  WebhookOptions webhook;
  ClientConfig client;  // qps/burst only; server and credentials come from ResolveClientConfig
  std::string host;
  int port = 443;
  std::string cert_file, key_file;
  int threads = 64;
};

// Parses argv into flags (CLI11). Returns nullopt with `exit_code` set when the program should
// exit (--help: 0, bad flags: 2), having printed the reason.
std::optional<SchedulerFlags> ParseFlags(int argc, char** argv, int& exit_code);

// Flags + device-config.yaml text ("" when there is no file) -> configuration. Errors:
// kInvalidArgument naming the flag or key and the bad value.
StatusOr<SchedulerConfig> BuildConfig(const SchedulerFlags& flags, const std::string& yaml_text);
// As above, reading flags.device_config_file (kNotFound when it cannot be read).
StatusOr<SchedulerConfig> LoadConfig(const SchedulerFlags& flags);

}  // namespace hami::k8s
