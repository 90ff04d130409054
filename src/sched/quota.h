// Quotas: ceilings on GPU memory, compute and cards per owner (a Kubernetes namespace, or a user
// or group of `hami serve`) and the usage that placed pods hold against them, with the named
// reason a request is refused for. Pure data and arithmetic, no I/O, no locks (docs/quotas.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "sched/model.h"

namespace hami::sched {

// The three things a quota can bound, in the order they are checked.
enum class QuotaDim : uint8_t { kMemory = 0, kCores = 1, kCards = 2 };
inline constexpr int kQuotaDims = 3;
// HAMi's resource word for the dimension: "gpumem" | "gpucores" | "gpu".
const char* QuotaDimName(QuotaDim d);

// An amount in the units placements count: MiB (already x memoryFactor, as
// ContainerRequest::memory_mib), percent points of a card summed over cards, and vGPUs (one per
// device of a container, what `nvidia.com/gpu` counts).
struct QuotaAmount {
  int64_t memory_mib = 0;
  int64_t cores = 0;
  int64_t cards = 0;
  int64_t Get(QuotaDim d) const;
  QuotaAmount& operator+=(const QuotaAmount& o);
  QuotaAmount& operator-=(const QuotaAmount& o);
  bool IsZero() const { return memory_mib == 0 && cores == 0 && cards == 0; }
  bool operator==(const QuotaAmount&) const = default;
};

// A ceiling per dimension; nullopt: unbounded. 0 means nothing may be used (as in a Kubernetes
// ResourceQuota; HAMi reads 0 as "no limit").
struct QuotaLimits {
  std::optional<int64_t> memory_mib;
  std::optional<int64_t> cores;
  std::optional<int64_t> cards;
  std::optional<int64_t> Get(QuotaDim d) const;
  void Set(QuotaDim d, std::optional<int64_t> value);
  bool empty() const { return !memory_mib && !cores && !cards; }
  bool operator==(const QuotaLimits&) const = default;
};

// The rule of QuotaBook::Check without the message, for loops that test many asks against one
// owner: every dimension asked (> 0) with a ceiling stays within it.
bool WithinQuota(const QuotaLimits& limits, const QuotaAmount& used, const QuotaAmount& asked);

// Per dimension the smaller ceiling: every quota object of an owner applies at once.
QuotaLimits Tighter(const QuotaLimits& a, const QuotaLimits& b);

// What a placed pod holds: per dimension max(largest init container, sum of app containers),
// because init containers run one at a time before the app containers (PodPlacement::num_init;
// 0 counts every container as an app container, which over-counts, never under).
QuotaAmount PlacementQuotaUsage(const PodPlacement& placement);

// What a resolved request would hold on cards of `card_memory_mib` each (percentages of memory
// converted against it, rounded down as the engine does), same init/app rule.
QuotaAmount RequestQuotaUsage(const ResolvedPod& pod, int64_t card_memory_mib);

// True when a GPU container gives its memory as a percentage, so what it holds depends on the
// cards chosen (the default "whole card" is such a percentage).
bool UsageDependsOnCard(const ResolvedPod& pod);

// "namespace team-a would exceed its gpumem quota: 38/40 GiB used, 4 GiB asked". Memory is in
// GiB when all three numbers are whole GiB, else in MiB.
std::string DescribeQuotaExceeded(std::string_view kind, std::string_view owner, QuotaDim dim,
                                  int64_t used, int64_t limit, int64_t asked);

// Limits and usage of every owner. Usage is kept for owners without a ceiling too, so a quota
// created later is enforced against what is already running.
class QuotaBook {
 public:
  // `kind` names owners in messages: "namespace", "user", "group".
  explicit QuotaBook(std::string kind = "namespace");

  const std::string& kind() const { return kind_; }

  // Installs (or replaces) the ceilings of one quota object `source` of `owner` (Kubernetes:
  // the ResourceQuota's name). Several sources of one owner all apply (Tighter). Empty limits
  // remove the source.
  void SetLimits(std::string_view owner, std::string_view source, const QuotaLimits& limits);
  // False when the source was not installed.
  bool RemoveLimits(std::string_view owner, std::string_view source);

  // Records what pod `uid` of `owner` holds, replacing an earlier record of the uid (also one
  // under another owner). A zero amount removes the record.
  void AddUsage(std::string_view uid, std::string_view owner, const QuotaAmount& amount);
  bool RemoveUsage(std::string_view uid);  // false when the uid was not recorded
  bool HasUsage(std::string_view uid) const;
  // Drops every usage record (limits stay); for a rebuild from the pods.
  void ClearUsage();

  // True when the owner has at least one ceiling; everyone else skips quota work.
  bool Limited(std::string_view owner) const;
  QuotaLimits Limits(std::string_view owner) const;  // effective ceilings
  QuotaAmount Used(std::string_view owner) const;

  // Ok when `asked` on top of the owner's usage stays within every ceiling. Errors:
  // kResourceExhausted with DescribeQuotaExceeded of the first dimension (memory, cores, cards)
  // that would be exceeded.
  Status Check(std::string_view owner, const QuotaAmount& asked) const;
  // Ok unless `asked` alone is more than a ceiling, so the request could never fit whatever is
  // freed. Errors: kResourceExhausted "namespace team-a: the pod asks 50 GiB of gpumem, more
  // than its whole gpumem quota of 40 GiB".
  Status CheckEverFits(std::string_view owner, const QuotaAmount& asked,
                       std::string_view what = "the pod") const;

  struct Row {
    std::string owner;
    QuotaDim dim = QuotaDim::kMemory;
    int64_t used = 0;
    int64_t limit = 0;
    bool operator==(const Row&) const = default;
  };
  // One row per bounded dimension of every limited owner, sorted by owner then dimension.
  std::vector<Row> Snapshot() const;
  std::size_t limited_owner_count() const;
  std::size_t usage_count() const { return pods_.size(); }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
  struct Owner {
    std::map<std::string, QuotaLimits, std::less<>> sources;
    QuotaLimits limits;  // Tighter over sources
    QuotaAmount used;
  };
  struct PodUse {
    std::string owner;
    QuotaAmount amount;
  };
  Owner& OwnerEntry(std::string_view owner);
  void DropIfEmpty(std::string_view owner);

  std::string kind_;
  StringMap<Owner> owners_;
  StringMap<PodUse> pods_;
};

}  // namespace hami::sched
