// HAMi's GPU quotas in Kubernetes: the `limits.<resource>` keys of ResourceQuota objects that
// the scheduler enforces (docs/quotas.md), and the quota metric it exports. The accounting
// itself is sched::QuotaBook; the extender keeps one under its state lock.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/extender/pod_request.h"
#include "sched/quota.h"

namespace hami::k8s {

// The ResourceQuota keys read, as HAMi reads them: "limits." + the configured resource name
// (`limits.nvidia.com/gpumem` in MiB, `limits.nvidia.com/gpucores` in percent points of a card,
// `limits.nvidia.com/gpu` in vGPUs). Other keys are Kubernetes' own business.
std::string QuotaKey(const ResourceNames& names, sched::QuotaDim dim);

// The ceilings of one ResourceQuota (spec.hard). The memory ceiling is multiplied by
// `memory_factor`, as placements count MiB x memoryFactor (HAMi does the same). A quota without
// any of the keys gives empty limits. Errors: kInvalidArgument naming the quota and key for a
// value that is not a whole non-negative quantity ("500m", "-1", "abc").
StatusOr<sched::QuotaLimits> QuotaLimitsFromResourceQuota(const Json& quota,
                                                          const ResourceNames& names,
                                                          double memory_factor);

// Fail closed: the limits of a quota whose value cannot be read are 0 for that key (nothing
// may be used until the object is fixed), so a typo never lifts a ceiling. `error` receives the
// parse error ("" when there was none).
sched::QuotaLimits QuotaLimitsOrClosed(const Json& quota, const ResourceNames& names,
                                       double memory_factor, std::string* error);

// "namespace/name" of a quota object, the QuotaBook's source key is its name.
std::string QuotaNamespace(const Json& quota);
std::string QuotaName(const Json& quota);

// Prometheus text (format 0.0.4) of HAMi's quota metric for every bounded dimension of every
// namespace with a quota: `hami_resource_quota_used{namespace,quota_name,limit}` (quota_name the
// resource, e.g. "nvidia.com/gpumem"; limit the ceiling as text; value the usage), and the same
// as `QuotaUsed{quotanamespace,quotaName,limit}`, the name of older HAMi releases.
std::string QuotaMetricsText(const std::vector<sched::QuotaBook::Row>& rows,
                             const ResourceNames& names);

}  // namespace hami::k8s
