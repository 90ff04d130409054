#include "sched/quota.h"

#include <algorithm>

namespace hami::sched {

const char* QuotaDimName(QuotaDim d) {
  switch (d) {
    case QuotaDim::kMemory:
      return "gpumem";
    case QuotaDim::kCores:
      return "gpucores";
    case QuotaDim::kCards:
      return "gpu";
  }
  return "?";
}

int64_t QuotaAmount::Get(QuotaDim d) const {
  switch (d) {
    case QuotaDim::kMemory:
      return memory_mib;
    case QuotaDim::kCores:
      return cores;
    case QuotaDim::kCards:
      return cards;
  }
  return 0;
}

QuotaAmount& QuotaAmount::operator+=(const QuotaAmount& o) {
  memory_mib += o.memory_mib;
  cores += o.cores;
  cards += o.cards;
  return *this;
}

QuotaAmount& QuotaAmount::operator-=(const QuotaAmount& o) {
  memory_mib -= o.memory_mib;
  cores -= o.cores;
  cards -= o.cards;
  return *this;
}

std::optional<int64_t> QuotaLimits::Get(QuotaDim d) const {
  switch (d) {
    case QuotaDim::kMemory:
      return memory_mib;
    case QuotaDim::kCores:
      return cores;
    case QuotaDim::kCards:
      return cards;
  }
  return std::nullopt;
}

void QuotaLimits::Set(QuotaDim d, std::optional<int64_t> value) {
  switch (d) {
    case QuotaDim::kMemory:
      memory_mib = value;
      break;
    case QuotaDim::kCores:
      cores = value;
      break;
    case QuotaDim::kCards:
      cards = value;
      break;
  }
}

bool WithinQuota(const QuotaLimits& limits, const QuotaAmount& used, const QuotaAmount& asked) {
  for (int i = 0; i < kQuotaDims; ++i) {
    auto d = static_cast<QuotaDim>(i);
    auto limit = limits.Get(d);
    int64_t want = asked.Get(d);
    if (limit && want > 0 && used.Get(d) + want > *limit) return false;
  }
  return true;
}

QuotaLimits Tighter(const QuotaLimits& a, const QuotaLimits& b) {
  QuotaLimits out;
  for (int i = 0; i < kQuotaDims; ++i) {
    auto d = static_cast<QuotaDim>(i);
    auto x = a.Get(d), y = b.Get(d);
    if (x && y) {
      out.Set(d, std::min(*x, *y));
    } else {
      out.Set(d, x ? x : y);
    }
  }
  return out;
}

namespace {

QuotaAmount Max(const QuotaAmount& a, const QuotaAmount& b) {
  return {std::max(a.memory_mib, b.memory_mib), std::max(a.cores, b.cores),
          std::max(a.cards, b.cards)};
}

QuotaAmount ContainerUsage(const ResolvedContainer& c, int64_t card_memory_mib) {
  if (c.count <= 0) return {};
  // The engine's per-card rule (rules: NeedMem): MiB when given, else the percentage of the card.
  int64_t mem = c.memory_mib > 0 ? c.memory_mib : card_memory_mib * c.memory_percent / 100;
  return {mem * c.count, int64_t{c.cores} * c.count, c.count};
}

}  // namespace

QuotaAmount PlacementQuotaUsage(const PodPlacement& placement) {
  QuotaAmount init_max, app_sum;
  for (std::size_t i = 0; i < placement.containers.size(); ++i) {
    QuotaAmount c;
    for (const DeviceAlloc& d : placement.containers[i]) {
      c += QuotaAmount{d.used_mem_mib, d.used_cores, 1};
    }
    if (static_cast<int32_t>(i) < placement.num_init) {
      init_max = Max(init_max, c);
    } else {
      app_sum += c;
    }
  }
  return Max(init_max, app_sum);
}

QuotaAmount RequestQuotaUsage(const ResolvedPod& pod, int64_t card_memory_mib) {
  QuotaAmount init_max, app_sum;
  for (const auto& c : pod.init_containers)
    init_max = Max(init_max, ContainerUsage(c, card_memory_mib));
  for (const auto& c : pod.containers) app_sum += ContainerUsage(c, card_memory_mib);
  return Max(init_max, app_sum);
}

bool UsageDependsOnCard(const ResolvedPod& pod) {
  auto depends = [](const ResolvedContainer& c) {
    return c.count > 0 && c.memory_mib == 0 && c.memory_percent > 0;
  };
  return std::any_of(pod.init_containers.begin(), pod.init_containers.end(), depends) ||
         std::any_of(pod.containers.begin(), pod.containers.end(), depends);
}

namespace {

// The numbers of one message in one unit: GiB when all are whole GiB, else MiB.
struct Units {
  std::string used, limit, asked, unit;
  std::string asked_unit;  // cards: "2 asked" reads better than "1 GPUs asked"
};

Units Format(QuotaDim dim, int64_t used, int64_t limit, int64_t asked) {
  switch (dim) {
    case QuotaDim::kMemory: {
      bool gib = used % 1024 == 0 && limit % 1024 == 0 && asked % 1024 == 0;
      int64_t div = gib ? 1024 : 1;
      return {std::to_string(used / div), std::to_string(limit / div), std::to_string(asked / div),
              gib ? " GiB" : " MiB", gib ? " GiB" : " MiB"};
    }
    case QuotaDim::kCores:
      return {std::to_string(used), std::to_string(limit), std::to_string(asked), " %", " %"};
    case QuotaDim::kCards:
      return {std::to_string(used), std::to_string(limit), std::to_string(asked), " GPUs", ""};
  }
  return {};
}

}  // namespace

std::string DescribeQuotaExceeded(std::string_view kind, std::string_view owner, QuotaDim dim,
                                  int64_t used, int64_t limit, int64_t asked) {
  Units u = Format(dim, used, limit, asked);
  std::string out;
  out.append(kind).append(" ").append(owner).append(" would exceed its ");
  out.append(QuotaDimName(dim)).append(" quota: ");
  out += u.used + "/" + u.limit + u.unit + " used, " + u.asked + u.asked_unit + " asked";
  return out;
}

QuotaBook::QuotaBook(std::string kind) : kind_(std::move(kind)) {}

QuotaBook::Owner& QuotaBook::OwnerEntry(std::string_view owner) {
  auto it = owners_.find(owner);
  if (it == owners_.end()) it = owners_.emplace(std::string(owner), Owner{}).first;
  return it->second;
}

void QuotaBook::DropIfEmpty(std::string_view owner) {
  auto it = owners_.find(owner);
  if (it != owners_.end() && it->second.sources.empty() && it->second.used.IsZero()) {
    owners_.erase(it);
  }
}

void QuotaBook::SetLimits(std::string_view owner, std::string_view source,
                          const QuotaLimits& limits) {
  if (limits.empty()) {
    RemoveLimits(owner, source);
    return;
  }
  Owner& o = OwnerEntry(owner);
  o.sources.insert_or_assign(std::string(source), limits);
  o.limits = {};
  for (const auto& [name, l] : o.sources) o.limits = Tighter(o.limits, l);
}

bool QuotaBook::RemoveLimits(std::string_view owner, std::string_view source) {
  auto it = owners_.find(owner);
  if (it == owners_.end()) return false;
  Owner& o = it->second;
  auto s = o.sources.find(source);
  if (s == o.sources.end()) return false;
  o.sources.erase(s);
  o.limits = {};
  for (const auto& [name, l] : o.sources) o.limits = Tighter(o.limits, l);
  DropIfEmpty(owner);
  return true;
}

void QuotaBook::AddUsage(std::string_view uid, std::string_view owner, const QuotaAmount& amount) {
  RemoveUsage(uid);
  if (amount.IsZero()) return;
  OwnerEntry(owner).used += amount;
  pods_.emplace(std::string(uid), PodUse{std::string(owner), amount});
}

bool QuotaBook::RemoveUsage(std::string_view uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return false;
  std::string owner = std::move(it->second.owner);
  QuotaAmount amount = it->second.amount;
  pods_.erase(it);
  auto o = owners_.find(owner);
  if (o != owners_.end()) {
    o->second.used -= amount;
    DropIfEmpty(owner);
  }
  return true;
}

bool QuotaBook::HasUsage(std::string_view uid) const { return pods_.find(uid) != pods_.end(); }

void QuotaBook::ClearUsage() {
  pods_.clear();
  for (auto it = owners_.begin(); it != owners_.end();) {
    it->second.used = {};
    it = it->second.sources.empty() ? owners_.erase(it) : std::next(it);
  }
}

bool QuotaBook::Limited(std::string_view owner) const {
  auto it = owners_.find(owner);
  return it != owners_.end() && !it->second.sources.empty();
}

QuotaLimits QuotaBook::Limits(std::string_view owner) const {
  auto it = owners_.find(owner);
  return it == owners_.end() ? QuotaLimits{} : it->second.limits;
}

QuotaAmount QuotaBook::Used(std::string_view owner) const {
  auto it = owners_.find(owner);
  return it == owners_.end() ? QuotaAmount{} : it->second.used;
}

Status QuotaBook::Check(std::string_view owner, const QuotaAmount& asked) const {
  auto it = owners_.find(owner);
  if (it == owners_.end() || it->second.sources.empty()) return Status::Ok();
  const Owner& o = it->second;
  // A pod that asks nothing of a dimension passes it even when an over-full quota was lowered
  // below the usage: it does not make things worse.
  if (WithinQuota(o.limits, o.used, asked)) return Status::Ok();
  for (int i = 0; i < kQuotaDims; ++i) {
    auto d = static_cast<QuotaDim>(i);
    auto limit = o.limits.Get(d);
    int64_t want = asked.Get(d);
    if (!limit || want == 0 || o.used.Get(d) + want <= *limit) continue;
    return ResourceExhausted(DescribeQuotaExceeded(kind_, owner, d, o.used.Get(d), *limit, want));
  }
  return Status::Ok();
}

Status QuotaBook::CheckEverFits(std::string_view owner, const QuotaAmount& asked,
                                std::string_view what) const {
  QuotaLimits limits = Limits(owner);
  for (int i = 0; i < kQuotaDims; ++i) {
    auto d = static_cast<QuotaDim>(i);
    auto limit = limits.Get(d);
    if (!limit || asked.Get(d) <= *limit) continue;
    Units u = Format(d, 0, *limit, asked.Get(d));
    std::string msg = kind_ + " " + std::string(owner) + ": " + std::string(what) + " asks " +
                      u.asked + u.asked_unit + " of " + QuotaDimName(d) + ", more than its whole " +
                      QuotaDimName(d) + " quota of " + u.limit + u.unit;
    return ResourceExhausted(std::move(msg));
  }
  return Status::Ok();
}

std::vector<QuotaBook::Row> QuotaBook::Snapshot() const {
  std::vector<Row> rows;
  for (const auto& [name, o] : owners_) {
    if (o.sources.empty()) continue;
    for (int i = 0; i < kQuotaDims; ++i) {
      auto d = static_cast<QuotaDim>(i);
      if (auto limit = o.limits.Get(d)) rows.push_back({name, d, o.used.Get(d), *limit});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.owner != b.owner ? a.owner < b.owner : a.dim < b.dim;
  });
  return rows;
}

std::size_t QuotaBook::limited_owner_count() const {
  return static_cast<std::size_t>(std::count_if(
      owners_.begin(), owners_.end(), [](const auto& kv) { return !kv.second.sources.empty(); }));
}

}  // namespace hami::sched
