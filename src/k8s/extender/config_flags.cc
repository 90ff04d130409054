// hami-scheduler's command line (config.h): this project's flags, HAMi's names for them, and
// HAMi's other chart and klog arguments, accepted so a HAMi deployment's arguments start the
// binary unchanged (docs/hami-compatibility.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "k8s/extender/config.h"

namespace hami::k8s {
namespace {

// HAMi scheduler flags (cmd/scheduler, device flag sets, klog) that have no effect here. Value
// flags take "--name=value" or "--name value"; the bool ones also stand alone.
constexpr const char* kHamiValueFlags[] = {"node-label-selector",
                                           "resource-name",
                                           "resource-mem",
                                           "resource-mem-percentage",
                                           "resource-cores",
                                           "resource-priority",
                                           "log_dir",
                                           "log_file",
                                           "log_file_max_size",
                                           "stderrthreshold",
                                           "vmodule",
                                           "log_backtrace_at",
                                           "leader-elect-resource-name",
                                           "leader-elect-resource-namespace",
                                           "leader-elect-lease-duration",
                                           "leader-elect-renew-deadline",
                                           "leader-elect-retry-period",
                                           "mlu-name",
                                           "mlu-memory",
                                           "mlu-cores",
                                           "dcu-name",
                                           "dcu-memory",
                                           "dcu-cores",
                                           "iluvatar-name",
                                           "iluvatar-memory",
                                           "iluvatar-cores",
                                           "metax-name",
                                           "mthreads-name",
                                           "ascend-name"};
constexpr const char* kHamiBoolFlags[] = {"profiling",        "enable-ascend",  "logtostderr",
                                          "alsologtostderr",  "add_dir_header", "skip_headers",
                                          "skip_log_headers", "one_output",     "legacy-metrics"};

template <std::size_t N>
bool In(const char* const (&list)[N], const std::string& name) {
  return std::any_of(std::begin(list), std::end(list), [&](const char* f) { return name == f; });
}

// Go's flag syntax that CLI11 reads differently: "-v=4" (pflag shorthand with '=').
std::vector<std::string> NormaliseArgs(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-v=", 0) == 0) a = "--v=" + a.substr(3);
    out.push_back(std::move(a));
  }
  return out;
}

// Moves HAMi's no-effect flags out of `args` into f.ignored_hami_flags; what is left must be
// known to CLI11.
void TakeHamiExtras(std::vector<std::string>& args, SchedulerFlags& f) {
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      kept.push_back(a);
      continue;
    }
    std::string name =
        a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    bool has_value = a.find('=') != std::string::npos;
    if (In(kHamiBoolFlags, name)) {
      f.ignored_hami_flags.push_back(a);
    } else if (In(kHamiValueFlags, name)) {
      if (!has_value && i + 1 < args.size()) {
        f.ignored_hami_flags.push_back(a + "=" + args[++i]);
      } else {
        f.ignored_hami_flags.push_back(a);
      }
    } else {
      kept.push_back(a);
    }
  }
  args = std::move(kept);
}

void AddFlags(CLI::App& app, SchedulerFlags& f) {
  app.add_option("--http_bind,--http-bind", f.http_bind, "listen address host:port");
  app.add_option("--cert_file,--cert-file", f.cert_file, "TLS certificate (PEM)");
  app.add_option("--key_file,--key-file", f.key_file, "TLS private key (PEM)");
  app.add_option("--kubeconfig", f.kubeconfig, "kubeconfig file (default: in-cluster)");
  app.add_option("--device-config-file,--device_config_file", f.device_config_file,
                 "device-config.yaml of the device ConfigMap");
  app.add_option("--scheduler-name,--scheduler_name", f.scheduler_name,
                 "schedulerName the webhook sets");
  app.add_option("--node-scheduler-policy", f.node_scheduler_policy, "binpack | spread");
  app.add_option("--gpu-scheduler-policy", f.gpu_scheduler_policy,
                 "binpack | spread (HAMi's topology-aware, mutex, numa are accepted)");
  app.add_option("--default-mem", f.default_mem, "default GPU memory per GPU, MiB (0 = card)");
  app.add_option("--default-cores", f.default_cores, "default GPU cores per GPU, percent");
  app.add_option("--default-gpu", f.default_gpu, "default GPU count when only mem/cores given");
  app.add_flag("--single-node-filter", f.single_node_filter,
               "HAMi-compatible: filter returns only the best node");
  app.add_option("--bind-wait-timeout-ms", f.bind_wait_timeout_ms,
                 "how long a bind waits for its node's turn");
  app.add_option("--allocate-timeout-ms", f.allocate_timeout_ms,
                 "mark a pod failed when the device plugin has not allocated it by then");
  app.add_option("--node-lock", f.node_lock,
                 "HAMi's node lock hami.io/mutex.lock at bind: auto (nodes with HAMi's device "
                 "plugin) | hami (every node) | off");
  app.add_option("--node-lock-expire", f.node_lock_expire,
                 "a HAMi node lock older than this is broken (Go duration; default "
                 "$HAMI_NODELOCK_EXPIRE or 5m)");
  app.add_option("--kube-api-qps,--kube-qps", f.kube_qps, "client-side API rate limit");
  app.add_option("--kube-api-burst,--kube-burst", f.kube_burst, "client-side API burst");
  app.add_option("--kube-api-timeout,--kube-timeout", f.kube_timeout_s,
                 "seconds per API request (not watches)");
  app.add_option("--max-connections,--threads", f.max_connections,
                 "HTTP connections served at once (one thread each)");
  app.add_option("--http-request-timeout-ms", f.http_request_timeout_ms,
                 "a request's head and body must arrive within this");
  app.add_option("--http-max-body-bytes", f.http_max_body_bytes,
                 "largest filter/prioritize/webhook body");
  app.add_option("--record-events", f.record_events, "record Kubernetes events (true|false)");
  app.add_option("--quotas", f.quotas,
                 "enforce HAMi's GPU quotas from ResourceQuota objects (true|false)");
  app.add_option("--metrics-bind-address", f.metrics_bind_address,
                 "serve /metrics also on this host:port (HAMi: :9395)");
  app.add_flag("--debug", f.debug, "debug logging");
  app.add_option("--v", f.verbosity, "klog verbosity (4 and above: debug logging)");
  app.add_flag("--leader-elect", f.leader_elect, "HAMi: accepted; replicas share nothing");
  app.add_flag("--force-overwrite-default-scheduler", f.force_overwrite_default_scheduler,
               "HAMi: webhook also claims pods of the default scheduler");
}

}  // namespace

std::optional<SchedulerFlags> ParseFlags(int argc, char** argv, int& exit_code) {
  SchedulerFlags f;
  if (const char* e = std::getenv("HAMI_NODELOCK_EXPIRE"); e != nullptr && *e != '\0') {
    f.node_lock_expire = e;  // HAMi's chart sets it from nodeLockExpire
  }
  CLI::App app{"hami-scheduler: kube-scheduler extender and mutating webhook for GPU slices"};
  AddFlags(app, f);
  std::vector<std::string> args = NormaliseArgs(argc, argv);
  TakeHamiExtras(args, f);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    if (exit_code == 0) return std::nullopt;
    exit_code = 2;
    return std::nullopt;
  }
  if (f.verbosity >= 4) f.debug = true;
  return f;
}

}  // namespace hami::k8s
