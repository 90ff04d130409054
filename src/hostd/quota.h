// Per-user and per-group GPU quotas of `hami serve` (docs/quotas.md): the rules given with
// --user-quota, --group-quota and --quota-file, and the accounting of granted slices against
// them (sched::QuotaBook, one for users and one for groups). Callers lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sched/quota.h"

namespace hami::hostd {

struct QuotaRule {
  bool group = false;  // a group (gid) rather than a user (uid)
  uint32_t id = 0;
  std::string name;  // as written ("alice", "1001"): how messages name the owner
  sched::QuotaLimits limits;
};

// "alice:gpumem=20g,gpucores=200,gpus=2": a user (or, with `group`, a group) by name or
// number, then at least one of gpumem (a size as `hami run --gpumem`, no percentage),
// gpucores (percent points of a card, summed over slices: 250 = two and a half cards) and
// gpus (slices' GPUs). Names resolve through the passwd / group databases.
// Errors: kInvalidArgument naming the text and the part that is wrong.
StatusOr<QuotaRule> ParseQuotaRule(std::string_view text, bool group);

// A file of rules, one per line: "user alice gpumem=20g,gpus=2" or "group ml gpumem=80g";
// blank lines and '#' comments are skipped. Opened without following links, at most 64 KiB.
// Errors: kInvalidArgument naming the file and line, kNotFound / kPermissionDenied for the file.
StatusOr<std::vector<QuotaRule>> LoadQuotaFile(const std::string& path);

// The groups of a user, primary and supplementary (passwd and group databases): a slice counts
// against the quota of each. Empty when the uid has no passwd entry.
std::vector<uint32_t> GroupsOfUser(uint32_t uid);

class HostQuotas {
 public:
  HostQuotas() = default;
  // Errors: kInvalidArgument for two rules of the same user or group.
  static StatusOr<HostQuotas> Make(const std::vector<QuotaRule>& rules);
  bool empty() const { return rules_.empty(); }

  // Ok when a slice holding `amount` for user `uid` keeps the user and each of its groups
  // within their quotas. Errors: kResourceExhausted "user alice would exceed its gpumem quota:
  // 18/20 GiB used, 4 GiB asked" (the user's quota first, then its groups').
  Status Check(uint32_t uid, const sched::QuotaAmount& amount) const;
  // Ok unless `amount` alone is more than one of those quotas (it could never be granted).
  // Errors: kResourceExhausted naming the quota.
  Status CheckEverFits(uint32_t uid, const sched::QuotaAmount& amount) const;
  // Counts / uncounts a granted slice (by slice id) against its user and groups.
  void Count(int64_t slice_id, uint32_t uid, const sched::QuotaAmount& amount);
  void Uncount(int64_t slice_id);

  struct Row {
    std::string kind;   // "user" | "group"
    std::string owner;  // the rule's name
    uint32_t id = 0;
    sched::QuotaDim dim = sched::QuotaDim::kMemory;
    int64_t used = 0;
    int64_t limit = 0;
  };
  // Every bounded dimension of every rule, users first, in rule-name order.
  std::vector<Row> Rows() const;

 private:
  // The group rules that apply to `uid`: their book keys.
  std::vector<std::string> GroupKeys(uint32_t uid) const;

  std::vector<QuotaRule> rules_;
  std::map<uint32_t, std::string> user_key_, group_key_;  // id -> rule name
  sched::QuotaBook users_{"user"}, groups_{"group"};
  mutable std::map<uint32_t, std::vector<uint32_t>> groups_of_;  // uid -> gids, looked up once
  std::map<int64_t, std::vector<std::string>> counted_;  // slice id -> usage keys in groups_
};

}  // namespace hami::hostd
