// The scheduling engine: cluster usage kept incrementally (ClusterState) and the decision
// functions over it (Engine: filter, score, schedule). Pure computation, no I/O, no locks.
//
// Threading: neither class locks. A ClusterState may be read by several threads at once
// (Engine methods only read it) as long as no thread mutates it meanwhile; callers wrap it
// in a mutex (or a reader/writer lock, or shard it) themselves. Engine is immutable after
// construction and safe to share.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "sched/model.h"
#include "sched/reason.h"

namespace hami::sched {

// Used resources of one GPU (the pod-level accounting of PodPlacement::num_init applied).
struct GpuUsage {
  int64_t used_mem_mib = 0;
  int32_t used_cores = 0;
  int32_t used_slices = 0;  // containers (slices) sharing the card
  int32_t exclusive = 0;    // how many of them hold it exclusively (cores=100)
  bool operator==(const GpuUsage&) const = default;
};

struct PlacedPod {
  std::string uid;
  std::string node;
  PodPlacement placement;
};

class Engine;

// Internal layout of ClusterState, read directly by the engine. Not an interface.
namespace internal {

// Hot copy of what the filters read of one GPU, next to its usage.
struct GpuSlot {
  GpuUsage usage;
  int64_t memory_mib = 0;
  int32_t cores = 0;
  int32_t split_count = 0;
  int32_t numa = 0;
  int32_t index = 0;
  bool healthy = true;
  VgpuMode mode = VgpuMode::kHamiCore;
  float inv_split = 0, inv_cores = 0;  // 1/split_count, 1/cores: scores multiply
  double inv_mem = 0;                  // 1/memory_mib
};
struct NodeEntry {
  NodeInfo info;
  std::vector<GpuSlot> gpus;             // parallel to info.gpus; kept small for the scan
  std::vector<std::string> types_lower;  // parallel: for case-insensitive type matching
  bool live = false;
  // Aggregates over healthy GPUs, kept current on every change, so most nodes are rejected
  // or scored without looking at GPUs.
  int64_t max_free_mem = 0;
  int32_t max_free_cores = 0;
  int32_t free_slots = 0;          // sum over GPUs
  int32_t empty_gpus = 0;          // healthy GPUs with no slice
  int32_t available_gpus = 0;      // healthy, not held exclusively, with a free slot
  int64_t uniform_memory_mib = 0;  // every GPU's memory when all are equal, else 0
  int64_t total_mem = 0, used_mem = 0;
  int64_t total_cores = 0, used_cores = 0;
  int64_t total_slots = 0, used_slots = 0;
  double inv_total_mem = 0, inv_total_cores = 0, inv_total_slots = 0;  // 0 when the total is 0
};

}  // namespace internal

// GPUs of every node and what placed pods use of them. Every mutation touches only the node
// concerned (O(GPUs of that node + pods on that node at worst)); nothing rebuilds the cluster.
class ClusterState {
 public:
  ClusterState();
  ~ClusterState();
  ClusterState(const ClusterState&);
  ClusterState& operator=(const ClusterState&);
  ClusterState(ClusterState&&) noexcept;
  ClusterState& operator=(ClusterState&&) noexcept;

  // Errors: kInvalidArgument (empty name, empty or duplicate GPU UUID, memory <= 0, cores <= 0,
  // split count <= 0), kAlreadyExists (AddNode of a known name), kNotFound (UpdateNode or
  // RemoveNode of an unknown name). Placements already recorded for the node (also those
  // recorded before the node was known) are counted against the new GPU list by UUID; UUIDs
  // the node no longer has are kept on record and count again if the GPU comes back.
  Status AddNode(NodeInfo node);
  Status UpdateNode(NodeInfo node);
  Status UpsertNode(NodeInfo node);  // AddNode or UpdateNode
  Status RemoveNode(std::string_view name);

  // Records what a pod uses. A pod already recorded under `pod_uid` is replaced. The node need
  // not be known yet (informers deliver pods and nodes in any order); RemoveNode keeps the
  // node's placements on record too. A device with cores >= 100 holds its card exclusively.
  // Errors:
  // kInvalidArgument (empty uid or node, negative memory/cores, empty UUID, the same UUID
  // twice in one container, num_init outside 0..containers).
  Status AddPlacement(std::string_view pod_uid, std::string_view node,
                      const PodPlacement& placement);
  // Errors: kNotFound.
  Status RemovePlacement(std::string_view pod_uid);
  // Drops every placement and records these instead (nodes stay). Same errors as
  // AddPlacement; on error nothing is changed. A later duplicate uid replaces an earlier one.
  Status RestoreFromPlacements(std::span<const PlacedPod> pods);

  std::size_t node_count() const { return live_nodes_; }
  std::size_t placement_count() const { return pods_.size(); }
  bool HasPlacement(std::string_view pod_uid) const;
  // The stored node (GPU list as given), or nullptr. Valid until the next mutation.
  const NodeInfo* FindNode(std::string_view name) const;
  std::vector<std::string> NodeNames() const;  // sorted
  // The usage of one GPU; nullopt for an unknown node or UUID.
  std::optional<GpuUsage> Usage(std::string_view node, std::string_view uuid) const;
  // node name -> usage per GPU in the node's GPU order; for tests, metrics and debugging.
  std::map<std::string, std::vector<GpuUsage>> UsageSnapshot() const;

 private:
  friend class Engine;
  using GpuSlot = internal::GpuSlot;
  using NodeEntry = internal::NodeEntry;
  struct Contribution {
    std::string uuid;
    GpuUsage usage;
  };
  struct PodRecord {
    std::string node;
    PodPlacement placement;
    std::vector<Contribution> contributions;  // per GPU UUID, pod-level (init/app) accounting
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  static Status ValidateNode(const NodeInfo& node);
  static Status ValidatePlacement(std::string_view uid, std::string_view node,
                                  const PodPlacement& p);
  static std::vector<Contribution> Contributions(const PodPlacement& p);
  void InstallNode(NodeInfo node, uint32_t slot);
  void ApplyPod(const PodRecord& rec, int sign);
  void RecomputeAggregates(NodeEntry& n);
  NodeEntry* Entry(std::string_view name);
  const NodeEntry* Entry(std::string_view name) const;

  std::vector<NodeEntry> nodes_;
  std::vector<uint32_t> free_entries_;  // reusable nodes_ indices
  StringMap<uint32_t> node_index_;
  StringMap<PodRecord> pods_;
  StringMap<std::vector<std::string>> pods_by_node_;
  std::size_t live_nodes_ = 0;
};

// What Filter says about one node.
struct NodeVerdict {
  // Points into the candidates or the ClusterState: valid until either changes.
  std::string_view node;
  Reason reason = Reason::kFits;
  // When it fits: the finer score (0..1'000'000, higher is better for the pod's node policy)
  // and the same on kube-scheduler's extender scale 0..10.
  int64_t score = 0;
  int32_t extender_score = 0;
  bool fits() const { return reason == Reason::kFits; }
};

struct FilterSummary {
  int32_t total = 0;
  int32_t fitting = 0;
  std::array<int32_t, kReasonCount> counts{};  // nodes per reason (index = Reason)
  // Like kube-scheduler: "0/40 nodes fit: 31 insufficient GPU memory, 9 no GPU of type A100"
  // (reasons by count, then by enum order).
  std::string message;
};

struct FilterResult {
  std::vector<NodeVerdict> nodes;  // in candidate order; for "all nodes", unspecified order
  FilterSummary summary;
  // Parallel to `nodes`, only from FilterWithPlacements: the GPUs the pod would get on each
  // fitting node (what Place() returns), nullopt for the others.
  std::vector<std::optional<PodPlacement>> placements;
};

struct Decision {
  bool scheduled = false;
  std::string node;  // when scheduled
  PodPlacement placement;
  int64_t score = 0;
  int32_t extender_score = 0;
  FilterSummary summary;  // message explains a failure
};

// Filter is also kube-scheduler's prioritize step: each fitting node carries its score.
class Engine {
 public:
  explicit Engine(SchedulerConfig config = {});
  const SchedulerConfig& config() const { return config_; }

  // All calls: kInvalidArgument when the pod request is invalid (see Resolve()). A pod
  // without GPUs fits every candidate with score 0 (also nodes unknown to the state).
  StatusOr<FilterResult> Filter(const ClusterState& state, const PodRequest& pod) const;
  StatusOr<FilterResult> Filter(const ClusterState& state, const PodRequest& pod,
                                std::span<const std::string> candidates) const;

  // Best fitting node by the pod's node policy (ties: smallest name) and its placement,
  // GPUs chosen by the GPU policy (ties: smallest index). Does not record the placement:
  // the caller calls ClusterState::AddPlacement once the pod is bound.
  StatusOr<Decision> Schedule(const ClusterState& state, const PodRequest& pod) const;
  StatusOr<Decision> Schedule(const ClusterState& state, const PodRequest& pod,
                              std::span<const std::string> candidates) const;

  // Filter, plus the chosen GPUs on every fitting node (one placement per fitting node, so
  // slower; for callers that show or cache them).
  StatusOr<FilterResult> FilterWithPlacements(const ClusterState& state, const PodRequest& pod,
                                              std::span<const std::string> candidates) const;

  // The placement Schedule would choose on `node`. Errors: kInvalidArgument (request),
  // kResourceExhausted "node N: <reason text> (<ReasonName>)" when it does not fit, kNotFound
  // for an unknown node.
  StatusOr<PodPlacement> Place(const ClusterState& state, const PodRequest& pod,
                               std::string_view node) const;

  // Same as above on an already resolved request (see Resolve()); nullopt candidates means
  // every node of the state.
  FilterResult FilterResolved(const ClusterState& state, const ResolvedPod& pod,
                              std::optional<std::span<const std::string>> candidates) const;
  Decision ScheduleResolved(const ClusterState& state, const ResolvedPod& pod,
                            std::optional<std::span<const std::string>> candidates) const;

 private:
  SchedulerConfig config_;
};

}  // namespace hami::sched
