#include "k8s/extender/config.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "deviceplugin/config.h"

namespace hami::k8s {

std::optional<SchedulerFlags> ParseFlags(int argc, char** argv, int& exit_code) {
  SchedulerFlags f;
  CLI::App app{"hami-scheduler: kube-scheduler extender and mutating webhook for GPU slices"};
  app.add_option("--http_bind,--http-bind", f.http_bind, "listen address host:port");
  app.add_option("--cert_file,--cert-file", f.cert_file, "TLS certificate (PEM)");
  app.add_option("--key_file,--key-file", f.key_file, "TLS private key (PEM)");
  app.add_option("--kubeconfig", f.kubeconfig, "kubeconfig file (default: in-cluster)");
  app.add_option("--device-config-file,--device_config_file", f.device_config_file,
                 "device-config.yaml of the device ConfigMap");
  app.add_option("--scheduler-name,--scheduler_name", f.scheduler_name,
                 "schedulerName the webhook sets");
  app.add_option("--node-scheduler-policy", f.node_scheduler_policy, "binpack | spread");
  app.add_option("--gpu-scheduler-policy", f.gpu_scheduler_policy, "binpack | spread");
  app.add_option("--default-mem", f.default_mem, "default GPU memory per GPU, MiB (0 = card)");
  app.add_option("--default-cores", f.default_cores, "default GPU cores per GPU, percent");
  app.add_option("--default-gpu", f.default_gpu, "default GPU count when only mem/cores given");
  app.add_flag("--single-node-filter", f.single_node_filter,
               "HAMi-compatible: filter returns only the best node");
  app.add_option("--bind-wait-timeout-ms", f.bind_wait_timeout_ms,
                 "how long a bind waits for its node's turn");
  app.add_option("--allocate-timeout-ms", f.allocate_timeout_ms,
                 "mark a pod failed when the device plugin has not allocated it by then");
  app.add_option("--kube-api-qps", f.kube_qps, "client-side API rate limit");
  app.add_option("--kube-api-burst", f.kube_burst, "client-side API burst");
  app.add_option("--threads", f.threads, "HTTP worker threads");
  app.add_option("--record-events", f.record_events, "record Kubernetes events (true|false)");
  app.add_option("--quotas", f.quotas,
                 "enforce HAMi's GPU quotas from ResourceQuota objects (true|false)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    if (exit_code == 0) return std::nullopt;
    exit_code = 2;
    return std::nullopt;
  }
  return f;
}

StatusOr<SchedulerConfig> BuildConfig(const SchedulerFlags& f, const std::string& yaml_text) {
  deviceplugin::PluginConfig pc;
  if (!yaml_text.empty()) {
    auto parsed = deviceplugin::ParsePluginConfig(yaml_text);
    if (!parsed.ok()) return InvalidArgument("device config: " + parsed.status().message());
    pc = std::move(*parsed);
  }
  const auto& nv = pc.nvidia;
  SchedulerConfig c;
  ResourceNames names{nv.resource_count_name, nv.resource_memory_name,
                      nv.resource_memory_percentage_name, nv.resource_core_name,
                      nv.resource_priority_name};
  for (const auto* n :
       {&names.count, &names.memory, &names.memory_percentage, &names.cores, &names.priority}) {
    if (n->empty() || n->find('/') == std::string::npos) {
      return InvalidArgument("device config: resource name \"" + *n +
                             "\" must be a domain-prefixed name like nvidia.com/gpu");
    }
  }
  sched::SchedulerConfig sc;
  sc.default_memory_mib = f.default_mem.value_or(nv.default_memory);
  sc.default_cores = static_cast<int32_t>(f.default_cores.value_or(nv.default_cores));
  sc.default_gpu_num = static_cast<int32_t>(f.default_gpu.value_or(nv.default_gpu_num));
  if (sc.default_memory_mib < 0) return InvalidArgument("--default-mem: must be >= 0");
  if (sc.default_cores < 0 || sc.default_cores > 100) {
    return InvalidArgument("--default-cores: must be 0..100, got " +
                           std::to_string(sc.default_cores));
  }
  if (sc.default_gpu_num < 1 || sc.default_gpu_num > 64) {
    return InvalidArgument("--default-gpu: must be 1..64, got " +
                           std::to_string(sc.default_gpu_num));
  }
  auto np = sched::ParseNodePolicy(f.node_scheduler_policy);
  if (!np.ok()) return InvalidArgument("--node-scheduler-policy: " + np.status().message());
  auto gp = sched::ParseGpuPolicy(f.gpu_scheduler_policy);
  if (!gp.ok()) return InvalidArgument("--gpu-scheduler-policy: " + gp.status().message());
  sc.node_policy = *np;
  sc.gpu_policy = *gp;
  if (f.scheduler_name.empty()) return InvalidArgument("--scheduler-name: must not be empty");
  if (f.bind_wait_timeout_ms < 0 || f.allocate_timeout_ms <= 0) {
    return InvalidArgument("--bind-wait-timeout-ms / --allocate-timeout-ms: must be positive");
  }
  if (f.threads < 2 || f.threads > 4096) return InvalidArgument("--threads: must be 2..4096");
  if (f.cert_file.empty() != f.key_file.empty()) {
    return InvalidArgument("--cert_file and --key_file must be given together");
  }
  auto colon = f.http_bind.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("--http_bind: \"" + f.http_bind + "\" is not host:port");
  }
  c.host = f.http_bind.substr(0, colon);
  if (c.host.size() >= 2 && c.host.front() == '[') c.host = c.host.substr(1, c.host.size() - 2);
  if (c.host.empty()) c.host = "0.0.0.0";
  try {
    std::size_t used = 0;
    c.port = std::stoi(f.http_bind.substr(colon + 1), &used);
    if (used != f.http_bind.size() - colon - 1 || c.port < 0 || c.port > 65535) throw 0;
  } catch (...) {
    return InvalidArgument("--http_bind: bad port in \"" + f.http_bind + "\"");
  }
  c.cert_file = f.cert_file;
  c.key_file = f.key_file;
  c.threads = f.threads;

  ExtenderOptions& e = c.extender;
  e.names = names;
  e.memory_factor = nv.memory_factor;
  e.sched = sc;
  e.scheduler_name = f.scheduler_name;
  e.single_node_filter = f.single_node_filter;
  e.bind_wait_timeout = std::chrono::milliseconds(f.bind_wait_timeout_ms);
  e.allocate_timeout = std::chrono::milliseconds(f.allocate_timeout_ms);
  e.record_events = f.record_events;
  e.quotas = f.quotas;
  for (const auto& n : pc.nodes) {
    if (n.filter_uuids.empty() && n.filter_indexes.empty()) continue;
    DeviceFilter& df = e.device_filters[n.name];
    df.uuids = n.filter_uuids;
    for (unsigned i : n.filter_indexes) df.indexes.push_back(static_cast<int>(i));
  }
  WebhookOptions& w = c.webhook;
  w.names = names;
  w.memory_factor = nv.memory_factor;
  w.sched = sc;
  w.scheduler_name = f.scheduler_name;
  c.client.qps = f.kube_qps;
  c.client.burst = f.kube_burst;
  return c;
}

StatusOr<SchedulerConfig> LoadConfig(const SchedulerFlags& flags) {
  std::string text;
  if (!flags.device_config_file.empty()) {
    auto t = ReadFile(flags.device_config_file);
    if (!t.ok()) return NotFound("--device-config-file: " + t.status().message());
    text = *t;
  }
  return BuildConfig(flags, text);
}

}  // namespace hami::k8s
