// Extender (extender.h): the scheduler metrics (SPEC 2.8) in Prometheus text format. What is
// needed is copied under the state lock and formatted without it: a scrape of a big cluster
// must not hold up binds and watch updates.
#include "k8s/extender/extender.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace hami::k8s {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Prometheus label value escaping: backslash, double quote and newline.
std::string Esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, const char* name, const std::string& labels, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += buf;
  out += '\n';
}

struct GpuRow {
  std::string labels;
  sched::GpuInfo info;
  sched::GpuUsage usage;
};

void GpuSeries(std::string& out, const std::vector<GpuRow>& rows) {
  Header(out, "hami_gpu_memory_limit_bytes", "gauge", "Schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_memory_limit_bytes", r.labels, double(r.info.memory_mib) * kMiB);
  }
  Header(out, "hami_gpu_core_limit_ratio", "gauge", "Schedulable compute of a GPU (1 = card).");
  for (const auto& r : rows)
    Sample(out, "hami_gpu_core_limit_ratio", r.labels, r.info.cores / 100.0);
  Header(out, "hami_gpu_memory_allocated_bytes", "gauge", "Device memory allocated to pods.");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_memory_allocated_bytes", r.labels, double(r.usage.used_mem_mib) * kMiB);
  }
  Header(out, "hami_gpu_core_allocated_ratio", "gauge", "Compute allocated to pods (1 = card).");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_core_allocated_ratio", r.labels, r.usage.used_cores / 100.0);
  }
  Header(out, "hami_gpu_shared_count", "gauge", "Containers sharing a GPU.");
  for (const auto& r : rows) Sample(out, "hami_gpu_shared_count", r.labels, r.usage.used_slices);
  Header(out, "hami_node_gpu_overview", "gauge",
         "Per GPU of a node: allocated memory in bytes; labels carry limits and sharing.");
  for (const auto& r : rows) {
    std::string l = r.labels + ",device_memory_limit_bytes=\"" +
                    std::to_string(r.info.memory_mib * 1024 * 1024) + "\",device_cores=\"" +
                    std::to_string(r.info.cores) + "\",shared_containers=\"" +
                    std::to_string(r.usage.used_slices) + "\"";
    Sample(out, "hami_node_gpu_overview", l, double(r.usage.used_mem_mib) * kMiB);
  }
  Header(out, "hami_node_gpu_memory_allocated_ratio", "gauge",
         "Allocated over schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    double ratio = r.info.memory_mib > 0 ? double(r.usage.used_mem_mib) / r.info.memory_mib : 0;
    Sample(out, "hami_node_gpu_memory_allocated_ratio", r.labels, ratio);
  }
}

void CounterSeries(std::string& out, const ExtenderCounters& c) {
  Header(out, "hami_build_info", "gauge", "Build information.");
  Sample(out, "hami_build_info", "component=\"scheduler\",version=\"0.1.0\"", 1);
  Header(out, "hami_scheduler_requests_total", "counter", "Extender calls by verb.");
  Sample(out, "hami_scheduler_requests_total", "verb=\"filter\"", double(c.filter_calls));
  Sample(out, "hami_scheduler_requests_total", "verb=\"prioritize\"", double(c.prioritize_calls));
  Sample(out, "hami_scheduler_requests_total", "verb=\"bind\"", double(c.bind_calls));
  Header(out, "hami_scheduler_request_seconds_total", "counter", "Time spent per verb.");
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"filter\"", c.filter_seconds);
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"prioritize\"", c.prioritize_seconds);
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"bind\"", c.bind_seconds);
  Header(out, "hami_scheduler_bind_total", "counter", "Bind outcomes.");
  Sample(out, "hami_scheduler_bind_total", "result=\"ok\"", double(c.bind_ok));
  Sample(out, "hami_scheduler_bind_total", "result=\"failed\"", double(c.bind_failed));
  Sample(out, "hami_scheduler_bind_total", "result=\"node_busy\"", double(c.bind_turn_timeouts));
  Header(out, "hami_scheduler_allocate_timeouts_total", "counter",
         "Pods marked failed because the device plugin did not allocate in time.");
  Sample(out, "hami_scheduler_allocate_timeouts_total", "", double(c.allocate_timeouts));
  Header(out, "hami_scheduler_bad_annotations_total", "counter",
         "Node or pod annotations that could not be decoded.");
  Sample(out, "hami_scheduler_bad_annotations_total", "", double(c.bad_annotations));
}

}  // namespace

std::string Extender::Metrics() const {
  std::vector<GpuRow> rows;
  std::vector<std::pair<std::string, PodRecord>> pods;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    for (const auto& node : state_.NodeNames()) {
      const sched::NodeInfo* info = state_.FindNode(node);
      if (!info) continue;
      for (const auto& g : info->gpus) {
        GpuRow& r = rows.emplace_back();
        r.labels = node;  // formatted below, without the lock
        r.info = g;
        r.usage = state_.Usage(node, g.uuid).value_or(sched::GpuUsage{});
      }
    }
    pods.reserve(pods_.size());
    for (const auto& [uid, rec] : pods_) pods.emplace_back(uid, rec);
  }
  for (GpuRow& r : rows) {
    r.labels = "node=\"" + Esc(r.labels) + "\",device_uuid=\"" + Esc(r.info.uuid) +
               "\",device_index=\"" + std::to_string(r.info.index) + "\",device_type=\"" +
               Esc(r.info.type) + "\"";
  }
  std::string out;
  GpuSeries(out, rows);
  Header(out, "hami_vgpu_memory_allocated_bytes", "gauge",
         "Device memory allocated to one container on one GPU.");
  std::string cores_out;
  Header(cores_out, "hami_vgpu_core_allocated_ratio", "gauge",
         "Compute allocated to one container on one GPU (1 = card).");
  std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.ns, a.second.name, a.first) <
           std::tie(b.second.ns, b.second.name, b.first);
  });
  for (const auto& [uid, rec] : pods) {
    for (std::size_t ci = 0; ci < rec.placement.containers.size(); ++ci) {
      for (const auto& d : rec.placement.containers[ci]) {
        std::string l = "namespace=\"" + Esc(rec.ns) + "\",pod=\"" + Esc(rec.name) +
                        "\",container_index=\"" + std::to_string(ci) + "\",device_uuid=\"" +
                        Esc(d.uuid) + "\",node=\"" + Esc(rec.node) + "\"";
        Sample(out, "hami_vgpu_memory_allocated_bytes", l, double(d.used_mem_mib) * kMiB);
        Sample(cores_out, "hami_vgpu_core_allocated_ratio", l, d.used_cores / 100.0);
      }
    }
  }
  out += cores_out;
  CounterSeries(out, counters());
  return out;
}

}  // namespace hami::k8s
