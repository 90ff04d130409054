// The web UI's JSON endpoints as pure functions of a Snapshot (and the History): query
// parsing with named errors, server-side filtering and paging, so a page of a 5,000-node
// cluster costs one scan and a small answer. docs/webui.md documents every field.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "webui/history.h"
#include "webui/model.h"

namespace hami::webui {

struct Query {
  std::string node;   // exact node name
  std::string ns;     // exact namespace
  std::string type;   // case-insensitive substring of the GPU type
  std::string q;      // case-insensitive substring of names, UUIDs, commands
  std::string state;  // gpus: idle|allocated|unhealthy; workloads: throttled|running|allocated
  std::string sort;   // gpus: node|free|used; workloads: age|name|memory|util; nodes: name|free
  int64_t page = 1;
  int64_t page_size = 50;
};

inline constexpr int64_t kMaxPageSize = 500;

// Parameters as the HTTP layer decoded them, for the endpoint `route` ("quotas" takes its own
// states and sorts and no node or GPU type; every other endpoint the common set). Errors:
// kInvalidArgument naming the parameter (unknown parameter, value too long, page not a positive
// number, unknown state or sort, a parameter the endpoint does not take).
StatusOr<Query> ParseQuery(const std::multimap<std::string, std::string>& params,
                           std::string_view route = "");

nlohmann::json MetaJson(const Snapshot& s);
nlohmann::json PendingItemJson(const PendingRow& p);
nlohmann::json OverviewJson(const Snapshot& s, const Query& q);
nlohmann::json NodesJson(const Snapshot& s, const Query& q);
nlohmann::json GpusJson(const Snapshot& s, const Query& q);
nlohmann::json WorkloadsJson(const Snapshot& s, const Query& q);
nlohmann::json PendingJson(const Snapshot& s, const Query& q);
// A page of quota rows (filtered by namespace, owner substring q, state "near": a dimension at
// 90 % or more of its ceiling; sorted by kind and owner, or "used": fullest first) and the
// requests a quota holds back (`waiting`, at most 50, same namespace and q filters).
nlohmann::json QuotasJson(const Snapshot& s, const Query& q);
// Errors: kNotFound.
StatusOr<nlohmann::json> GpuDetailJson(const Snapshot& s, const std::string& uuid);
StatusOr<nlohmann::json> WorkloadDetailJson(const Snapshot& s, const std::string& id);

// "15m", "1h", "6h" -> seconds. Errors: kInvalidArgument.
StatusOr<int64_t> ParseRange(const std::string& text);
nlohmann::json HistoryJson(const HistorySeries& h, int64_t range_s);

}  // namespace hami::webui
