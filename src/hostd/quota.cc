#include "hostd/quota.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "hostd/types.h"

namespace hami::hostd {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<uint32_t> Number(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// A user or group name or number to its id.
StatusOr<uint32_t> ResolveId(std::string_view who, bool group) {
  if (auto n = Number(who)) return *n;
  std::string name(who);
  std::vector<char> buf(16384);
  if (group) {
    struct group g {};
    struct group* out = nullptr;
    if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &out) == 0 && out != nullptr) {
      return static_cast<uint32_t>(out->gr_gid);
    }
    return InvalidArgument("no group named \"" + name + "\"");
  }
  struct passwd pw {};
  struct passwd* out = nullptr;
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out) == 0 && out != nullptr) {
    return static_cast<uint32_t>(out->pw_uid);
  }
  return InvalidArgument("no user named \"" + name + "\"");
}

Status ParseLimit(std::string_view item, sched::QuotaLimits* limits) {
  auto eq = item.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("\"" + std::string(item) + "\" has no '='");
  std::string_view key = Trim(item.substr(0, eq)), value = Trim(item.substr(eq + 1));
  sched::QuotaDim dim;
  int64_t v = 0;
  if (key == "gpumem") {
    int32_t percent = 0;
    HAMI_RETURN_IF_ERROR(ParseMemory(value, &v, &percent));
    if (percent > 0) return InvalidArgument("gpumem quota must be a size, not a percentage");
    dim = sched::QuotaDim::kMemory;
  } else if (key == "gpucores" || key == "gpus") {
    auto n = Number(value);
    if (!n || *n > 1000000) {
      return InvalidArgument(std::string(key) + " must be a whole number 0..1000000, got \"" +
                             std::string(value) + "\"");
    }
    v = *n;
    dim = key == "gpus" ? sched::QuotaDim::kCards : sched::QuotaDim::kCores;
  } else {
    return InvalidArgument("unknown key \"" + std::string(key) + "\" (gpumem, gpucores, gpus)");
  }
  if (limits->Get(dim)) return InvalidArgument(std::string(key) + " given twice");
  limits->Set(dim, v);
  return Status::Ok();
}

}  // namespace

StatusOr<QuotaRule> ParseQuotaRule(std::string_view text, bool group) {
  const std::string where =
      std::string(group ? "group" : "user") + " quota \"" + std::string(text) + "\": ";
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument(where + "expected NAME:gpumem=SIZE,gpucores=N,gpus=N");
  }
  QuotaRule rule;
  rule.group = group;
  rule.name = std::string(Trim(text.substr(0, colon)));
  if (rule.name.empty()) return InvalidArgument(where + "no " + (group ? "group" : "user"));
  auto id = ResolveId(rule.name, group);
  if (!id.ok()) return InvalidArgument(where + id.status().message());
  rule.id = *id;
  std::string_view rest = text.substr(colon + 1);
  while (true) {
    auto comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (item.empty()) return InvalidArgument(where + "empty item");
    if (Status s = ParseLimit(item, &rule.limits); !s.ok()) {
      return InvalidArgument(where + s.message());
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return rule;
}

StatusOr<std::vector<QuotaRule>> LoadQuotaFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kPermissionDenied,
                  "cannot open quota file " + path);
  }
  struct stat st {};
  constexpr off_t kMax = 64 * 1024;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMax) {
    close(fd);
    return InvalidArgument("quota file " + path + " must be a regular file of at most 64 KiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = read(fd, text.data(), text.size());
  close(fd);
  if (n != st.st_size) return InvalidArgument("quota file " + path + ": short read");
  std::vector<QuotaRule> rules;
  size_t pos = 0;
  for (int line_no = 1; pos <= text.size(); ++line_no) {
    size_t nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    auto sp = line.find_first_of(" \t");
    std::string_view kind = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? "" : Trim(line.substr(sp));
    auto sp2 = rest.find_first_of(" \t");
    auto where = [&] { return path + ":" + std::to_string(line_no) + ": "; };
    if ((kind != "user" && kind != "group") || sp2 == std::string_view::npos) {
      return InvalidArgument(where() +
                             "expected \"user NAME gpumem=SIZE,...\" or \"group NAME ...\"");
    }
    std::string spec = std::string(rest.substr(0, sp2)) + ":" + std::string(Trim(rest.substr(sp2)));
    auto rule = ParseQuotaRule(spec, kind == "group");
    if (!rule.ok()) return InvalidArgument(where() + rule.status().message());
    rules.push_back(std::move(*rule));
  }
  return rules;
}

std::vector<uint32_t> GroupsOfUser(uint32_t uid) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* out = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) != 0 || out == nullptr) return {};
  int count = 64;
  std::vector<gid_t> gids(static_cast<size_t>(count));
  if (getgrouplist(out->pw_name, out->pw_gid, gids.data(), &count) < 0) {
    gids.resize(static_cast<size_t>(count));
    if (getgrouplist(out->pw_name, out->pw_gid, gids.data(), &count) < 0) count = 0;
  }
  std::set<uint32_t> unique(gids.begin(), gids.begin() + count);
  unique.insert(static_cast<uint32_t>(out->pw_gid));
  return {unique.begin(), unique.end()};
}

StatusOr<HostQuotas> HostQuotas::Make(const std::vector<QuotaRule>& rules) {
  HostQuotas q;
  for (const QuotaRule& r : rules) {
    auto& keys = r.group ? q.group_key_ : q.user_key_;
    if (!keys.emplace(r.id, r.name).second) {
      return InvalidArgument(std::string(r.group ? "group " : "user ") + r.name + " (" +
                             std::to_string(r.id) + ") has two quota rules");
    }
    (r.group ? q.groups_ : q.users_).SetLimits(r.name, "config", r.limits);
    q.rules_.push_back(r);
  }
  return q;
}

std::vector<std::string> HostQuotas::GroupKeys(uint32_t uid) const {
  std::vector<std::string> keys;
  if (group_key_.empty()) return keys;
  auto it = groups_of_.find(uid);
  if (it == groups_of_.end()) it = groups_of_.emplace(uid, GroupsOfUser(uid)).first;
  for (uint32_t gid : it->second) {
    if (auto k = group_key_.find(gid); k != group_key_.end()) keys.push_back(k->second);
  }
  return keys;
}

Status HostQuotas::Check(uint32_t uid, const sched::QuotaAmount& amount) const {
  if (auto u = user_key_.find(uid); u != user_key_.end()) {
    HAMI_RETURN_IF_ERROR(users_.Check(u->second, amount));
  }
  for (const std::string& g : GroupKeys(uid)) HAMI_RETURN_IF_ERROR(groups_.Check(g, amount));
  return Status::Ok();
}

Status HostQuotas::CheckEverFits(uint32_t uid, const sched::QuotaAmount& amount) const {
  if (auto u = user_key_.find(uid); u != user_key_.end()) {
    HAMI_RETURN_IF_ERROR(users_.CheckEverFits(u->second, amount, "the request"));
  }
  for (const std::string& g : GroupKeys(uid)) {
    HAMI_RETURN_IF_ERROR(groups_.CheckEverFits(g, amount, "the request"));
  }
  return Status::Ok();
}

void HostQuotas::Count(int64_t slice_id, uint32_t uid, const sched::QuotaAmount& amount) {
  Uncount(slice_id);
  std::string key = "s" + std::to_string(slice_id);
  if (auto u = user_key_.find(uid); u != user_key_.end()) users_.AddUsage(key, u->second, amount);
  std::vector<std::string>& counted = counted_[slice_id];
  for (const std::string& g : GroupKeys(uid)) {
    counted.push_back(key + "/" + g);
    groups_.AddUsage(counted.back(), g, amount);
  }
}

void HostQuotas::Uncount(int64_t slice_id) {
  users_.RemoveUsage("s" + std::to_string(slice_id));
  auto it = counted_.find(slice_id);
  if (it == counted_.end()) return;
  for (const std::string& k : it->second) groups_.RemoveUsage(k);
  counted_.erase(it);
}

std::vector<HostQuotas::Row> HostQuotas::Rows() const {
  std::vector<Row> rows;
  for (const auto* book : {&users_, &groups_}) {
    const auto& keys = book == &users_ ? user_key_ : group_key_;
    for (const auto& r : book->Snapshot()) {
      uint32_t id = 0;
      for (const auto& [k, name] : keys)
        if (name == r.owner) id = k;
      rows.push_back({book->kind(), r.owner, id, r.dim, r.used, r.limit});
    }
  }
  return rows;
}

}  // namespace hami::hostd
