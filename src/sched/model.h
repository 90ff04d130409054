// The scheduling model: nodes and their GPUs, what a pod asks for, the scheduler's
// configuration and policies, and the placement that ends up in the pod annotation
// `hami.io/vgpu-devices-to-allocate` (SPEC.md 2.1-2.3). Pure data plus parsers; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hami::sched {

// ---------------------------------------------------------------------------------------------
// Nodes

enum class VgpuMode : uint8_t { kHamiCore, kMig, kMps };
const char* VgpuModeName(VgpuMode mode);  // "hami-core" | "mig" | "mps"
// Errors: kInvalidArgument naming the value for anything but the three names (exact, lower case).
StatusOr<VgpuMode> ParseVgpuMode(std::string_view text);

struct GpuInfo {
  std::string uuid;          // "GPU-..."; unique within a node
  int32_t index = 0;         // NVML index on the node
  std::string type;          // e.g. "NVIDIA-NVIDIA H100 80GB HBM3"
  int64_t memory_mib = 0;    // devmem: MiB x deviceMemoryScaling, already scaled
  int32_t cores = 100;       // devcore: 100 x deviceCoreScaling
  int32_t split_count = 10;  // how many slices (containers) may share the card
  int32_t numa = 0;
  bool healthy = true;
  VgpuMode mode = VgpuMode::kHamiCore;
  bool operator==(const GpuInfo&) const = default;
};

struct NodeInfo {
  std::string name;
  std::vector<GpuInfo> gpus;
  std::map<std::string, std::string> labels;  // informational; not used by the filters yet
  bool operator==(const NodeInfo&) const = default;
};

// "NVIDIA-" + name unless the name already starts with "NVIDIA-" (the register annotation's
// type convention).
std::string NormalizeGpuType(std::string_view nvml_name);
// The type as HAMi v2.8+ writes it (register annotation, scheduler metrics): the NVML name when
// it starts with "NVIDIA" ("NVIDIA H100 80GB HBM3"), else NormalizeGpuType ("NVIDIA-Tesla T4").
std::string RegisterGpuType(std::string_view nvml_name);

// ---------------------------------------------------------------------------------------------
// Requests

// One container's GPU resources as written in its limits (falling back to requests). Absent
// values are std::nullopt; defaults from SchedulerConfig are applied by Resolve().
struct ContainerRequest {
  std::optional<int32_t> gpu_count;       // nvidia.com/gpu
  std::optional<int64_t> memory_mib;      // nvidia.com/gpumem (already x memoryFactor)
  std::optional<int32_t> memory_percent;  // nvidia.com/gpumem-percentage, 0..100
  std::optional<int32_t> cores;           // nvidia.com/gpucores, 0..100; 100 = exclusive card
  std::optional<int32_t> priority;        // nvidia.com/priority, 0 high, 1 low
  bool operator==(const ContainerRequest&) const = default;
};

enum class NodePolicy : uint8_t { kBinpack, kSpread };
enum class GpuPolicy : uint8_t { kBinpack, kSpread };
const char* PolicyName(NodePolicy p);  // "binpack" | "spread"
const char* PolicyName(GpuPolicy p);
// Errors: kInvalidArgument naming the value (HAMi silently falls back; we refuse).
StatusOr<NodePolicy> ParseNodePolicy(std::string_view text);
StatusOr<GpuPolicy> ParseGpuPolicy(std::string_view text);

// Relative weights of the three utilisation dimensions in node and GPU scores
// (`hami.io/device-scoring-weights`, e.g. "slot=1,core=1,memory=3").
struct ScoringWeights {
  int32_t slot = 1;
  int32_t core = 1;
  int32_t memory = 1;
  bool operator==(const ScoringWeights&) const = default;
};
// Keys slot|core|memory (each at most once, any order, missing ones keep weight 0 when at least
// one is given), values integers 0..1000, at least one weight > 0, spaces around items allowed.
// Errors: kInvalidArgument naming the bad item.
StatusOr<ScoringWeights> ParseScoringWeights(std::string_view text);
std::string FormatScoringWeights(const ScoringWeights& w);  // "slot=1,core=1,memory=3"

// Pod-wide constraints and policy overrides (from pod annotations, SPEC 2.2).
struct PodOptions {
  std::vector<std::string> use_types;     // nvidia.com/use-gputype: case-insensitive substrings
  std::vector<std::string> nouse_types;   // nvidia.com/nouse-gputype
  std::vector<std::string> use_uuids;     // nvidia.com/use-gpuuuid: exact
  std::vector<std::string> nouse_uuids;   // nvidia.com/nouse-gpuuuid
  bool numa_bind = false;                 // nvidia.com/numa-bind
  std::optional<VgpuMode> mode;           // nvidia.com/vgpu-mode; unset: any mode
  std::optional<NodePolicy> node_policy;  // hami.io/node-scheduler-policy
  std::optional<GpuPolicy> gpu_policy;    // hami.io/gpu-scheduler-policy
  std::optional<ScoringWeights> weights;  // hami.io/device-scoring-weights
  // hami.io/gpu-scheduler-policy "mutex" (HAMi): the pod's GPUs are its own, every GPU
  // container holds its cards exclusively (cores 100).
  bool exclusive = false;
  // Values accepted with HAMi's meaning where it is weaker than it looks ("topology-aware"
  // without pair scores, a numa-bind value Go's ParseBool refuses): for a log line or event.
  std::vector<std::string> warnings;
  bool operator==(const PodOptions&) const = default;
};

// Annotation names read by ParsePodOptions.
inline constexpr char kUseGpuTypeAnnotation[] = "nvidia.com/use-gputype";
inline constexpr char kNoUseGpuTypeAnnotation[] = "nvidia.com/nouse-gputype";
inline constexpr char kUseGpuUuidAnnotation[] = "nvidia.com/use-gpuuuid";
inline constexpr char kNoUseGpuUuidAnnotation[] = "nvidia.com/nouse-gpuuuid";
inline constexpr char kNumaBindAnnotation[] = "nvidia.com/numa-bind";
inline constexpr char kVgpuModeAnnotation[] = "nvidia.com/vgpu-mode";
inline constexpr char kNodePolicyAnnotation[] = "hami.io/node-scheduler-policy";
inline constexpr char kGpuPolicyAnnotation[] = "hami.io/gpu-scheduler-policy";
inline constexpr char kScoringWeightsAnnotation[] = "hami.io/device-scoring-weights";

// Reads the annotations above (others are ignored). Comma lists are trimmed, empty items
// dropped. numa-bind accepts true/false (case-insensitive), 1/0. Errors: kInvalidArgument
// naming the annotation and value for an unknown policy, mode, weight or boolean.
StatusOr<PodOptions> ParsePodOptions(const std::map<std::string, std::string>& annotations);

// Splits "a, b,,c" into {"a","b","c"}.
std::vector<std::string> SplitCommaList(std::string_view text);

struct PodRequest {
  std::string uid;   // for messages and as the placement key
  std::string name;  // "namespace/name", for messages only
  std::vector<ContainerRequest> init_containers;
  std::vector<ContainerRequest> containers;  // app containers
  PodOptions options;
};

// Scheduler-wide configuration (device-config.yaml `nvidia:` and Helm values, SPEC 2.7).
struct SchedulerConfig {
  int64_t default_memory_mib = 0;  // defaultMemory; 0 = the whole card
  int32_t default_cores = 0;       // defaultCores
  int32_t default_gpu_num = 1;     // defaultGPUNum
  NodePolicy node_policy = NodePolicy::kBinpack;
  GpuPolicy gpu_policy = GpuPolicy::kSpread;
  ScoringWeights weights;
};

// A container's request after defaults: `count` distinct GPUs, each with `memory_mib` MiB or,
// when memory_percent > 0, that percentage of the chosen GPU's memory; `cores` percent.
struct ResolvedContainer {
  int32_t count = 0;  // 0: the container uses no GPU
  int64_t memory_mib = 0;
  int32_t memory_percent = 0;  // used when memory_mib == 0
  int32_t cores = 0;
  int32_t priority = -1;  // -1: not given
  bool exclusive() const { return cores >= 100; }
  bool operator==(const ResolvedContainer&) const = default;
};

struct ResolvedPod {
  std::vector<ResolvedContainer> init_containers;
  std::vector<ResolvedContainer> containers;
  PodOptions options;
  NodePolicy node_policy = NodePolicy::kBinpack;
  GpuPolicy gpu_policy = GpuPolicy::kSpread;
  ScoringWeights weights;
  bool UsesGpu() const;
};

// Applies the defaults of SPEC 2.1: a container that gives memory or cores but no count gets
// default_gpu_num GPUs; no memory and no percentage: default_memory_mib, or 100 % when that is
// 0; no cores: default_cores. Errors: kInvalidArgument naming the container (init-N / N) for a
// negative count, memory, percentage > 100, cores > 100, priority not 0/1, both memory and
// percentage given, or a count > 64.
StatusOr<ResolvedPod> Resolve(const PodRequest& pod, const SchedulerConfig& config);

// ---------------------------------------------------------------------------------------------
// Placements

// One device of one container, as in `UUID,Type,usedMemMiB,usedCores:`.
struct DeviceAlloc {
  std::string uuid;
  std::string type;
  int64_t used_mem_mib = 0;
  int32_t used_cores = 0;
  bool operator==(const DeviceAlloc&) const = default;
};
using ContainerDevices = std::vector<DeviceAlloc>;

// Per container (init containers first, then app containers, one entry for every container
// even when it uses no GPU) the devices chosen.
struct PodPlacement {
  std::vector<ContainerDevices> containers;
  // How many leading entries are init containers. They run one at a time before the app
  // containers, so the pod's usage of a GPU is max(max over init, sum over app). 0 when
  // unknown (then every entry is counted as an app container, which over-counts, never under).
  int32_t num_init = 0;
  bool operator==(const PodPlacement&) const = default;
};

}  // namespace hami::sched
