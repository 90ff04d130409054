// hami-scheduler's configuration (config.h): flags and device-config.yaml checked and turned
// into the options of the extender, the webhook and the HTTP server. Every bad value is a named
// error; nothing here throws.
#include "k8s/extender/config.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "sched/device_config.h"

namespace hami::k8s {
namespace {

Status Range(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return Status::Ok();
  return InvalidArgument(std::string(flag) + ": must be " + std::to_string(lo) + ".." +
                         std::to_string(hi) + ", got " + std::to_string(v));
}

StatusOr<sched::DeviceConfig> ParseDeviceConfig(const std::string& yaml_text) {
  if (yaml_text.empty()) return sched::DeviceConfig{};
  try {
    auto parsed = sched::ParseDeviceConfig(yaml_text);
    if (!parsed.ok()) return InvalidArgument("device config: " + parsed.status().message());
    return std::move(*parsed);
  } catch (const std::exception& e) {
    // The YAML library throws on shapes the parser does not expect (a scalar for a list).
    return InvalidArgument(std::string("device config: malformed: ") + e.what());
  }
}

StatusOr<sched::SchedulerConfig> SchedulingDefaults(const SchedulerFlags& f,
                                                    const sched::DeviceConfig& pc) {
  const auto& nv = pc.nvidia;
  sched::SchedulerConfig sc;
  int64_t mem = f.default_mem.value_or(nv.default_memory);
  int64_t cores = f.default_cores.value_or(nv.default_cores);
  int64_t gpus = f.default_gpu.value_or(nv.default_gpu_num);
  if (Status s = Range("--default-mem", mem, 0, int64_t{1} << 40); !s.ok()) return s;
  if (Status s = Range("--default-cores", cores, 0, 100); !s.ok()) return s;
  if (Status s = Range("--default-gpu", gpus, 1, 64); !s.ok()) return s;
  sc.default_memory_mib = mem;
  sc.default_cores = static_cast<int32_t>(cores);
  sc.default_gpu_num = static_cast<int32_t>(gpus);
  auto np = sched::ParseNodePolicy(f.node_scheduler_policy);
  if (!np.ok()) return InvalidArgument("--node-scheduler-policy: " + np.status().message());
  auto gp = sched::ParseGpuPolicy(f.gpu_scheduler_policy);
  if (!gp.ok()) return InvalidArgument("--gpu-scheduler-policy: " + gp.status().message());
  sc.node_policy = *np;
  sc.gpu_policy = *gp;
  return sc;
}

Status CheckNumbers(const SchedulerFlags& f) {
  if (!std::isfinite(f.kube_qps) || f.kube_qps < 0 || f.kube_qps > 1e6) {
    return InvalidArgument("--kube-api-qps: must be a finite number 0..1000000 (0: no limit)");
  }
  const struct {
    const char* flag;
    int64_t v, lo, hi;
  } ints[] = {
      {"--kube-api-burst", f.kube_burst, 1, 1000000},
      {"--kube-api-timeout", f.kube_timeout_s, 1, 3600},
      {"--bind-wait-timeout-ms", f.bind_wait_timeout_ms, 0, 3600000},
      {"--allocate-timeout-ms", f.allocate_timeout_ms, 1, 3600000},
      {"--max-connections", f.max_connections, 1, 65536},
      {"--http-request-timeout-ms", f.http_request_timeout_ms, 100, 600000},
      {"--http-max-body-bytes", f.http_max_body_bytes, 1024, int64_t{1} << 30},
  };
  for (const auto& i : ints) {
    if (Status s = Range(i.flag, i.v, i.lo, i.hi); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ListenAddresses(const SchedulerFlags& f, SchedulerConfig& c) {
  if (f.cert_file.empty() != f.key_file.empty()) {
    return InvalidArgument("--cert_file and --key_file must be given together");
  }
  if (Status s = ParseHostPort("--http_bind", f.http_bind, &c.host, &c.port); !s.ok()) return s;
  if (!f.metrics_bind_address.empty()) {
    Status s = ParseHostPort("--metrics-bind-address", f.metrics_bind_address, &c.metrics_host,
                             &c.metrics_port);
    if (!s.ok()) return s;
  }
  c.cert_file = f.cert_file;
  c.key_file = f.key_file;
  c.max_connections = f.max_connections;
  c.request_timeout = std::chrono::milliseconds(f.http_request_timeout_ms);
  c.max_body_bytes = static_cast<std::size_t>(f.http_max_body_bytes);
  return Status::Ok();
}

StatusOr<ResourceNames> Names(const sched::DeviceConfig& pc) {
  const auto& nv = pc.nvidia;
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
  // The scheduler does not use the scalings itself, but a non-finite one would corrupt what the
  // device plugins register (issue 12): refuse the file here too.
  const struct {
    const char* key;
    double v;
  } numbers[] = {{"memoryFactor", nv.memory_factor},
                 {"deviceMemoryScaling", nv.device_memory_scaling},
                 {"deviceCoreScaling", nv.device_core_scaling}};
  for (const auto& n : numbers) {
    if (!std::isfinite(n.v) || n.v <= 0 || n.v > 1e6) {
      return InvalidArgument(std::string("device config: ") + n.key +
                             " must be a finite number in (0, 1000000]");
    }
  }
  for (const auto& node : pc.nodes) {
    for (const auto& v : {node.device_memory_scaling, node.device_core_scaling}) {
      if (v && (!std::isfinite(*v) || *v <= 0 || *v > 1e6)) {
        return InvalidArgument("device config: nodeconfig " + node.name +
                               ": scaling must be a finite number in (0, 1000000]");
      }
    }
  }
  if (nv.gpu_core_policy != "default" && nv.gpu_core_policy != "force" &&
      nv.gpu_core_policy != "disable") {
    return InvalidArgument(
        "device config: gpuCorePolicy must be default, force or disable, got \"" +
        nv.gpu_core_policy + "\"");
  }
  return names;
}

}  // namespace

StatusOr<std::chrono::nanoseconds> ParseGoDuration(const std::string& flag,
                                                   const std::string& text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(flag + ": \"" + text + "\" is not a duration (" + why + ")");
  };
  std::string_view t = text;
  bool negative = !t.empty() && t.front() == '-';
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) t.remove_prefix(1);
  if (t == "0") return std::chrono::nanoseconds(0);
  if (t.empty()) return bad("empty");
  static const std::pair<std::string_view, long double> kUnits[] = {
      {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
      {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
  long double total = 0;
  while (!t.empty()) {
    std::size_t i = 0;
    long double v = 0, scale = 1;
    bool digits = false, dot = false;
    for (; i < t.size() && ((t[i] >= '0' && t[i] <= '9') || (t[i] == '.' && !dot)); ++i) {
      if (t[i] == '.') {
        dot = true;
        continue;
      }
      digits = true;
      if (dot) scale /= 10;
      v = dot ? v + (t[i] - '0') * scale : v * 10 + (t[i] - '0');
    }
    if (!digits) return bad("a number must come before each unit");
    t.remove_prefix(i);
    std::size_t u = 0;
    while (u < t.size() && !(t[u] >= '0' && t[u] <= '9') && t[u] != '.') ++u;
    auto unit = std::find_if(std::begin(kUnits), std::end(kUnits),
                             [&](const auto& k) { return k.first == t.substr(0, u); });
    if (u == 0 || unit == std::end(kUnits)) return bad("units are ns, us, ms, s, m, h");
    total += v * unit->second;
    if (total > 9.2e18L) return bad("too large");
    t.remove_prefix(u);
  }
  auto ns = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(negative ? -ns : ns);
}

Status ParseHostPort(const std::string& flag, const std::string& text, std::string* host,
                     int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument(flag + ": \"" + text + "\" is not host:port");
  }
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return InvalidArgument(flag + ": bad port in \"" + text + "\" (0..65535)");
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = std::stoi(p);
  return Status::Ok();
}

StatusOr<SchedulerConfig> BuildConfig(const SchedulerFlags& f, const std::string& yaml_text) {
  auto pc = ParseDeviceConfig(yaml_text);
  if (!pc.ok()) return pc.status();
  auto names = Names(*pc);
  if (!names.ok()) return names.status();
  auto sc = SchedulingDefaults(f, *pc);
  if (!sc.ok()) return sc.status();
  if (Status s = CheckNumbers(f); !s.ok()) return s;
  if (f.scheduler_name.empty()) return InvalidArgument("--scheduler-name: must not be empty");
  SchedulerConfig c;
  if (Status s = ListenAddresses(f, c); !s.ok()) return s;
  const double factor = pc->nvidia.memory_factor;

  ExtenderOptions& e = c.extender;
  e.names = *names;
  e.memory_factor = factor;
  e.sched = *sc;
  e.scheduler_name = f.scheduler_name;
  e.single_node_filter = f.single_node_filter;
  e.bind_wait_timeout = std::chrono::milliseconds(f.bind_wait_timeout_ms);
  e.allocate_timeout = std::chrono::milliseconds(f.allocate_timeout_ms);
  e.record_events = f.record_events;
  e.quotas = f.quotas;
  auto mode = ParseNodeLockMode(f.node_lock);
  if (!mode.ok()) return mode.status();
  e.node_lock = *mode;
  auto expire = ParseGoDuration("--node-lock-expire", f.node_lock_expire);
  if (!expire.ok()) return expire.status();
  if (*expire < std::chrono::milliseconds(1) || *expire > std::chrono::hours(24)) {
    return InvalidArgument("--node-lock-expire: must be 1ms..24h, got \"" + f.node_lock_expire +
                           "\"");
  }
  e.node_lock_expire = std::chrono::duration_cast<std::chrono::milliseconds>(*expire);
  for (const auto& n : pc->nodes) {
    if (n.filter_uuids.empty() && n.filter_indexes.empty()) continue;
    DeviceFilter& df = e.device_filters[n.name];
    df.uuids = n.filter_uuids;
    for (unsigned i : n.filter_indexes) df.indexes.push_back(static_cast<int>(i));
  }
  WebhookOptions& w = c.webhook;
  w.names = *names;
  w.memory_factor = factor;
  w.sched = *sc;
  w.scheduler_name = f.scheduler_name;
  w.force_overwrite_default_scheduler = f.force_overwrite_default_scheduler;
  w.gpu_core_policy = pc->nvidia.gpu_core_policy;
  c.client.qps = f.kube_qps;
  c.client.burst = f.kube_burst;
  c.client.timeout_seconds = f.kube_timeout_s;
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
