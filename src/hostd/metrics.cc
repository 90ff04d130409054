// `hami serve`'s /metrics: the GPUs, the slices and the queue in Prometheus text, through the
// one writer every exporter uses (common/prom_text.h). Per slice it uses the per-pod labels
// of SPEC 2.8, with the slice standing in for the pod (namespace "hami-run").
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/accounting_reader.h"
#include "common/prom_text.h"
#include "hostd/build_paths.h"
#include "hostd/http_api.h"
#include "hostd/slice_files.h"

namespace hami::hostd {
namespace {

using prom::Labels;
using prom::TextWriter;
using SliceUse = std::pair<const Slice*, StatusOr<accounting::AccountingSnapshot>>;

constexpr double kMiB = 1 << 20;

Labels GpuLabels(const std::string& node, const GpuView& g) {
  return {{"node", node},
          {"device_uuid", g.gpu.uuid},
          {"device_index", std::to_string(g.gpu.index)},
          {"device_type", g.type}};
}

void GpuSeries(TextWriter& out, const std::string& node, const std::vector<GpuView>& gpus) {
  out.Family("hami_gpu_memory_limit_bytes", "gauge", "Device memory of the GPU.");
  for (const auto& g : gpus)
    out.Sample("hami_gpu_memory_limit_bytes", GpuLabels(node, g), g.memory_mib * kMiB);
  out.Family("hami_gpu_core_limit_ratio", "gauge", "Compute of the GPU in percent (100 = card).");
  for (const auto& g : gpus) out.Sample("hami_gpu_core_limit_ratio", GpuLabels(node, g), 100);
  out.Family("hami_gpu_memory_allocated_bytes", "gauge", "Device memory allocated to slices.");
  for (const auto& g : gpus) {
    out.Sample("hami_gpu_memory_allocated_bytes", GpuLabels(node, g), g.usage.used_mem_mib * kMiB);
  }
  out.Family("hami_gpu_core_allocated_ratio", "gauge",
             "Compute allocated to slices in percent (100 = card).");
  for (const auto& g : gpus) {
    out.Sample("hami_gpu_core_allocated_ratio", GpuLabels(node, g), g.usage.used_cores);
  }
  out.Family("hami_gpu_shared_count", "gauge", "Slices sharing the GPU.");
  for (const auto& g : gpus)
    out.Sample("hami_gpu_shared_count", GpuLabels(node, g), g.usage.used_slices);
  out.Family("hami_node_gpu_memory_allocated_ratio", "gauge",
             "Allocated share of the node's memory.");
  int64_t total = 0, used = 0;
  for (const auto& g : gpus) {
    total += g.memory_mib;
    used += g.usage.used_mem_mib;
  }
  out.Sample("hami_node_gpu_memory_allocated_ratio", {{"node", node}},
             total ? static_cast<double>(used) / static_cast<double>(total) : 0.0);
}

Labels SliceLabels(const Slice& s, size_t i) {
  return {{"namespace", "hami-run"},
          {"pod", s.Name()},
          {"container", "main"},
          {"vdevice_index", std::to_string(i)},
          {"device_uuid", s.devices[i].uuid}};
}

void SliceSeries(TextWriter& out, const std::vector<SliceUse>& acc) {
  out.Family("hami_vgpu_memory_allocated_bytes", "gauge", "Device memory allocated to the slice.");
  out.Family("hami_vgpu_core_allocated_ratio", "gauge",
             "Compute allocated to the slice (percent).");
  out.Family("hami_vgpu_memory_limit_bytes", "gauge", "Memory limit of the slice on the device.");
  out.Family("hami_vgpu_memory_used_bytes", "gauge",
             "Device memory the slice's processes use (from the accounting file).");
  for (const auto& [s, a] : acc) {
    for (size_t i = 0; i < s->devices.size(); ++i) {
      const auto& dev = s->devices[i];
      Labels pod = {{"namespace", "hami-run"},
                    {"pod", s->Name()},
                    {"container_index", "0"},
                    {"device_uuid", dev.uuid}};
      double limit = dev.memory_mib * kMiB;
      double used = 0;
      if (a.ok()) {
        if (const accounting::AccountingDevice* u = a->Find(dev.uuid))
          used = static_cast<double>(u->used_bytes);
      }
      out.Sample("hami_vgpu_memory_allocated_bytes", pod, limit);
      out.Sample("hami_vgpu_core_allocated_ratio", pod, dev.cores);
      out.Sample("hami_vgpu_memory_limit_bytes", SliceLabels(*s, i), limit);
      out.Sample("hami_vgpu_memory_used_bytes", SliceLabels(*s, i), used);
    }
  }
}

void LastKernelSeries(TextWriter& out, const std::vector<SliceUse>& acc) {
  out.Family("hami_container_last_kernel_elapsed_seconds", "gauge",
             "Seconds since the slice's processes last launched a kernel (absent before the "
             "first).");
  const double now_s = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()) /
                       1e9;
  for (const auto& [s, a] : acc) {
    if (!a.ok()) continue;
    for (size_t i = 0; i < s->devices.size(); ++i) {
      const accounting::AccountingDevice* u = a->Find(s->devices[i].uuid);
      if (u == nullptr || u->last_kernel_ns == 0) continue;
      double elapsed = now_s - static_cast<double>(u->last_kernel_ns) / 1e9;
      out.Sample("hami_container_last_kernel_elapsed_seconds", SliceLabels(*s, i),
                 elapsed < 0 ? 0.0 : elapsed);
    }
  }
}

}  // namespace

std::string RenderMetrics(const Daemon& d) {
  TextWriter out;
  const std::string& node = d.options().node_name;
  out.Family("hami_build_info", "gauge", "Build of the hami single-host daemon.");
  out.Sample("hami_build_info",
             {{"version", BuildVersion()},
              {"component", "hami-serve"},
              {"gpu_source", d.gpu_source()},
              {"fake", d.fake() ? "true" : "false"}},
             1);
  GpuSeries(out, node, d.Gpus());
  auto slices = d.Slices();
  std::vector<SliceUse> acc;
  for (const auto& s : slices) acc.emplace_back(&s, ReadSliceAccounting(s.cache_file));
  SliceSeries(out, acc);
  LastKernelSeries(out, acc);
  out.Family("hami_queue_length", "gauge", "Requests waiting for a slice.");
  out.Sample("hami_queue_length", {{"node", node}}, static_cast<double>(d.Queue().size()));
  return out.Take();
}

}  // namespace hami::hostd
