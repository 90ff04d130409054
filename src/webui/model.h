// What the web UI shows, independent of where it comes from: one Snapshot of cards, slices,
// workloads and pending requests, filled by a DataProvider (hami serve's daemon state, or the
// scheduler's cluster state plus the node monitors' usage). Plain data; no I/O, no locks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace hami::webui {

// One physical card: what it has, what was promised (allocated) and what is consumed (used).
struct GpuRow {
  std::string node;
  std::string uuid;
  int32_t index = 0;
  std::string type;  // "NVIDIA-H100 80GB HBM3"
  bool healthy = true;
  int64_t memory_mib = 0;
  int32_t split_count = 0;
  int64_t allocated_mib = 0;    // promised to slices
  int32_t allocated_cores = 0;  // percent of the card promised to slices
  int32_t slices = 0;
  bool exclusive = false;
  // Consumed; negative = unknown (no monitor answered). Filled by Finish() from the slices
  // when the provider leaves it unknown.
  int64_t used_mib = -1;
  double util = -1;  // 0..1 of the card's compute
};

// A workload's share of one card.
struct SliceRow {
  std::string uuid;
  std::string node;
  int64_t limit_mib = 0;  // 0 = no memory limit given (whole card)
  int32_t cores = 0;      // percent; 0 = no compute limit
  int64_t used_mib = -1;  // negative = unknown
  double util = -1;       // 0..1 of the card; negative = unknown
  // Monotonic GPU time charged to the slice (accounting busy_ns_total); the UI derives util
  // from two snapshots when the provider gives this instead of util. Negative = unknown.
  int64_t busy_ns = -1;
  int32_t processes = 0;
};

// A pod (Kubernetes) or a `hami run` job (single host) holding slices.
struct WorkloadRow {
  std::string id;    // "s3" or the pod UID: stable, URL-safe key
  std::string kind;  // "job" | "pod"
  std::string ns;    // namespace; "hami-run" for jobs
  std::string name;  // pod name or slice name
  std::string user;  // job owner (uid name) when known
  std::string node;
  std::string command;  // job command line (display only)
  std::string state;    // "running" | "allocated" (no process yet) | "exited"
  int64_t created_unix = 0;
  std::vector<SliceRow> slices;
  // Derived by Finish(): compute at its limit (the limiter holds it back).
  bool throttled = false;
};

// A GPU request that waits, with the scheduling engine's reason.
struct PendingRow {
  std::string id;
  std::string kind;  // "job" | "pod"
  std::string ns;
  std::string name;
  std::string user;
  int32_t gpus = 1;
  int64_t memory_mib = 0;  // per GPU; 0 = whole card or percent
  int32_t memory_percent = 0;
  int32_t cores = 0;
  int32_t position = 0;  // queue position (single host), 0 when unordered
  int64_t since_unix = 0;
  std::string reason;  // "0/1 nodes fit: 1 insufficient GPU memory"
  // Held back by a quota (its user's, group's or namespace's): `reason` names the quota.
  bool quota = false;
};

// One dimension of a quota: what the owner's slices hold and the ceiling.
struct QuotaUse {
  int64_t used = 0;
  int64_t limit = -1;  // negative: this dimension has no ceiling
};

// One owner's quota: a Kubernetes namespace (limits.nvidia.com/* of its ResourceQuotas), or a
// user or group of `hami serve` (--user-quota, --group-quota).
struct QuotaRow {
  std::string kind;     // "namespace" | "user" | "group"
  std::string owner;    // the namespace, or the rule's name ("alice", "1001")
  std::string ns;       // the namespace its workloads show under (a host's jobs: "hami-run")
  QuotaUse memory_mib;  // MiB as the user wrote the ceiling (memoryFactor taken out)
  QuotaUse cores;       // percent points of a card, summed over slices
  QuotaUse gpus;        // slices' cards (vGPUs)
};

// How the quota's three dimensions are written where they are configured.
struct QuotaNames {
  std::string memory = "gpumem", cores = "gpucores", gpus = "gpus";
};

// Per node aggregates (derived by Finish()).
struct NodeRow {
  std::string name;
  int32_t gpus = 0, healthy_gpus = 0, idle_gpus = 0;
  int64_t memory_mib = 0, allocated_mib = 0, used_mib = 0;
  int32_t cores = 0, allocated_cores = 0;
  double util_sum = 0;  // sum over cards of util (0..gpus)
  int32_t slices = 0, workloads = 0;
  bool usage_known = false;
  std::vector<std::string> types;
};

struct Snapshot {
  std::string mode;    // "host" | "cluster"
  std::string source;  // "nvml", "fake", "cluster state" ... (shown in the header)
  bool fake = false;
  int64_t taken_unix_ms = 0;
  std::vector<GpuRow> gpus;
  std::vector<WorkloadRow> workloads;
  std::vector<PendingRow> pending;
  // Quotas in force (sorted by kind then owner by the provider). `quotas_enforced` false: the
  // source does not enforce quotas at all (the scheduler runs with quotas off).
  std::vector<QuotaRow> quotas;
  bool quotas_enforced = true;
  QuotaNames quota_names;

  // Derived by Finish().
  std::vector<NodeRow> nodes;  // sorted by name
  std::unordered_map<std::string, size_t> gpu_by_uuid;
  std::unordered_map<std::string, size_t> workload_by_id;
  std::unordered_map<std::string, size_t> node_by_name;
  // Per card: indexes into workloads holding a slice of it.
  std::vector<std::vector<uint32_t>> gpu_workloads;
  std::vector<std::string> types, namespaces;  // sorted, distinct (filter choices)
};

// Fills the derived fields: util from busy_ns against `previous` (may be null), card usage
// summed from slices when unknown, throttling, node rows, indexes. Call once per snapshot.
void Finish(Snapshot& s, const Snapshot* previous);

// Where a Snapshot comes from. Collect() is called from the UI's sampler and request threads
// (never concurrently with itself); it must not block for long (it runs at most once a second).
class DataProvider {
 public:
  virtual ~DataProvider() = default;
  virtual Snapshot Collect() = 0;
};

}  // namespace hami::webui
