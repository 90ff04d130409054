// Pod lookup by UID (pod_resolver.h).
#include "monitor/pod_resolver.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace hami::monitor {
namespace {

using Json = nlohmann::json;

constexpr char kMigAllocationsAnnotation[] = "hami.io/vgpu-mig-allocations";

// Init containers first, then containers: the order of HAMi's containerIndex.
std::vector<std::string> ContainerNames(const Json& pod) {
  std::vector<std::string> out;
  const auto spec = pod.find("spec");
  if (spec == pod.end() || !spec->is_object()) return out;
  for (const char* key : {"initContainers", "containers"}) {
    const auto list = spec->find(key);
    if (list == spec->end() || !list->is_array()) continue;
    for (const auto& c : *list) {
      const auto name = c.is_object() ? c.find("name") : c.end();
      out.push_back(name != c.end() && name->is_string() ? name->get<std::string>() : "");
    }
  }
  return out;
}

}  // namespace

StatusOr<std::vector<MigAllocation>> ParseMigAllocations(
    std::string_view json_text, const std::vector<std::string>& containers) {
  const Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return InvalidArgument("MIG allocations: not a JSON array");
  std::vector<MigAllocation> out;
  for (const auto& e : j) {
    if (!e.is_object()) return InvalidArgument("MIG allocations: an entry is not an object");
    const auto num = [&](const char* key) -> std::optional<int64_t> {
      const auto it = e.find(key);
      if (it == e.end() || it->is_null()) return std::nullopt;
      if (!it->is_number_integer()) return std::nullopt;
      return it->get<int64_t>();
    };
    const auto str = [&](const char* key) {
      const auto it = e.find(key);
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    for (const char* key :
         {"containerIndex", "deviceIndex", "gpuInstanceID", "computeInstanceID"}) {
      const auto it = e.find(key);
      if (it != e.end() && !it->is_null() && !it->is_number_integer()) {
        return InvalidArgument(std::string("MIG allocations: ") + key + " is not an integer");
      }
    }
    const auto gi = num("gpuInstanceID"), ci = num("computeInstanceID");
    // Not realised yet (HAMi's monitor skips these too).
    if (str("migUUID").empty() || !gi || !ci || *gi < 0 || *ci < 0) continue;
    const int64_t index = num("containerIndex").value_or(-1);
    if (index < 0 || index >= static_cast<int64_t>(containers.size())) {
      return InvalidArgument("MIG allocations: container index " + std::to_string(index) +
                             " out of range");
    }
    MigAllocation m;
    m.container = containers[static_cast<std::size_t>(index)];
    m.device_index = static_cast<int>(num("deviceIndex").value_or(0));
    m.gpu_uuid = str("gpuUUID");
    m.mig_uuid = str("migUUID");
    m.profile = str("profile");
    m.gpu_instance_id = static_cast<unsigned>(*gi);
    m.compute_instance_id = static_cast<unsigned>(*ci);
    out.push_back(std::move(m));
  }
  return out;
}

Status KubePodResolver::Refresh() {
  k8s::ListOptions opts;
  opts.field_selector = "spec.nodeName=" + node_;
  auto list = client_->List(k8s::Resource::Pods(), opts);
  std::lock_guard lock(mu_);
  listed_at_ = std::chrono::steady_clock::now();
  if (!list.ok()) return list.status();
  std::map<std::string, PodRef> pods;
  std::vector<MigAllocation> migs;
  for (const auto& item : list->items) {
    const auto meta = item.find("metadata");
    if (meta == item.end() || !meta->is_object()) continue;
    const auto str = [&](const char* key) {
      auto it = meta->find(key);
      return it != meta->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!str("uid").empty()) pods[str("uid")] = {str("namespace"), str("name")};
    const auto ann = meta->find("annotations");
    if (ann == meta->end() || !ann->is_object()) continue;
    const auto mig = ann->find(kMigAllocationsAnnotation);
    if (mig == ann->end() || !mig->is_string()) continue;
    auto parsed = ParseMigAllocations(mig->get<std::string>(), ContainerNames(item));
    if (!parsed.ok()) {  // HAMi's monitor logs and skips such a pod too
      log::Debug("pod {}/{}: {}", str("namespace"), str("name"), parsed.status().ToString());
      continue;
    }
    for (auto& m : *parsed) {
      m.ns = str("namespace");
      m.pod = str("name");
      migs.push_back(std::move(m));
    }
  }
  pods_ = std::move(pods);
  migs_ = std::move(migs);
  return Status::Ok();
}

std::optional<PodRef> KubePodResolver::Lookup(const std::string& pod_uid) {
  bool stale;
  {
    std::lock_guard lock(mu_);
    if (auto it = pods_.find(pod_uid); it != pods_.end()) return it->second;
    // Unknown UID: a new pod, or one that is gone. Relist, but not more than every second.
    stale = std::chrono::steady_clock::now() - listed_at_ >=
            std::min(refresh_, std::chrono::milliseconds(1000));
  }
  if (!stale) return std::nullopt;
  if (Status s = Refresh(); !s.ok()) log::Warn("cannot list pods of {}: {}", node_, s.ToString());
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

}  // namespace hami::monitor

namespace hami::monitor {

std::vector<MigAllocation> KubePodResolver::MigAllocations() {
  bool stale;
  {
    std::lock_guard lock(mu_);
    stale = std::chrono::steady_clock::now() - listed_at_ >= refresh_;
  }
  if (stale) {
    if (Status s = Refresh(); !s.ok()) log::Warn("cannot list pods of {}: {}", node_, s.ToString());
  }
  std::lock_guard lock(mu_);
  return migs_;
}

}  // namespace hami::monitor
