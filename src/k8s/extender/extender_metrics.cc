// Extender (extender.h): the scheduler metrics (SPEC 2.8) in Prometheus text format. What is
// needed is copied under the state lock and formatted without it: a scrape of a big cluster
// must not hold up binds and watch updates.
#include "k8s/extender/extender.h"

#include <algorithm>
#include <tuple>

#include "common/prom_text.h"
#include "k8s/extender/quotas.h"

namespace hami::k8s {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

using prom::Labels;
using prom::TextWriter;

struct GpuRow {
  Labels labels;
  sched::GpuInfo info;
  sched::GpuUsage usage;
};

void GpuSeries(TextWriter& out, const std::vector<GpuRow>& rows) {
  out.Family("hami_gpu_memory_limit_bytes", "gauge", "Schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    out.Sample("hami_gpu_memory_limit_bytes", r.labels, double(r.info.memory_mib) * kMiB);
  }
  out.Family("hami_gpu_core_limit_ratio", "gauge",
             "Schedulable compute of a GPU in percent (100 = card, as HAMi).");
  for (const auto& r : rows) out.Sample("hami_gpu_core_limit_ratio", r.labels, r.info.cores);
  out.Family("hami_gpu_memory_allocated_bytes", "gauge", "Device memory allocated to pods.");
  for (const auto& r : rows) {
    out.Sample("hami_gpu_memory_allocated_bytes", r.labels, double(r.usage.used_mem_mib) * kMiB);
  }
  out.Family("hami_gpu_core_allocated_ratio", "gauge",
             "Compute allocated to pods in percent (100 = card, as HAMi).");
  for (const auto& r : rows) {
    out.Sample("hami_gpu_core_allocated_ratio", r.labels, r.usage.used_cores);
  }
  out.Family("hami_gpu_shared_count", "gauge", "Containers sharing a GPU.");
  for (const auto& r : rows) out.Sample("hami_gpu_shared_count", r.labels, r.usage.used_slices);
  out.Family("hami_node_gpu_overview", "gauge",
             "Per GPU of a node: allocated memory in bytes; labels carry limits and sharing.");
  for (const auto& r : rows) {
    Labels l = r.labels;
    l.emplace_back("device_memory_limit_bytes", std::to_string(r.info.memory_mib * 1024 * 1024));
    l.emplace_back("device_cores", std::to_string(r.info.cores));
    l.emplace_back("shared_containers", std::to_string(r.usage.used_slices));
    out.Sample("hami_node_gpu_overview", l, double(r.usage.used_mem_mib) * kMiB);
  }
  out.Family("hami_node_gpu_memory_allocated_ratio", "gauge",
             "Allocated over schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    double ratio = r.info.memory_mib > 0 ? double(r.usage.used_mem_mib) / r.info.memory_mib : 0;
    out.Sample("hami_node_gpu_memory_allocated_ratio", r.labels, ratio);
  }
}

void CounterSeries(TextWriter& out, const ExtenderCounters& c) {
  out.Family("hami_build_info", "gauge", "Build information.");
  out.Sample("hami_build_info", {{"component", "scheduler"}, {"version", "0.1.0"}}, 1);
  out.Family("hami_scheduler_requests_total", "counter", "Extender calls by verb.");
  out.Sample("hami_scheduler_requests_total", {{"verb", "filter"}}, double(c.filter_calls));
  out.Sample("hami_scheduler_requests_total", {{"verb", "prioritize"}}, double(c.prioritize_calls));
  out.Sample("hami_scheduler_requests_total", {{"verb", "bind"}}, double(c.bind_calls));
  out.Family("hami_scheduler_request_seconds_total", "counter", "Time spent per verb.");
  out.Sample("hami_scheduler_request_seconds_total", {{"verb", "filter"}}, c.filter_seconds);
  out.Sample("hami_scheduler_request_seconds_total", {{"verb", "prioritize"}},
             c.prioritize_seconds);
  out.Sample("hami_scheduler_request_seconds_total", {{"verb", "bind"}}, c.bind_seconds);
  out.Family("hami_scheduler_bind_total", "counter", "Bind outcomes.");
  out.Sample("hami_scheduler_bind_total", {{"result", "ok"}}, double(c.bind_ok));
  out.Sample("hami_scheduler_bind_total", {{"result", "failed"}}, double(c.bind_failed));
  out.Sample("hami_scheduler_bind_total", {{"result", "node_busy"}}, double(c.bind_turn_timeouts));
  out.Family("hami_scheduler_allocate_timeouts_total", "counter",
             "Pods marked failed because the device plugin did not allocate in time.");
  out.Sample("hami_scheduler_allocate_timeouts_total", {}, double(c.allocate_timeouts));
  out.Family("hami_scheduler_bad_annotations_total", "counter",
             "Node or pod annotations that could not be decoded.");
  out.Sample("hami_scheduler_bad_annotations_total", {}, double(c.bad_annotations));
  out.Family("hami_scheduler_bad_quotas_total", "counter",
             "ResourceQuota values that could not be read (enforced as 0).");
  out.Sample("hami_scheduler_bad_quotas_total", {}, double(c.bad_quotas));
}

}  // namespace

std::string Extender::Metrics() const {
  std::vector<GpuRow> rows;
  std::vector<std::pair<std::string, PodRecord>> pods;
  std::vector<sched::QuotaBook::Row> quota_rows;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    quota_rows = quotas_.Snapshot();
    for (const auto& node : state_.NodeNames()) {
      const sched::NodeInfo* info = state_.FindNode(node);
      if (!info) continue;
      for (const auto& g : info->gpus) {
        GpuRow& r = rows.emplace_back();
        r.labels = {{"node", node}};  // completed below, without the lock
        r.info = g;
        r.usage = state_.Usage(node, g.uuid).value_or(sched::GpuUsage{});
      }
    }
    pods.reserve(pods_.size());
    for (const auto& [uid, rec] : pods_) pods.emplace_back(uid, rec);
  }
  for (GpuRow& r : rows) {
    r.labels.emplace_back("device_uuid", r.info.uuid);
    r.labels.emplace_back("device_index", std::to_string(r.info.index));
    r.labels.emplace_back("device_type", r.info.type);
  }
  TextWriter out;
  GpuSeries(out, rows);
  out.Family("hami_vgpu_memory_allocated_bytes", "gauge",
             "Device memory allocated to one container on one GPU.");
  TextWriter cores_out;
  cores_out.Family("hami_vgpu_core_allocated_ratio", "gauge",
                   "Compute allocated to one container on one GPU in percent (100 = card).");
  std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.ns, a.second.name, a.first) <
           std::tie(b.second.ns, b.second.name, b.first);
  });
  for (const auto& [uid, rec] : pods) {
    for (std::size_t ci = 0; ci < rec.placement.containers.size(); ++ci) {
      for (const auto& d : rec.placement.containers[ci]) {
        const Labels l = {{"namespace", rec.ns},
                          {"pod", rec.name},
                          {"container_index", std::to_string(ci)},
                          {"device_uuid", d.uuid},
                          {"node", rec.node}};
        out.Sample("hami_vgpu_memory_allocated_bytes", l, double(d.used_mem_mib) * kMiB);
        cores_out.Sample("hami_vgpu_core_allocated_ratio", l, d.used_cores);
      }
    }
  }
  std::string text = out.Take();
  text += cores_out.text();
  TextWriter tail;
  CounterSeries(tail, counters());
  text += tail.text();
  text += QuotaMetricsText(quota_rows, opts_.names);
  return text;
}

}  // namespace hami::k8s
