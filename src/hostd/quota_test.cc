#include "hostd/quota.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace hami::hostd {
namespace {

std::string MyName() {
  struct passwd* pw = getpwuid(geteuid());
  return pw ? pw->pw_name : std::to_string(geteuid());
}

TEST(HostQuotaTest, ParsesRulesTable) {
  struct Case {
    std::string text;
    bool group;
    std::string error;  // "" = parses
    sched::QuotaLimits want;
  };
  std::vector<Case> cases = {
      {"1001:gpumem=20g,gpucores=200,gpus=2", false, "", {20480, 200, 2}},
      {MyName() + ":gpumem=1536m", false, "", {1536, std::nullopt, std::nullopt}},
      {"0:gpus=0", true, "", {std::nullopt, std::nullopt, 0}},
      {" 7 : gpucores = 50 ", false, "", {std::nullopt, 50, std::nullopt}},
      {"1001", false, "expected NAME:gpumem=SIZE,gpucores=N,gpus=N", {}},
      {":gpus=1", false, "no user", {}},
      {"1001:gpumem=50%", false, "gpumem quota must be a size, not a percentage", {}},
      {"1001:gpumem=2x", false, "unknown unit", {}},
      {"1001:gpus=-1", false, "gpus must be a whole number", {}},
      {"1001:gpus=1,gpus=2", false, "gpus given twice", {}},
      {"1001:vram=1g", false, "unknown key \"vram\"", {}},
      {"1001:gpus=1,", false, "empty item", {}},
      {"no-such-user-hami-test:gpus=1", false, "no user named", {}},
      {"no-such-group-hami-test:gpus=1", true, "no group named", {}},
  };
  for (const auto& c : cases) {
    auto r = ParseQuotaRule(c.text, c.group);
    if (c.error.empty()) {
      ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
      EXPECT_EQ(r->limits, c.want) << c.text;
      EXPECT_EQ(r->group, c.group);
    } else {
      ASSERT_FALSE(r.ok()) << c.text;
      EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
      EXPECT_NE(r.status().message().find(c.text), std::string::npos) << "names the rule";
    }
  }
  auto me = ParseQuotaRule(MyName() + ":gpus=1", false);
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(me->id, geteuid());
}

TEST(HostQuotaTest, LoadsFileAndNamesTheBadLine) {
  char tmpl[] = "/tmp/hami-quota-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  std::string path = tmpl;
  {
    std::ofstream f(path);
    f << "# team quotas\n\nuser 1001 gpumem=20g,gpus=2  # alice\ngroup 0 gpucores=300\n";
  }
  auto rules = LoadQuotaFile(path);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].id, 1001u);
  EXPECT_FALSE((*rules)[0].group);
  EXPECT_EQ((*rules)[1].limits.cores, 300);
  EXPECT_TRUE((*rules)[1].group);
  {
    std::ofstream f(path);
    f << "user 1001 gpus=1\nteam x gpus=1\n";
  }
  auto bad = LoadQuotaFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ":2: "), std::string::npos)
      << bad.status().message();
  std::string link = path + ".link";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(LoadQuotaFile(link).ok());  // links are not followed
  EXPECT_EQ(LoadQuotaFile(path + ".missing").status().code(), StatusCode::kNotFound);
  std::remove(link.c_str());
  std::remove(path.c_str());
}

TEST(HostQuotaTest, UserAndGroupQuotasCountSlices) {
  const uint32_t me = geteuid();
  auto groups = GroupsOfUser(me);
  ASSERT_FALSE(groups.empty());
  QuotaRule user{false, 4242, "4242", {8192, std::nullopt, 2}};
  QuotaRule group{true, groups.front(), "team", {std::nullopt, 150, std::nullopt}};
  auto q = HostQuotas::Make({user, group});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_FALSE(HostQuotas::Make({user, user}).ok());  // two rules for one user

  // User 4242 (no passwd entry: no groups) is bounded by its own quota only.
  EXPECT_TRUE(q->Check(4242, {4096, 100, 1}).ok());
  q->Count(1, 4242, {4096, 100, 1});
  q->Count(2, 4242, {4096, 100, 1});
  Status st = q->Check(4242, {1024, 0, 1});
  EXPECT_EQ(st.message(), "user 4242 would exceed its gpumem quota: 8/8 GiB used, 1 GiB asked");
  q->Uncount(1);
  EXPECT_TRUE(q->Check(4242, {1024, 0, 1}).ok());
  EXPECT_EQ(q->CheckEverFits(4242, {16384, 0, 1}).message(),
            "user 4242: the request asks 16 GiB of gpumem, more than its whole gpumem quota of "
            "8 GiB");

  // This user is a member of the group: its slices count against the group's cores.
  q->Count(3, me, {1024, 100, 1});
  EXPECT_EQ(q->Check(me, {1024, 60, 1}).message(),
            "group team would exceed its gpucores quota: 100/150 % used, 60 % asked");
  EXPECT_TRUE(q->Check(me, {1024, 50, 1}).ok());
  auto rows = q->Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].kind, "user");
  EXPECT_EQ(rows[0].dim, sched::QuotaDim::kMemory);
  EXPECT_EQ(rows[0].used, 4096);
  EXPECT_EQ(rows[2].kind, "group");
  EXPECT_EQ(rows[2].owner, "team");
  EXPECT_EQ(rows[2].used, 100);
  EXPECT_EQ(rows[2].limit, 150);
  q->Uncount(3);
  EXPECT_EQ(q->Rows()[2].used, 0);
}

}  // namespace
}  // namespace hami::hostd
