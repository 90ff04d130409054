// GET <prefix>/api/quotas (docs/webui.md): every quota in force with used / limit per
// dimension, and the requests a quota holds back with the reason that names it.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>

#include "webui/api.h"

namespace hami::webui {
namespace {

using nlohmann::json;

// A dimension at or above this share of its ceiling is "near" its quota (highlighted).
constexpr double kNearFraction = 0.9;
constexpr size_t kWaitingItems = 50;

std::string Lower(std::string_view v) {
  std::string o(v);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// used / limit; a ceiling of 0 with nothing used is empty (0), with something used full (1+).
double Fraction(const QuotaUse& u) {
  if (u.limit < 0) return 0;
  if (u.limit == 0) return u.used > 0 ? 1 : 0;
  return static_cast<double>(u.used) / static_cast<double>(u.limit);
}

double MaxFraction(const QuotaRow& r) {
  return std::max({Fraction(r.memory_mib), Fraction(r.cores), Fraction(r.gpus)});
}

// null for a dimension without a ceiling: "no limit" is not "limit 0".
json UseJson(const QuotaUse& u) {
  if (u.limit < 0) return nullptr;
  return {{"used", u.used},
          {"limit", u.limit},
          {"fraction", std::round(Fraction(u) * 1000) / 1000},
          {"near", Fraction(u) >= kNearFraction}};
}

bool Matches(std::string_view ns, const std::string& want_ns, std::string_view text,
             const std::string& q_lower) {
  if (!want_ns.empty() && ns != want_ns) return false;
  return q_lower.empty() || Lower(text).find(q_lower) != std::string::npos;
}

}  // namespace

json QuotasJson(const Snapshot& s, const Query& q) {
  const std::string q_lower = Lower(q.q);
  std::vector<const QuotaRow*> rows;
  size_t near = 0;
  for (const auto& r : s.quotas) {
    if (!Matches(r.ns, q.ns, r.owner, q_lower)) continue;
    const bool is_near = MaxFraction(r) >= kNearFraction;
    near += is_near ? 1 : 0;  // of the rows the namespace and search select, whatever the tab
    if (q.state == "near" && !is_near) continue;
    rows.push_back(&r);
  }
  if (q.sort == "used") {
    std::stable_sort(rows.begin(), rows.end(), [](const QuotaRow* a, const QuotaRow* b) {
      return MaxFraction(*a) > MaxFraction(*b);
    });
  }
  const auto first = static_cast<size_t>(
      std::min<int64_t>(static_cast<int64_t>(rows.size()), (q.page - 1) * q.page_size));
  const size_t last = std::min(rows.size(), first + static_cast<size_t>(q.page_size));
  json items = json::array();
  for (size_t i = first; i < last; ++i) {
    const QuotaRow& r = *rows[i];
    const double f = MaxFraction(r);
    items.push_back({{"kind", r.kind},
                     {"owner", r.owner},
                     {"namespace", r.ns},
                     {"memory", UseJson(r.memory_mib)},
                     {"cores", UseJson(r.cores)},
                     {"gpus", UseJson(r.gpus)},
                     {"fraction", std::round(f * 1000) / 1000},
                     {"near", f >= kNearFraction}});
  }
  json waiting = json::array();
  size_t waiting_total = 0;
  for (const auto& p : s.pending) {
    if (!p.quota || !Matches(p.ns, q.ns, p.reason + "\n" + p.name + "\n" + p.user, q_lower)) {
      continue;
    }
    if (waiting.size() < kWaitingItems) waiting.push_back(PendingItemJson(p));
    waiting_total++;
  }
  return {{"mode", s.mode},
          {"enforced", s.quotas_enforced},
          {"configured", s.quotas.size()},
          {"near", near},
          {"resources",
           {{"memory", s.quota_names.memory},
            {"cores", s.quota_names.cores},
            {"gpus", s.quota_names.gpus}}},
          {"total", rows.size()},
          {"page", q.page},
          {"page_size", q.page_size},
          {"items", items},
          {"waiting", {{"total", waiting_total}, {"items", waiting}}}};
}

}  // namespace hami::webui
