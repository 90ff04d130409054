// ClusterState (engine.h): per-GPU usage kept incrementally from pod placements.
#include <algorithm>
#include <cctype>
#include <set>

#include "sched/engine.h"

namespace hami::sched {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void Add(GpuUsage& into, const GpuUsage& u, int sign) {
  into.used_mem_mib += sign * u.used_mem_mib;
  into.used_cores += sign * u.used_cores;
  into.used_slices += sign * u.used_slices;
  into.exclusive += sign * u.exclusive;
}

void MaxInto(GpuUsage& into, const GpuUsage& u) {
  into.used_mem_mib = std::max(into.used_mem_mib, u.used_mem_mib);
  into.used_cores = std::max(into.used_cores, u.used_cores);
  into.used_slices = std::max(into.used_slices, u.used_slices);
  into.exclusive = std::max(into.exclusive, u.exclusive);
}

}  // namespace

ClusterState::ClusterState() = default;
ClusterState::~ClusterState() = default;
ClusterState::ClusterState(const ClusterState&) = default;
ClusterState& ClusterState::operator=(const ClusterState&) = default;
ClusterState::ClusterState(ClusterState&&) noexcept = default;
ClusterState& ClusterState::operator=(ClusterState&&) noexcept = default;

Status ClusterState::ValidateNode(const NodeInfo& node) {
  if (node.name.empty()) return InvalidArgument("node with an empty name");
  std::set<std::string_view> uuids;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    const GpuInfo& g = node.gpus[i];
    std::string where = "node " + node.name + " GPU " + std::to_string(i);
    if (g.uuid.empty()) return InvalidArgument(where + ": empty UUID");
    where += " (" + g.uuid + ")";
    if (!uuids.insert(g.uuid).second) return InvalidArgument(where + ": duplicate UUID");
    if (g.memory_mib <= 0) return InvalidArgument(where + ": memory must be > 0");
    if (g.cores <= 0) return InvalidArgument(where + ": cores must be > 0");
    if (g.split_count <= 0) return InvalidArgument(where + ": split count must be > 0");
  }
  return Status::Ok();
}

Status ClusterState::ValidatePlacement(std::string_view uid, std::string_view node,
                                       const PodPlacement& p) {
  if (uid.empty()) return InvalidArgument("placement with an empty pod uid");
  std::string where = "placement of pod " + std::string(uid);
  if (node.empty()) return InvalidArgument(where + ": empty node name");
  if (p.num_init < 0 || static_cast<size_t>(p.num_init) > p.containers.size())
    return InvalidArgument(where + ": num_init " + std::to_string(p.num_init) + " outside 0.." +
                           std::to_string(p.containers.size()));
  for (size_t c = 0; c < p.containers.size(); ++c) {
    const ContainerDevices& devs = p.containers[c];
    for (size_t d = 0; d < devs.size(); ++d) {
      std::string w = where + " container " + std::to_string(c) + " device " + std::to_string(d);
      if (devs[d].uuid.empty()) return InvalidArgument(w + ": empty UUID");
      if (devs[d].used_mem_mib < 0) return InvalidArgument(w + ": negative memory");
      if (devs[d].used_cores < 0) return InvalidArgument(w + ": negative cores");
      for (size_t e = 0; e < d; ++e)
        if (devs[e].uuid == devs[d].uuid)
          return InvalidArgument(w + ": GPU " + devs[d].uuid + " twice in one container");
    }
  }
  return Status::Ok();
}

// Pod-level usage per GPU: init containers run one at a time before the app containers, so
// a GPU carries max(max over init containers, sum over app containers) in each dimension.
std::vector<ClusterState::Contribution> ClusterState::Contributions(const PodPlacement& p) {
  std::vector<Contribution> init, app;
  auto find = [](std::vector<Contribution>& v, const std::string& uuid) -> GpuUsage& {
    for (auto& c : v)
      if (c.uuid == uuid) return c.usage;
    v.push_back(Contribution{uuid, {}});
    return v.back().usage;
  };
  for (size_t c = 0; c < p.containers.size(); ++c) {
    bool is_init = static_cast<int32_t>(c) < p.num_init;
    for (const DeviceAlloc& d : p.containers[c]) {
      GpuUsage u{d.used_mem_mib, d.used_cores, 1, d.used_cores >= 100 ? 1 : 0};
      if (is_init) {
        MaxInto(find(init, d.uuid), u);
      } else {
        Add(find(app, d.uuid), u, +1);
      }
    }
  }
  for (const auto& c : init) MaxInto(find(app, c.uuid), c.usage);
  std::sort(app.begin(), app.end(),
            [](const Contribution& a, const Contribution& b) { return a.uuid < b.uuid; });
  return app;
}

ClusterState::NodeEntry* ClusterState::Entry(std::string_view name) {
  auto it = node_index_.find(name);
  return it == node_index_.end() ? nullptr : &nodes_[it->second];
}
const ClusterState::NodeEntry* ClusterState::Entry(std::string_view name) const {
  auto it = node_index_.find(name);
  return it == node_index_.end() ? nullptr : &nodes_[it->second];
}

void ClusterState::RecomputeAggregates(NodeEntry& n) {
  n.max_free_mem = 0;
  n.max_free_cores = 0;
  n.free_slots = 0;
  n.empty_gpus = 0;
  n.available_gpus = 0;
  n.total_mem = n.used_mem = n.total_cores = n.used_cores = n.total_slots = n.used_slots = 0;
  for (const GpuSlot& g : n.gpus) {
    n.total_mem += g.memory_mib;
    n.total_cores += g.cores;
    n.total_slots += g.split_count;
    n.used_mem += g.usage.used_mem_mib;
    n.used_cores += g.usage.used_cores;
    n.used_slots += g.usage.used_slices;
    if (!g.healthy) continue;
    if (g.usage.used_slices == 0) ++n.empty_gpus;
    if (g.usage.exclusive > 0 || g.usage.used_slices >= g.split_count) continue;
    ++n.available_gpus;
    n.free_slots += g.split_count - g.usage.used_slices;
    n.max_free_mem = std::max(n.max_free_mem, g.memory_mib - g.usage.used_mem_mib);
    n.max_free_cores = std::max(n.max_free_cores, g.cores - g.usage.used_cores);
  }
  n.inv_total_mem = n.total_mem > 0 ? 1.0 / static_cast<double>(n.total_mem) : 0;
  n.inv_total_cores = n.total_cores > 0 ? 1.0 / static_cast<double>(n.total_cores) : 0;
  n.inv_total_slots = n.total_slots > 0 ? 1.0 / static_cast<double>(n.total_slots) : 0;
}

void ClusterState::ApplyPod(const PodRecord& rec, int sign) {
  NodeEntry* n = Entry(rec.node);
  if (n == nullptr) return;
  for (const Contribution& c : rec.contributions) {
    for (size_t i = 0; i < n->gpus.size(); ++i) {
      if (n->info.gpus[i].uuid == c.uuid) {
        Add(n->gpus[i].usage, c.usage, sign);
        break;
      }
    }
  }
  RecomputeAggregates(*n);
}

void ClusterState::InstallNode(NodeInfo node, uint32_t slot) {
  NodeEntry& n = nodes_[slot];
  n = NodeEntry{};
  n.gpus.resize(node.gpus.size());
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    const GpuInfo& g = node.gpus[i];
    GpuSlot& s = n.gpus[i];
    s.memory_mib = g.memory_mib;
    s.cores = g.cores;
    s.split_count = g.split_count;
    s.numa = g.numa;
    s.index = g.index;
    s.healthy = g.healthy;
    s.mode = g.mode;
    s.inv_split = 1.0f / static_cast<float>(g.split_count);
    s.inv_cores = 1.0f / static_cast<float>(g.cores);
    s.inv_mem = 1.0 / static_cast<double>(g.memory_mib);
    n.types_lower.push_back(Lower(g.type));
  }
  n.uniform_memory_mib = node.gpus.empty() ? 0 : node.gpus[0].memory_mib;
  for (const GpuInfo& g : node.gpus)
    if (g.memory_mib != n.uniform_memory_mib) n.uniform_memory_mib = 0;
  n.info = std::move(node);
  n.live = true;
  // Count the pods already recorded for this node (also those seen before the node).
  auto it = pods_by_node_.find(n.info.name);
  if (it != pods_by_node_.end()) {
    for (const std::string& uid : it->second) {
      const PodRecord& rec = pods_.find(uid)->second;
      for (const Contribution& c : rec.contributions)
        for (size_t i = 0; i < n.gpus.size(); ++i)
          if (n.info.gpus[i].uuid == c.uuid) {
            Add(n.gpus[i].usage, c.usage, +1);
            break;
          }
    }
  }
  RecomputeAggregates(n);
}

Status ClusterState::AddNode(NodeInfo node) {
  HAMI_RETURN_IF_ERROR(ValidateNode(node));
  if (node_index_.contains(node.name))
    return {StatusCode::kAlreadyExists, "node " + node.name + " already known"};
  uint32_t slot;
  if (!free_entries_.empty()) {
    slot = free_entries_.back();
    free_entries_.pop_back();
  } else {
    slot = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  node_index_.emplace(node.name, slot);
  InstallNode(std::move(node), slot);
  ++live_nodes_;
  return Status::Ok();
}

Status ClusterState::UpdateNode(NodeInfo node) {
  HAMI_RETURN_IF_ERROR(ValidateNode(node));
  auto it = node_index_.find(node.name);
  if (it == node_index_.end()) return NotFound("node " + node.name + " unknown");
  InstallNode(std::move(node), it->second);
  return Status::Ok();
}

Status ClusterState::UpsertNode(NodeInfo node) {
  if (node_index_.contains(node.name)) return UpdateNode(std::move(node));
  return AddNode(std::move(node));
}

Status ClusterState::RemoveNode(std::string_view name) {
  auto it = node_index_.find(name);
  if (it == node_index_.end()) return NotFound("node " + std::string(name) + " unknown");
  uint32_t slot = it->second;
  node_index_.erase(it);
  nodes_[slot] = NodeEntry{};
  free_entries_.push_back(slot);
  --live_nodes_;
  return Status::Ok();
}

Status ClusterState::AddPlacement(std::string_view pod_uid, std::string_view node,
                                  const PodPlacement& placement) {
  HAMI_RETURN_IF_ERROR(ValidatePlacement(pod_uid, node, placement));
  if (pods_.contains(pod_uid)) HAMI_RETURN_IF_ERROR(RemovePlacement(pod_uid));
  PodRecord rec{std::string(node), placement, Contributions(placement)};
  ApplyPod(rec, +1);
  pods_by_node_[rec.node].emplace_back(pod_uid);
  pods_.emplace(std::string(pod_uid), std::move(rec));
  return Status::Ok();
}

Status ClusterState::RemovePlacement(std::string_view pod_uid) {
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) return NotFound("no placement for pod " + std::string(pod_uid));
  ApplyPod(it->second, -1);
  auto bn = pods_by_node_.find(it->second.node);
  if (bn != pods_by_node_.end()) {
    auto& v = bn->second;
    auto pos = std::find(v.begin(), v.end(), pod_uid);
    if (pos != v.end()) {
      *pos = std::move(v.back());
      v.pop_back();
    }
    if (v.empty()) pods_by_node_.erase(bn);
  }
  pods_.erase(it);
  return Status::Ok();
}

Status ClusterState::RestoreFromPlacements(std::span<const PlacedPod> pods) {
  for (const PlacedPod& p : pods)
    HAMI_RETURN_IF_ERROR(ValidatePlacement(p.uid, p.node, p.placement));
  pods_.clear();
  pods_by_node_.clear();
  for (NodeEntry& n : nodes_) {
    if (!n.live) continue;
    for (GpuSlot& g : n.gpus) g.usage = GpuUsage{};
    RecomputeAggregates(n);
  }
  for (const PlacedPod& p : pods) {
    Status st = AddPlacement(p.uid, p.node, p.placement);
    if (!st.ok()) return Internal("restore after validation: " + st.message());
  }
  return Status::Ok();
}

bool ClusterState::HasPlacement(std::string_view pod_uid) const { return pods_.contains(pod_uid); }

const NodeInfo* ClusterState::FindNode(std::string_view name) const {
  const NodeEntry* n = Entry(name);
  return n ? &n->info : nullptr;
}

std::vector<std::string> ClusterState::NodeNames() const {
  std::vector<std::string> out;
  out.reserve(live_nodes_);
  for (const NodeEntry& n : nodes_)
    if (n.live) out.push_back(n.info.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<GpuUsage> ClusterState::Usage(std::string_view node, std::string_view uuid) const {
  const NodeEntry* n = Entry(node);
  if (n == nullptr) return std::nullopt;
  for (size_t i = 0; i < n->gpus.size(); ++i)
    if (n->info.gpus[i].uuid == uuid) return n->gpus[i].usage;
  return std::nullopt;
}

std::map<std::string, std::vector<GpuUsage>> ClusterState::UsageSnapshot() const {
  std::map<std::string, std::vector<GpuUsage>> out;
  for (const NodeEntry& n : nodes_) {
    if (!n.live) continue;
    auto& v = out[n.info.name];
    for (const GpuSlot& g : n.gpus) v.push_back(g.usage);
  }
  return out;
}

}  // namespace hami::sched
