// hami-scheduler's configuration: command-line flags (HAMi's names where they exist) and the
// device ConfigMap's device-config.yaml (`nvidia:` section and `nodeconfig`, SPEC 2.7), turned
// into the options of the extender, the webhook and the HTTP server.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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
  int kube_timeout_s = 30;
  int max_connections = 512;  // --max-connections (--threads: its old name)
  int http_request_timeout_ms = 10000;
  int64_t http_max_body_bytes = 16 << 20;
  bool record_events = true;
  // HAMi's node lock at Bind (docs/bind-allocate.md): auto | hami | off, and its expiry as a
  // Go duration ("5m", "90s"); the expiry defaults to $HAMI_NODELOCK_EXPIRE as in HAMi.
  std::string node_lock = "auto";
  std::string node_lock_expire = "5m";
  bool quotas = true;  // --quotas: enforce limits.<resource> of ResourceQuota objects
  // HAMi's chart arguments (docs/hami-compatibility.md).
  std::string metrics_bind_address;  // "" = metrics only on the main port
  bool debug = false;                // --debug, or -v >= 4
  int verbosity = 0;                 // -v / --v (klog)
  bool leader_elect = false;
  bool force_overwrite_default_scheduler = true;  // HAMi's binary: false; its chart: true
  // HAMi flags accepted without effect here, as given ("--profiling=true"), for the log.
  std::vector<std::string> ignored_hami_flags;
};

struct SchedulerConfig {
  ExtenderOptions extender;
  WebhookOptions webhook;
  ClientConfig client;  // qps/burst only; server and credentials come from ResolveClientConfig
  std::string host;
  int port = 443;
  std::string cert_file, key_file;
  int max_connections = 512;
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_body_bytes = 16 << 20;
  // --metrics-bind-address split; metrics_port < 0: no separate metrics server.
  std::string metrics_host;
  int metrics_port = -1;
};

// Parses argv into flags (CLI11). HAMi's scheduler flags are accepted (those without an
// equivalent here land in ignored_hami_flags); any other unknown flag is an error. Returns
// nullopt with `exit_code` set when the program should exit (--help: 0, bad flags: 2), having
// printed the reason.
std::optional<SchedulerFlags> ParseFlags(int argc, char** argv, int& exit_code);

// Flags + device-config.yaml text ("" when there is no file) -> configuration. Errors:
// kInvalidArgument naming the flag or key and the bad value (out of range, not finite, not a
// host:port). Never throws.
StatusOr<SchedulerConfig> BuildConfig(const SchedulerFlags& flags, const std::string& yaml_text);
// As above, reading flags.device_config_file (kNotFound when it cannot be read).
StatusOr<SchedulerConfig> LoadConfig(const SchedulerFlags& flags);

// A Go time.ParseDuration string ("5m", "1h30m", "1.5s", "300ms"; units ns us µs ms s m h).
// Errors: kInvalidArgument naming `flag` and the text.
StatusOr<std::chrono::nanoseconds> ParseGoDuration(const std::string& flag,
                                                   const std::string& text);

// "host:port", "[v6]:port" or ":port" (host "0.0.0.0"). Errors: kInvalidArgument naming `flag`.
Status ParseHostPort(const std::string& flag, const std::string& text, std::string* host,
                     int* port);

}  // namespace hami::k8s
