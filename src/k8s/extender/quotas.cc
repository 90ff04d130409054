#include "k8s/extender/quotas.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "common/prom_text.h"

namespace hami::k8s {
namespace {

const std::string& NameOf(const ResourceNames& names, sched::QuotaDim dim) {
  switch (dim) {
    case sched::QuotaDim::kMemory:
      return names.memory;
    case sched::QuotaDim::kCores:
      return names.cores;
    case sched::QuotaDim::kCards:
      break;
  }
  return names.count;
}

std::string Meta(const Json& obj, const char* key) {
  const Json* meta = obj.is_object() && obj.contains("metadata") ? &obj["metadata"] : nullptr;
  if (meta == nullptr || !meta->is_object() || !meta->contains(key)) return "";
  const Json& v = (*meta)[key];
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t Scale(int64_t v, double factor) {
  if (factor == 1) return v;
  double scaled = std::floor(static_cast<double>(v) * factor);
  if (scaled >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(scaled);
}

}  // namespace

std::string QuotaKey(const ResourceNames& names, sched::QuotaDim dim) {
  return "limits." + NameOf(names, dim);
}

std::string QuotaNamespace(const Json& quota) { return Meta(quota, "namespace"); }
std::string QuotaName(const Json& quota) { return Meta(quota, "name"); }

StatusOr<sched::QuotaLimits> QuotaLimitsFromResourceQuota(const Json& quota,
                                                          const ResourceNames& names,
                                                          double memory_factor) {
  sched::QuotaLimits limits;
  if (!quota.is_object() || !quota.contains("spec") || !quota["spec"].is_object() ||
      !quota["spec"].contains("hard")) {
    return limits;
  }
  const Json& hard = quota["spec"]["hard"];
  const std::string where = "ResourceQuota " + QuotaNamespace(quota) + "/" + QuotaName(quota);
  if (!hard.is_object()) return InvalidArgument(where + ": spec.hard is not an object");
  for (int i = 0; i < sched::kQuotaDims; ++i) {
    auto dim = static_cast<sched::QuotaDim>(i);
    std::string key = QuotaKey(names, dim);
    auto it = hard.find(key);
    if (it == hard.end()) continue;
    auto v = ParseQuantity(*it);
    if (!v.ok()) return InvalidArgument(where + " " + key + ": " + v.status().message());
    limits.Set(dim, dim == sched::QuotaDim::kMemory ? Scale(*v, memory_factor) : *v);
  }
  return limits;
}

sched::QuotaLimits QuotaLimitsOrClosed(const Json& quota, const ResourceNames& names,
                                       double memory_factor, std::string* error) {
  auto limits = QuotaLimitsFromResourceQuota(quota, names, memory_factor);
  if (error != nullptr) *error = limits.ok() ? "" : limits.status().message();
  if (limits.ok()) return *limits;
  // Read key by key: the readable ones keep their values, an unreadable one becomes 0.
  sched::QuotaLimits closed;
  const Json* hard = nullptr;
  if (quota.is_object() && quota.contains("spec") && quota["spec"].is_object() &&
      quota["spec"].contains("hard") && quota["spec"]["hard"].is_object()) {
    hard = &quota["spec"]["hard"];
  }
  for (int i = 0; i < sched::kQuotaDims; ++i) {
    auto dim = static_cast<sched::QuotaDim>(i);
    if (hard == nullptr) {
      closed.Set(dim, 0);
      continue;
    }
    auto it = hard->find(QuotaKey(names, dim));
    if (it == hard->end()) continue;
    auto v = ParseQuantity(*it);
    int64_t value = v.ok() ? *v : 0;
    closed.Set(dim, dim == sched::QuotaDim::kMemory ? Scale(value, memory_factor) : value);
  }
  return closed;
}

std::string QuotaMetricsText(const std::vector<sched::QuotaBook::Row>& rows,
                             const ResourceNames& names) {
  struct Form {
    const char* name;
    const char* ns_label;
    const char* quota_label;
  };
  const Form forms[] = {{"hami_resource_quota_used", "namespace", "quota_name"},
                        {"QuotaUsed", "quotanamespace", "quotaName"}};
  prom::TextWriter out;
  for (const Form& f : forms) {
    out.Family(f.name, "gauge", "resourcequota usage for a certain device");
    for (const auto& row : rows) {
      out.Sample(f.name,
                 {{f.ns_label, row.owner},
                  {f.quota_label, NameOf(names, row.dim)},
                  {"limit", std::to_string(row.limit)}},
                 static_cast<double>(row.used));
    }
  }
  return out.Take();
}

}  // namespace hami::k8s
