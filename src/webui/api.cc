#include "webui/api.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace hami::webui {
namespace {

using nlohmann::json;

constexpr size_t kMaxParamLen = 253;  // a DNS name; longer values are not names we show
constexpr size_t kOverviewItems = 10;

std::string Lower(std::string_view v) {
  std::string o(v);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

bool Contains(std::string_view hay, const std::string& needle_lower) {
  return needle_lower.empty() || Lower(hay).find(needle_lower) != std::string::npos;
}

json Opt(int64_t v) { return v < 0 ? json(nullptr) : json(v); }
json OptD(double v) { return v < 0 ? json(nullptr) : json(std::round(v * 1000) / 1000); }

// Cards of `s` that match the query's node, type and namespace (a card matches a namespace when
// a workload of it holds a slice there).
bool GpuMatches(const Snapshot& s, size_t i, const Query& q, const std::string& type_lower) {
  const GpuRow& g = s.gpus[i];
  if (!q.node.empty() && g.node != q.node) return false;
  if (!type_lower.empty() && Lower(g.type).find(type_lower) == std::string::npos) return false;
  if (!q.ns.empty()) {
    bool any = false;
    for (uint32_t w : s.gpu_workloads[i]) any = any || s.workloads[w].ns == q.ns;
    if (!any) return false;
  }
  return true;
}

bool WorkloadMatches(const Snapshot& s, const WorkloadRow& w, const Query& q,
                     const std::string& type_lower, const std::string& q_lower) {
  if (!q.node.empty() && w.node != q.node) return false;
  if (!q.ns.empty() && w.ns != q.ns) return false;
  if (!type_lower.empty()) {
    bool any = false;
    for (const auto& sl : w.slices) {
      auto it = s.gpu_by_uuid.find(sl.uuid);
      any = any || (it != s.gpu_by_uuid.end() &&
                    Lower(s.gpus[it->second].type).find(type_lower) != std::string::npos);
    }
    if (!any) return false;
  }
  if (q.state == "throttled" && !w.throttled) return false;
  if ((q.state == "running" || q.state == "allocated") && w.state != q.state) return false;
  return q_lower.empty() || Contains(w.name, q_lower) || Contains(w.id, q_lower) ||
         Contains(w.command, q_lower) || Contains(w.user, q_lower);
}

const char* GpuState(const GpuRow& g) {
  if (!g.healthy) return "unhealthy";
  return g.slices > 0 ? "allocated" : "idle";
}

json Paged(json items, size_t total, const Query& q) {
  return {{"total", total}, {"page", q.page}, {"page_size", q.page_size}, {"items", items}};
}

// [first, last) of the page within `total` rows.
std::pair<size_t, size_t> PageRange(size_t total, const Query& q) {
  const auto first = static_cast<size_t>(
      std::min<int64_t>(static_cast<int64_t>(total), (q.page - 1) * q.page_size));
  return {first, std::min(total, first + static_cast<size_t>(q.page_size))};
}

json SliceJson(const Snapshot& s, const SliceRow& sl) {
  json j = {{"uuid", sl.uuid},
            {"node", sl.node},
            {"limit_mib", sl.limit_mib},
            {"cores", sl.cores},
            {"used_mib", Opt(sl.used_mib)},
            {"util", OptD(sl.util)},
            {"processes", sl.processes}};
  auto it = s.gpu_by_uuid.find(sl.uuid);
  if (it != s.gpu_by_uuid.end()) {
    j["index"] = s.gpus[it->second].index;
    j["type"] = s.gpus[it->second].type;
    j["card_memory_mib"] = s.gpus[it->second].memory_mib;
  }
  return j;
}

json WorkloadJson(const Snapshot& s, const WorkloadRow& w) {
  int64_t limit = 0, used = 0;
  bool used_known = false;
  double util = 0;
  int util_n = 0;
  json slices = json::array();
  for (const auto& sl : w.slices) {
    limit += sl.limit_mib;
    if (sl.used_mib >= 0) used += sl.used_mib, used_known = true;
    if (sl.util >= 0) util += sl.util, util_n++;
    slices.push_back(SliceJson(s, sl));
  }
  const int64_t now = s.taken_unix_ms / 1000;
  return {{"id", w.id},
          {"kind", w.kind},
          {"namespace", w.ns},
          {"name", w.name},
          {"user", w.user},
          {"node", w.node},
          {"command", w.command},
          {"state", w.state},
          {"created_unix", w.created_unix},
          {"age_s", w.created_unix > 0 ? std::max<int64_t>(0, now - w.created_unix) : 0},
          {"throttled", w.throttled},
          {"gpus", w.slices.size()},
          {"memory_limit_mib", limit},
          {"memory_used_mib", used_known ? json(used) : json(nullptr)},
          {"util", util_n > 0 ? OptD(util / util_n) : json(nullptr)},
          {"slices", slices}};
}

json GpuJson(const Snapshot& s, size_t i) {
  const GpuRow& g = s.gpus[i];
  json holders = json::array();
  for (uint32_t w : s.gpu_workloads[i]) {
    const WorkloadRow& wl = s.workloads[w];
    for (const auto& sl : wl.slices) {
      if (sl.uuid != g.uuid) continue;
      holders.push_back({{"id", wl.id},
                         {"name", wl.name},
                         {"namespace", wl.ns},
                         {"limit_mib", sl.limit_mib},
                         {"cores", sl.cores},
                         {"used_mib", Opt(sl.used_mib)},
                         {"util", OptD(sl.util)},
                         {"throttled", wl.throttled}});
    }
  }
  return {{"node", g.node},
          {"uuid", g.uuid},
          {"index", g.index},
          {"type", g.type},
          {"healthy", g.healthy},
          {"state", GpuState(g)},
          {"memory_mib", g.memory_mib},
          {"allocated_mib", g.allocated_mib},
          {"allocated_cores", g.allocated_cores},
          {"used_mib", Opt(g.used_mib)},
          {"util", OptD(g.util)},
          {"slices", g.slices},
          {"split_count", g.split_count},
          {"exclusive", g.exclusive},
          {"holders", holders}};
}

}  // namespace

json PendingItemJson(const PendingRow& p) {
  return {{"id", p.id},
          {"kind", p.kind},
          {"namespace", p.ns},
          {"name", p.name},
          {"user", p.user},
          {"gpus", p.gpus},
          {"memory_mib", p.memory_mib},
          {"memory_percent", p.memory_percent},
          {"cores", p.cores},
          {"position", p.position},
          {"since_unix", p.since_unix},
          {"reason", p.reason},
          {"quota", p.quota}};
}

StatusOr<Query> ParseQuery(const std::multimap<std::string, std::string>& params,
                           std::string_view route) {
  Query q;
  for (const auto& [k, v] : params) {
    if (v.size() > kMaxParamLen) {
      return InvalidArgument("parameter \"" + k + "\" is longer than " +
                             std::to_string(kMaxParamLen) + " characters");
    }
    if (k == "node")
      q.node = v;
    else if (k == "namespace")
      q.ns = v;
    else if (k == "type")
      q.type = v;
    else if (k == "q")
      q.q = v;
    else if (k == "state")
      q.state = v;
    else if (k == "sort")
      q.sort = v;
    else if (k == "range")
      continue;  // history only; checked there
    else if (k == "page" || k == "page_size") {
      int64_t n = 0;
      if (v.empty() || v.size() > 9 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          (n = std::stoll(v)) < 1) {
        return InvalidArgument("parameter \"" + k + "\" must be a positive number, got \"" + v +
                               "\"");
      }
      (k == "page" ? q.page : q.page_size) = n;
    } else {
      return InvalidArgument("unknown parameter \"" + k + "\"");
    }
  }
  static const std::set<std::string> kStates = {"",          "idle",    "allocated",
                                                "unhealthy", "running", "throttled"};
  static const std::set<std::string> kSorts = {"",    "node", "free",   "used",
                                               "age", "name", "memory", "util"};
  // Quotas belong to namespaces, users and groups, not to nodes or cards: a node or type
  // filter there would silently show everything, so it is refused.
  static const std::set<std::string> kQuotaStates = {"", "near"};
  static const std::set<std::string> kQuotaSorts = {"", "name", "used"};
  const bool quotas = route == "quotas";
  if (quotas && !q.node.empty())
    return InvalidArgument("parameter \"node\" does not apply to quotas");
  if (quotas && !q.type.empty())
    return InvalidArgument("parameter \"type\" does not apply to quotas");
  if (!(quotas ? kQuotaStates : kStates).count(q.state)) {
    return InvalidArgument("unknown state \"" + q.state + "\"" +
                           (quotas ? " for quotas (near)" : ""));
  }
  if (!(quotas ? kQuotaSorts : kSorts).count(q.sort)) {
    return InvalidArgument("unknown sort \"" + q.sort + "\"" +
                           (quotas ? " for quotas (name, used)" : ""));
  }
  q.page_size = std::min(q.page_size, kMaxPageSize);
  return q;
}

json MetaJson(const Snapshot& s) {
  return {{"mode", s.mode},
          {"source", s.source},
          {"fake", s.fake},
          {"taken_unix_ms", s.taken_unix_ms},
          {"nodes", s.nodes.size()},
          {"gpus", s.gpus.size()},
          {"types", s.types},
          {"namespaces", s.namespaces},
          // Small hosts refresh every second (a new `hami run` shows at once); clusters less
          // often, since every viewer's poll is a scan of every card.
          {"poll_ms", s.mode == "host" ? 1000 : 5000}};
}

json OverviewJson(const Snapshot& s, const Query& q) {
  const std::string type_lower = Lower(q.type);
  int64_t cards = 0, allocated = 0, used = 0, idle = 0, unhealthy = 0;
  int64_t mem = 0, mem_alloc = 0, mem_used = 0, cores_alloc = 0;
  double util = 0;
  bool used_known = false;
  std::set<std::string> nodes;
  json idle_items = json::array();
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    if (!GpuMatches(s, i, q, type_lower)) continue;
    const GpuRow& g = s.gpus[i];
    cards++;
    nodes.insert(g.node);
    allocated += g.slices > 0 ? 1 : 0;
    const bool busy = g.used_mib > 0 || g.util > 0.01;
    used += busy ? 1 : 0;
    unhealthy += g.healthy ? 0 : 1;
    if (g.healthy && g.slices == 0) {
      idle++;
      if (idle_items.size() < kOverviewItems) {
        idle_items.push_back({{"node", g.node},
                              {"uuid", g.uuid},
                              {"index", g.index},
                              {"type", g.type},
                              {"memory_mib", g.memory_mib}});
      }
    }
    mem += g.memory_mib;
    mem_alloc += g.allocated_mib;
    cores_alloc += g.allocated_cores;
    if (g.used_mib >= 0) mem_used += g.used_mib, used_known = true;
    if (g.util >= 0) util += g.util;
  }
  int64_t workloads = 0, throttled = 0;
  for (const auto& w : s.workloads) {
    if (!WorkloadMatches(s, w, q, type_lower, "")) continue;
    workloads++;
    throttled += w.throttled ? 1 : 0;
  }
  json pending = json::array();
  int64_t pending_total = 0;
  for (const auto& p : s.pending) {
    if (!q.ns.empty() && p.ns != q.ns) continue;
    if (pending.size() < kOverviewItems) pending.push_back(PendingItemJson(p));
    pending_total++;
  }
  json j = MetaJson(s);
  j["cards"] = {{"total", cards}, {"allocated", allocated}, {"used", used},
                {"idle", idle},   {"unhealthy", unhealthy}, {"nodes", nodes.size()}};
  j["memory"] = {{"total_mib", mem},
                 {"allocated_mib", mem_alloc},
                 {"used_mib", used_known ? json(mem_used) : json(nullptr)}};
  j["compute"] = {
      {"total", cards * 100}, {"allocated", cores_alloc}, {"used", std::round(util * 1000) / 10}};
  j["workloads"] = {{"total", workloads}, {"throttled", throttled}};
  j["pending"] = {{"total", pending_total}, {"items", pending}};
  j["idle_cards"] = {{"total", idle}, {"items", idle_items}};
  // The quotas' summary comes from the quotas endpoint itself, so the two never disagree.
  Query all;
  all.ns = q.ns;
  all.page_size = 1;
  const json quotas = QuotasJson(s, all);
  j["quotas"] = {{"total", quotas["total"]},
                 {"near", quotas["near"]},
                 {"waiting", quotas["waiting"]["total"]}};
  return j;
}

json NodesJson(const Snapshot& s, const Query& q) {
  const std::string type_lower = Lower(q.type), q_lower = Lower(q.q);
  std::vector<const NodeRow*> rows;
  for (const auto& n : s.nodes) {
    if (!q.node.empty() && n.name != q.node) continue;
    if (!Contains(n.name, q_lower)) continue;
    if (!type_lower.empty() &&
        std::none_of(n.types.begin(), n.types.end(), [&](const std::string& t) {
          return Lower(t).find(type_lower) != std::string::npos;
        })) {
      continue;
    }
    rows.push_back(&n);
  }
  if (q.sort == "free") {
    std::stable_sort(rows.begin(), rows.end(), [](const NodeRow* a, const NodeRow* b) {
      return a->memory_mib - a->allocated_mib > b->memory_mib - b->allocated_mib;
    });
  }
  auto [first, last] = PageRange(rows.size(), q);
  json items = json::array();
  for (size_t i = first; i < last; ++i) {
    const NodeRow& n = *rows[i];
    items.push_back(
        {{"name", n.name},
         {"gpus", n.gpus},
         {"healthy_gpus", n.healthy_gpus},
         {"idle_gpus", n.idle_gpus},
         {"memory_mib", n.memory_mib},
         {"allocated_mib", n.allocated_mib},
         {"used_mib", n.usage_known ? json(n.used_mib) : json(nullptr)},
         {"cores", n.cores},
         {"allocated_cores", n.allocated_cores},
         {"util", n.usage_known ? OptD(n.util_sum / std::max(1, n.gpus)) : json(nullptr)},
         {"slices", n.slices},
         {"workloads", n.workloads},
         {"types", n.types}});
  }
  return Paged(items, rows.size(), q);
}

json GpusJson(const Snapshot& s, const Query& q) {
  const std::string type_lower = Lower(q.type), q_lower = Lower(q.q);
  std::vector<size_t> rows;
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    if (!GpuMatches(s, i, q, type_lower)) continue;
    const GpuRow& g = s.gpus[i];
    if (!q.state.empty() && q.state != GpuState(g)) continue;
    if (!q_lower.empty() && !Contains(g.uuid, q_lower) && !Contains(g.node, q_lower)) continue;
    rows.push_back(i);
  }
  auto key = [&](size_t i) { return std::make_pair(s.gpus[i].node, s.gpus[i].index); };
  if (q.sort == "free") {
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
      return s.gpus[a].memory_mib - s.gpus[a].allocated_mib >
             s.gpus[b].memory_mib - s.gpus[b].allocated_mib;
    });
  } else if (q.sort == "used") {
    std::stable_sort(rows.begin(), rows.end(),
                     [&](size_t a, size_t b) { return s.gpus[a].used_mib > s.gpus[b].used_mib; });
  } else {
    std::sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  }
  auto [first, last] = PageRange(rows.size(), q);
  json items = json::array();
  for (size_t i = first; i < last; ++i) items.push_back(GpuJson(s, rows[i]));
  return Paged(items, rows.size(), q);
}

json WorkloadsJson(const Snapshot& s, const Query& q) {
  const std::string type_lower = Lower(q.type), q_lower = Lower(q.q);
  std::vector<const WorkloadRow*> rows;
  for (const auto& w : s.workloads) {
    if (WorkloadMatches(s, w, q, type_lower, q_lower)) rows.push_back(&w);
  }
  auto mem = [](const WorkloadRow* w) {
    int64_t m = 0;
    for (const auto& sl : w->slices) m += std::max<int64_t>(0, sl.used_mib);
    return m;
  };
  auto util = [](const WorkloadRow* w) {
    double u = 0;
    for (const auto& sl : w->slices) u += std::max(0.0, sl.util);
    return u;
  };
  using W = const WorkloadRow*;
  if (q.sort == "name") {
    std::stable_sort(rows.begin(), rows.end(),
                     [](W a, W b) { return std::tie(a->ns, a->name) < std::tie(b->ns, b->name); });
  } else if (q.sort == "memory") {
    std::stable_sort(rows.begin(), rows.end(), [&](W a, W b) { return mem(a) > mem(b); });
  } else if (q.sort == "util") {
    std::stable_sort(rows.begin(), rows.end(), [&](W a, W b) { return util(a) > util(b); });
  } else {  // newest first
    std::stable_sort(rows.begin(), rows.end(),
                     [](W a, W b) { return a->created_unix > b->created_unix; });
  }
  auto [first, last] = PageRange(rows.size(), q);
  json items = json::array();
  for (size_t i = first; i < last; ++i) items.push_back(WorkloadJson(s, *rows[i]));
  return Paged(items, rows.size(), q);
}

json PendingJson(const Snapshot& s, const Query& q) {
  const std::string q_lower = Lower(q.q);
  std::vector<const PendingRow*> rows;
  for (const auto& p : s.pending) {
    if (!q.ns.empty() && p.ns != q.ns) continue;
    if (!Contains(p.name, q_lower) && !Contains(p.reason, q_lower)) continue;
    rows.push_back(&p);
  }
  auto [first, last] = PageRange(rows.size(), q);
  json items = json::array();
  for (size_t i = first; i < last; ++i) items.push_back(PendingItemJson(*rows[i]));
  return Paged(items, rows.size(), q);
}

StatusOr<json> GpuDetailJson(const Snapshot& s, const std::string& uuid) {
  auto it = s.gpu_by_uuid.find(uuid);
  if (it == s.gpu_by_uuid.end()) return NotFound("no GPU \"" + uuid + "\"");
  json j = GpuJson(s, it->second);
  json workloads = json::array();
  for (uint32_t w : s.gpu_workloads[it->second]) {
    workloads.push_back(WorkloadJson(s, s.workloads[w]));
  }
  j["workloads"] = workloads;
  return j;
}

StatusOr<json> WorkloadDetailJson(const Snapshot& s, const std::string& id) {
  auto it = s.workload_by_id.find(id);
  if (it == s.workload_by_id.end()) return NotFound("no workload \"" + id + "\"");
  return WorkloadJson(s, s.workloads[it->second]);
}

StatusOr<int64_t> ParseRange(const std::string& text) {
  if (text.empty() || text == "15m") return 900;
  if (text == "1h") return 3600;
  if (text == "6h") return 6 * 3600;
  return InvalidArgument("range must be 15m, 1h or 6h, got \"" + text + "\"");
}

json HistoryJson(const HistorySeries& h, int64_t range_s) {
  json t = json::array(), used = json::array(), limit = json::array(), util = json::array(),
       cores = json::array();
  for (const auto& p : h.points) {
    t.push_back(p.t_unix);
    auto v = [&](double x, double scale) {
      return (!p.valid || x < 0) ? json(nullptr) : json(std::round(x * scale) / scale);
    };
    used.push_back(v(p.mem_used_mib, 1));
    limit.push_back(v(p.mem_limit_mib, 1));
    util.push_back(v(p.util, 1000));
    cores.push_back(v(p.cores_limit, 1000));
  }
  return {{"range_s", range_s},
          {"step_s", h.step_s},
          {"memory_total_mib", h.mem_total_mib},
          {"t", t},
          {"memory_used_mib", used},
          {"memory_limit_mib", limit},
          {"util", util},
          {"cores_limit", cores}};
}

}  // namespace hami::webui
