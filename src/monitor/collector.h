// Builds the node monitor's view of every container that was given GPU slices on this node:
// the allocation records the device plugin writes at Allocate time (so series exist before
// CUDA starts) joined with the accounting files libvgpu.so writes, plus host GPU metrics
// from NVML. Also writes the per-GPU contention files (docs/node-agents.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/accounting_reader.h"
#include "gpu/gpu.h"
#include "common/prom_text.h"

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

 private:
  CollectorOptions opts_;
  gpu::Backend* gpus_;
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

// Parses allocations/<key>/pod.json. Errors: kInvalidArgument.
StatusOr<ContainerView> ParsePodMeta(const std::string& json_text);

}  // namespace hami::monitor
