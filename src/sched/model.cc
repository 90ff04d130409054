// Parsers and defaulting for the scheduling model (model.h).
#include "sched/model.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace hami::sched {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

const char* VgpuModeName(VgpuMode mode) {
  switch (mode) {
    case VgpuMode::kHamiCore:
      return "hami-core";
    case VgpuMode::kMig:
      return "mig";
    case VgpuMode::kMps:
      return "mps";
  }
  return "?";
}

StatusOr<VgpuMode> ParseVgpuMode(std::string_view text) {
  if (text == "hami-core") return VgpuMode::kHamiCore;
  if (text == "mig") return VgpuMode::kMig;
  if (text == "mps") return VgpuMode::kMps;
  return InvalidArgument("unknown vgpu-mode " + Quote(text) + " (want hami-core, mig or mps)");
}

std::string NormalizeGpuType(std::string_view nvml_name) {
  if (nvml_name.starts_with("NVIDIA-")) return std::string(nvml_name);
  return "NVIDIA-" + std::string(nvml_name);
}

std::string RegisterGpuType(std::string_view nvml_name) {
  if (nvml_name.starts_with("NVIDIA")) return std::string(nvml_name);
  return NormalizeGpuType(nvml_name);
}

const char* PolicyName(NodePolicy p) { return p == NodePolicy::kBinpack ? "binpack" : "spread"; }
const char* PolicyName(GpuPolicy p) { return p == GpuPolicy::kBinpack ? "binpack" : "spread"; }

StatusOr<NodePolicy> ParseNodePolicy(std::string_view text) {
  if (text == "binpack") return NodePolicy::kBinpack;
  if (text == "spread") return NodePolicy::kSpread;
  return InvalidArgument("unknown node scheduler policy " + Quote(text) +
                         " (want binpack or spread)");
}

StatusOr<GpuPolicy> ParseGpuPolicy(std::string_view text) {
  if (text == "binpack") return GpuPolicy::kBinpack;
  if (text == "spread") return GpuPolicy::kSpread;
  return InvalidArgument("unknown GPU scheduler policy " + Quote(text) +
                         " (want binpack or spread)");
}

StatusOr<ScoringWeights> ParseScoringWeights(std::string_view text) {
  ScoringWeights w{0, 0, 0};
  bool seen[3] = {false, false, false};
  bool any = false;
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (item.empty()) {
      return InvalidArgument("scoring weights " + Quote(text) + ": empty item");
    }
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("scoring weights " + Quote(text) + ": item " + Quote(item) +
                             " is not key=value");
    }
    std::string_view key = Trim(item.substr(0, eq));
    std::string_view val = Trim(item.substr(eq + 1));
    int idx = key == "slot" ? 0 : key == "core" ? 1 : key == "memory" ? 2 : -1;
    if (idx < 0) {
      return InvalidArgument("scoring weights " + Quote(text) + ": unknown key " + Quote(key) +
                             " (want slot, core or memory)");
    }
    if (seen[idx]) {
      return InvalidArgument("scoring weights " + Quote(text) + ": key " + Quote(key) +
                             " given twice");
    }
    seen[idx] = true;
    // HAMi takes any non-negative integer; only the ratios matter (the engine normalises).
    int32_t v = 0;
    auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
    if (val.empty() || ec != std::errc() || p != val.data() + val.size() || v < 0) {
      return InvalidArgument("scoring weights " + Quote(text) + ": value " + Quote(val) + " of " +
                             std::string(key) + " is not an integer 0..2147483647");
    }
    (idx == 0 ? w.slot : idx == 1 ? w.core : w.memory) = v;
    any = any || v > 0;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!any) return InvalidArgument("scoring weights " + Quote(text) + ": all weights are 0");
  return w;
}

std::string FormatScoringWeights(const ScoringWeights& w) {
  return "slot=" + std::to_string(w.slot) + ",core=" + std::to_string(w.core) +
         ",memory=" + std::to_string(w.memory);
}

std::vector<std::string> SplitCommaList(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = Trim(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

// HAMi's GPU policies, alone or chained ("binpack,numa"): binpack and spread choose the GPU
// policy, numa binds to one NUMA node, mutex makes the pod's cards exclusive, topology-aware
// (NVLink pair scores, which this scheduler does not have) keeps the policy and warns. A value
// with an unknown word (or an empty one) is ignored as a whole with a warning and the
// configured policy stands, as HAMi does (GetGPUSchedulerPolicyByPod): a HAMi-valid pod is
// never refused for it.
static void ApplyGpuPolicyChain(std::string_view text, PodOptions& o) {
  std::vector<std::string> items = SplitCommaList(text);
  for (const std::string& item : items) {
    if (item != "binpack" && item != "spread" && item != "numa" && item != "mutex" &&
        item != "topology-aware") {
      o.warnings.push_back(std::string(kGpuPolicyAnnotation) + ": unknown policy " + Quote(item) +
                           " (known: binpack, spread, topology-aware, mutex, numa); the "
                           "annotation is ignored and the configured policy stands, as HAMi does");
      return;
    }
  }
  if (items.empty()) {
    o.warnings.push_back(std::string(kGpuPolicyAnnotation) +
                         " is empty; the configured policy stands, as HAMi does");
    return;
  }
  for (const std::string& item : items) {
    if (item == "binpack" || item == "spread") {
      o.gpu_policy = *ParseGpuPolicy(item);
    } else if (item == "numa") {
      o.numa_bind = true;
    } else if (item == "mutex") {
      o.exclusive = true;
    } else {
      o.warnings.push_back(
          "gpu-scheduler-policy topology-aware: no NVLink pair scores here; "
          "GPUs are chosen by the binpack/spread policy");
    }
  }
}

StatusOr<PodOptions> ParsePodOptions(const std::map<std::string, std::string>& annotations) {
  PodOptions o;
  auto get = [&](const char* key) -> const std::string* {
    auto it = annotations.find(key);
    return it == annotations.end() ? nullptr : &it->second;
  };
  if (auto* v = get(kUseGpuTypeAnnotation)) o.use_types = SplitCommaList(*v);
  if (auto* v = get(kNoUseGpuTypeAnnotation)) o.nouse_types = SplitCommaList(*v);
  if (auto* v = get(kUseGpuUuidAnnotation)) o.use_uuids = SplitCommaList(*v);
  if (auto* v = get(kNoUseGpuUuidAnnotation)) o.nouse_uuids = SplitCommaList(*v);
  if (auto* v = get(kNumaBindAnnotation)) {
    // Go's strconv.ParseBool, as HAMi reads it (1 t T TRUE true True / 0 f F FALSE false False),
    // plus any case of true/false. HAMi takes anything else as false: so do we, with a warning.
    std::string_view t = Trim(*v);
    std::string b = Lower(t);
    if (b == "true" || b == "1" || t == "t" || t == "T") {
      o.numa_bind = true;
    } else if (b == "false" || b == "0" || t == "f" || t == "F") {
      o.numa_bind = false;
    } else {
      o.warnings.push_back(std::string(kNumaBindAnnotation) + ": " + Quote(*v) +
                           " is not a boolean; taken as false, as HAMi does");
    }
  }
  if (auto* v = get(kVgpuModeAnnotation)) {
    auto m = ParseVgpuMode(Trim(*v));
    if (!m.ok())
      return InvalidArgument(std::string(kVgpuModeAnnotation) + ": " + m.status().message());
    o.mode = *m;
  }
  if (auto* v = get(kNodePolicyAnnotation)) {
    // HAMi ignores a value it does not know (the configured node policy stands): so do we,
    // with a warning, rather than refuse a pod HAMi schedules.
    auto p = ParseNodePolicy(Trim(*v));
    if (p.ok()) {
      o.node_policy = *p;
    } else {
      o.warnings.push_back(std::string(kNodePolicyAnnotation) + ": " + p.status().message() +
                           "; the annotation is ignored and the configured policy stands, as "
                           "HAMi does");
    }
  }
  if (auto* v = get(kGpuPolicyAnnotation)) ApplyGpuPolicyChain(*v, o);
  if (auto* v = get(kScoringWeightsAnnotation)) {
    auto w = ParseScoringWeights(*v);
    if (!w.ok())
      return InvalidArgument(std::string(kScoringWeightsAnnotation) + ": " + w.status().message());
    o.weights = *w;
  }
  return o;
}

bool ResolvedPod::UsesGpu() const {
  for (const auto& c : init_containers)
    if (c.count > 0) return true;
  for (const auto& c : containers)
    if (c.count > 0) return true;
  return false;
}

namespace {

StatusOr<ResolvedContainer> ResolveOne(const ContainerRequest& r, const SchedulerConfig& cfg,
                                       const std::string& where) {
  ResolvedContainer out;
  auto bad = [&](const std::string& what) { return InvalidArgument(where + ": " + what); };
  if (r.gpu_count && *r.gpu_count < 0) return bad("negative GPU count");
  if (r.gpu_count && *r.gpu_count > 64)
    return bad("GPU count " + std::to_string(*r.gpu_count) + " > 64");
  if (r.memory_mib && *r.memory_mib < 0) return bad("negative GPU memory");
  if (r.memory_percent && (*r.memory_percent < 0 || *r.memory_percent > 100))
    return bad("GPU memory percentage " + std::to_string(*r.memory_percent) + " not in 0..100");
  if (r.cores && (*r.cores < 0 || *r.cores > 100))
    return bad("GPU cores " + std::to_string(*r.cores) + " not in 0..100");
  // HAMi passes any priority to CUDA_TASK_PRIORITY (0 is high; HAMi-core treats others as low).
  if (r.priority && *r.priority < 0)
    return bad("priority " + std::to_string(*r.priority) + " is negative");
  // Memory and a percentage together: memory wins, as in HAMi (below).
  if (r.gpu_count) {
    out.count = *r.gpu_count;
  } else if (r.memory_mib || r.memory_percent || r.cores) {
    out.count = cfg.default_gpu_num;
  }
  if (out.count == 0) return ResolvedContainer{};
  if (r.memory_mib && *r.memory_mib > 0) {
    out.memory_mib = *r.memory_mib;
  } else if (r.memory_percent && *r.memory_percent > 0) {
    out.memory_percent = *r.memory_percent;
  } else if (cfg.default_memory_mib > 0) {
    out.memory_mib = cfg.default_memory_mib;
  } else {
    out.memory_percent = 100;
  }
  out.cores = r.cores ? *r.cores : cfg.default_cores;
  if (out.cores < 0 || out.cores > 100) return bad("default GPU cores not in 0..100");
  out.priority = r.priority ? *r.priority : -1;
  return out;
}

}  // namespace

StatusOr<ResolvedPod> Resolve(const PodRequest& pod, const SchedulerConfig& config) {
  ResolvedPod out;
  out.init_containers.reserve(pod.init_containers.size());
  out.containers.reserve(pod.containers.size());
  for (size_t i = 0; i < pod.init_containers.size(); ++i) {
    auto c = ResolveOne(pod.init_containers[i], config, "init container " + std::to_string(i));
    if (!c.ok()) return c.status();
    out.init_containers.push_back(*c);
  }
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    auto c = ResolveOne(pod.containers[i], config, "container " + std::to_string(i));
    if (!c.ok()) return c.status();
    out.containers.push_back(*c);
  }
  out.options = pod.options;
  out.node_policy = pod.options.node_policy.value_or(config.node_policy);
  out.gpu_policy = pod.options.gpu_policy.value_or(config.gpu_policy);
  out.weights = pod.options.weights.value_or(config.weights);
  if (pod.options.exclusive) {
    for (auto* list : {&out.init_containers, &out.containers})
      for (auto& c : *list)
        if (c.count > 0) c.cores = 100;
  }
  if (out.weights.slot < 0 || out.weights.core < 0 || out.weights.memory < 0 ||
      int64_t{out.weights.slot} + out.weights.core + out.weights.memory <= 0) {
    return InvalidArgument("scoring weights " + FormatScoringWeights(out.weights) +
                           ": need non-negative weights, at least one > 0");
  }
  return out;
}

}  // namespace hami::sched
