// The web UI's JSON endpoints as pure functions of a Snapshot (and the History): query
// parsing with named errors, server-side filtering and paging, so a page of a 5,000-node
// cluster costs one scan and a small answer. docs/webui.md documents every field.
#pragma once

#include <cstdint>
#include <map>
#include <string>

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

// Parameters as the HTTP layer decoded them. Errors: kInvalidArgument naming the parameter
// (unknown parameter, value too long, page not a positive number, unknown state or sort).
StatusOr<Query> ParseQuery(const std::multimap<std::string, std::string>& params);

nlohmann::json MetaJson(const Snapshot& s);
nlohmann::json OverviewJson(const Snapshot& s, const Query& q);
nlohmann::json NodesJson(const Snapshot& s, const Query& q);
nlohmann::json GpusJson(const Snapshot& s, const Query& q);
nlohmann::json WorkloadsJson(const Snapshot& s, const Query& q);
nlohmann::json PendingJson(const Snapshot& s, const Query& q);
// Errors: kNotFound.
StatusOr<nlohmann::json> GpuDetailJson(const Snapshot& s, const std::string& uuid);
StatusOr<nlohmann::json> WorkloadDetailJson(const Snapshot& s, const std::string& id);

// "15m", "1h", "6h" -> seconds. Errors: kInvalidArgument.
StatusOr<int64_t> ParseRange(const std::string& text);
nlohmann::json HistoryJson(const HistorySeries& h, int64_t range_s);

}  // namespace hami::webui
