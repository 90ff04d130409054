// Builds the node monitor's view of every container that was given GPU slices on this node:
// the allocation records the device plugin writes at Allocate time (so series exist before
// CUDA starts) joined with the accounting files libvgpu.so writes, plus host GPU metrics
// from NVML. Also writes the per-GPU contention files (docs/node-agents.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/accounting_reader.h"
#include "common/prom_text.h"
#include "gpu/gpu.h"
#include "monitor/pod_resolver.h"

namespace hami::monitor {

using prom::Family;
using prom::Labels;
using prom::RenderText;

struct AllocatedDevice {
  std::string uuid;
  long long memory_mib = 0;
  long long cores = 0;
};

// One container directory (<podUID>_<container>) as the monitor sees it.
struct ContainerView {
  std::string key;  // directory name
  std::string ns, pod, pod_uid, container;
  std::vector<AllocatedDevice> allocated;  // from allocations/<key>/pod.json (may be empty)
  std::vector<accounting::AccountingSnapshot> accounting;  // one per valid *.cache file
};

struct CollectorOptions {
  std::string hook_path = "/usr/local";
  std::string node_name;
  std::chrono::milliseconds active_window{5000};  // "active": a kernel within this window
  std::string version = "0.1.0";
  // Also export HAMi's names before v2.8 (HostGPUMemoryUsage, vGPU_device_memory_usage_in_bytes,
  // ...), as HAMi's --legacy-metrics does (legacy_metrics.cc).
  bool legacy_metrics = false;
  // The `zone` label HAMi's registerer adds to every series of its monitor's collector ("vGPU");
  // empty: no zone label.
  std::string zone = "vGPU";
};

struct ContentionInfo {
  int allocated = 0;      // containers given a slice of the GPU
  int active = 0;         // containers that launched a kernel within the active window
  int active_high = 0;    // of those, with priority 0
  int min_priority = -1;  // lowest priority number among active ones, -1 when none
};

class Collector {
 public:
  // `gpus` may be null (no host metrics).
  Collector(CollectorOptions options, gpu::Backend* gpus)
      : opts_(std::move(options)), gpus_(gpus) {}

  // Scans the host directories. Corrupt files are counted and skipped.
  std::vector<ContainerView> Scan();
  // Metric families for one scan (updates utilisation rates from the previous scan).
  std::vector<Family> Collect();
  std::string MetricsText() { return RenderText(Collect()); }
  // Per-GPU contention computed from `views`, and the files written under
  // <hook>/vgpu/contention/<uuid>. Errors: kInternal naming a file that cannot be written.
  std::map<std::string, ContentionInfo> Contention(const std::vector<ContainerView>& views);
  Status WriteContentionFiles();

  uint64_t corrupt_files_total() const { return corrupt_total_; }
  // Names pods of container directories without pod.json (HAMi's device plugin); may be null.
  // Must outlive the collector.
  void set_pod_resolver(PodResolver* r) { pods_ = r; }

 private:
  struct DeviceSample {
    uint64_t used_bytes = 0, limit_bytes = 0;
    double ratio = 0;  // share of the GPU's time since the previous scrape, 0..1
    std::optional<double> last_kernel_s;
    // HAMi-core's context/module/data split, when a HAMi-core region holds the device.
    bool has_split = false;
    uint64_t context_bytes = 0, module_bytes = 0, buffer_bytes = 0;
  };
  std::vector<Family> HostFamilies(const std::vector<ContainerView>& views);
  // Per GPU UUID, the device memory the containers' accounting files account for (a MIG
  // slice's counts for its GPU); sums saturate (the files are the tenants').
  std::map<std::string, uint64_t> AccountedBytes(const std::vector<ContainerView>& views);
  // hami_host_gpu_{temperature_celsius,power_usage_watts,ecc_errors_total} of one GPU.
  void AppendTelemetry(const gpu::GpuInfo& g, const Labels& l, std::vector<Family>& out);
  // hami_mig_device_info: MIG devices the containers use (NVML), and the MIG allocations HAMi's
  // device plugin records on its pods (hami.io/vgpu-mig-allocations, through the resolver).
  Family MigFamily(const std::vector<ContainerView>& views);
  std::vector<Family> ContainerFamilies(const std::vector<ContainerView>& views);
  // One container device's values; updates the busy-time history (mu_ held).
  DeviceSample Sample(const ContainerView& v, std::size_t i, const std::string& uuid,
                      uint64_t now_ns, std::chrono::steady_clock::time_point now);

  CollectorOptions opts_;
  gpu::Backend* gpus_;
  PodResolver* pods_ = nullptr;
  std::mutex mu_;
  // Logs a skipped file once per path and reason (a scan runs every second).
  void NoteSkipped(const std::string& path, const Status& why);
  std::set<std::string> reported_;
  uint64_t corrupt_total_ = 0;
  uint64_t corrupt_last_scan_ = 0;
  uint64_t scans_ = 0;
  // Previous busy counter per container and device, for utilisation.
  struct BusySample {
    uint64_t busy_ns = 0;
    std::chrono::steady_clock::time_point at;
    double ratio = 0;
  };
  std::map<std::string, BusySample> busy_;
};

// Appends HAMi's pre-v2.8 metric names (and label names) for the families in `out` that have
// one: HostGPUMemoryUsage, HostCoreUtilization, vGPU_device_memory_usage_in_bytes,
// vGPU_device_memory_limit_in_bytes, Device_memory_desc_of_container,
// Device_utilization_desc_of_container, Device_last_kernel_of_container, MigInfo.
void AppendLegacyFamilies(std::vector<Family>& out);

// Parses allocations/<key>/pod.json. Errors: kInvalidArgument.
StatusOr<ContainerView> ParsePodMeta(const std::string& json_text);

}  // namespace hami::monitor
