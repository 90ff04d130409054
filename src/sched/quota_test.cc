#include "sched/quota.h"

#include <gtest/gtest.h>

#include <random>

#include "sched/test_util.h"

namespace hami::sched {
namespace {

using testing::C;
using testing::D;
using testing::P;

QuotaLimits L(std::optional<int64_t> mem, std::optional<int64_t> cores = std::nullopt,
              std::optional<int64_t> cards = std::nullopt) {
  return {mem, cores, cards};
}

TEST(Quota, PlacementUsageTable) {
  struct Case {
    const char* name;
    PodPlacement placement;
    QuotaAmount want;
  };
  PodPlacement two_app{{{D("a", 3000, 30), D("b", 3000, 30)}, {D("a", 5000, 0)}}, 0};
  PodPlacement init_bigger{{{D("a", 20000, 50)}, {D("a", 3000, 10)}, {D("b", 4000, 10)}}, 1};
  PodPlacement app_bigger{{{D("a", 2000, 5)}, {D("a", 3000, 10), D("b", 3000, 10)}}, 1};
  PodPlacement empty_segments{{{}, {D("a", 1024, 100)}, {}}, 1};
  std::vector<Case> cases = {
      {"one container", testing::One({D("a", 4096, 30)}), {4096, 30, 1}},
      {"two app containers sum", two_app, {11000, 60, 3}},
      // init containers run alone: per dimension max(largest init, sum of app)
      {"init larger in memory and cores", init_bigger, {20000, 50, 2}},
      {"app larger", app_bigger, {6000, 20, 2}},
      {"containers without GPU", empty_segments, {1024, 100, 1}},
      {"nothing", PodPlacement{}, {0, 0, 0}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(PlacementQuotaUsage(c.placement), c.want) << c.name;
  }
  // num_init 0 (unknown): every container counted as an app container
  PodPlacement unknown = init_bigger;
  unknown.num_init = 0;
  EXPECT_EQ(PlacementQuotaUsage(unknown), (QuotaAmount{27000, 70, 3}));
}

TEST(Quota, RequestUsageTable) {
  struct Case {
    const char* name;
    PodRequest pod;
    int64_t card_mib;
    QuotaAmount want;
    bool depends;
  };
  std::vector<Case> cases = {
      {"MiB x count", P({C(2, 4096, 30)}), 81920, {8192, 60, 2}, false},
      {"percent of the card", P({C(1, std::nullopt, 20, 25)}), 81920, {20480, 20, 1}, true},
      {"percent rounds down", P({C(1, std::nullopt, 0, 33)}), 1000, {330, 0, 1}, true},
      {"default whole card", P({C(1)}), 40960, {40960, 0, 1}, true},
      {"exclusive counts 100", P({C(1, 1000, 100)}), 81920, {1000, 100, 1}, false},
      {"init vs app",
       P({C(1, 1000, 10), C(1, 2000, 10)}, {C(2, 5000, 5)}),
       81920,
       {10000, 20, 2},
       false},
      {"CPU container", P({C(0)}), 81920, {0, 0, 0}, false},
  };
  for (const auto& c : cases) {
    auto r = Resolve(c.pod, SchedulerConfig{});
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    EXPECT_EQ(RequestQuotaUsage(*r, c.card_mib), c.want) << c.name;
    EXPECT_EQ(UsageDependsOnCard(*r), c.depends) << c.name;
  }
}

TEST(Quota, MessagesNameOwnerDimensionAndNumbers) {
  EXPECT_EQ(DescribeQuotaExceeded("namespace", "team-a", QuotaDim::kMemory, 38 * 1024, 40 * 1024,
                                  4 * 1024),
            "namespace team-a would exceed its gpumem quota: 38/40 GiB used, 4 GiB asked");
  EXPECT_EQ(DescribeQuotaExceeded("namespace", "b", QuotaDim::kMemory, 1500, 2048, 1000),
            "namespace b would exceed its gpumem quota: 1500/2048 MiB used, 1000 MiB asked");
  EXPECT_EQ(DescribeQuotaExceeded("user", "1001", QuotaDim::kCores, 280, 300, 30),
            "user 1001 would exceed its gpucores quota: 280/300 % used, 30 % asked");
  EXPECT_EQ(DescribeQuotaExceeded("group", "ml", QuotaDim::kCards, 7, 8, 2),
            "group ml would exceed its gpu quota: 7/8 GPUs used, 2 asked");
}

TEST(Quota, CheckTable) {
  struct Case {
    const char* name;
    QuotaLimits limits;
    QuotaAmount used;
    QuotaAmount asked;
    std::string want;  // "" = admitted
  };
  const int64_t G = 1024;
  std::vector<Case> cases = {
      {"fits exactly", L(40 * G), {36 * G, 0, 0}, {4 * G, 0, 0}, ""},
      {"memory over",
       L(40 * G),
       {38 * G, 0, 0},
       {4 * G, 0, 0},
       "namespace team-a would exceed its gpumem quota: 38/40 GiB used, 4 GiB asked"},
      {"cores over",
       L(std::nullopt, 300),
       {0, 280, 0},
       {0, 30, 1},
       "namespace team-a would exceed its gpucores quota: 280/300 % used, 30 % asked"},
      {"cards over",
       L(std::nullopt, std::nullopt, 2),
       {0, 0, 2},
       {1, 0, 1},
       "namespace team-a would exceed its gpu quota: 2/2 GPUs used, 1 asked"},
      {"memory checked first",
       L(10, 10, 1),
       {10, 10, 1},
       {1, 1, 1},
       "namespace team-a would exceed its gpumem quota: 10/10 MiB used, 1 MiB asked"},
      {"unbounded dimension", L(std::nullopt, 100), {1 << 30, 0, 9}, {1 << 30, 100, 9}, ""},
      {"zero quota admits nothing",
       L(0),
       {},
       {1, 0, 1},
       "namespace team-a would exceed its gpumem quota: 0/0 MiB used, 1 MiB asked"},
      {"zero ask passes an over-full quota", L(std::nullopt, 10), {0, 50, 0}, {4096, 0, 1}, ""},
  };
  for (const auto& c : cases) {
    QuotaBook book;
    book.SetLimits("team-a", "q", c.limits);
    if (!c.used.IsZero()) book.AddUsage("running", "team-a", c.used);
    Status st = book.Check("team-a", c.asked);
    if (c.want.empty()) {
      EXPECT_TRUE(st.ok()) << c.name << ": " << st.ToString();
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << c.name;
      EXPECT_EQ(st.message(), c.want) << c.name;
    }
    // Other owners are never limited by team-a's quota.
    EXPECT_TRUE(book.Check("team-b", c.asked).ok()) << c.name;
  }
}

TEST(Quota, SeveralQuotaObjectsAllApply) {
  QuotaBook book;
  book.SetLimits("ns", "mem", L(4096, 200));
  book.SetLimits("ns", "cores", L(8192, 100, 4));
  EXPECT_EQ(book.Limits("ns"), L(4096, 100, 4));
  EXPECT_FALSE(book.Check("ns", {0, 150, 1}).ok());
  ASSERT_TRUE(book.RemoveLimits("ns", "cores"));
  EXPECT_EQ(book.Limits("ns"), L(4096, 200));
  EXPECT_TRUE(book.Check("ns", {0, 150, 1}).ok());
  EXPECT_FALSE(book.RemoveLimits("ns", "cores"));
  // Replacing a source's limits, and empty limits removing it.
  book.SetLimits("ns", "mem", L(1024));
  EXPECT_EQ(book.Limits("ns"), L(1024));
  book.SetLimits("ns", "mem", QuotaLimits{});
  EXPECT_FALSE(book.Limited("ns"));
  EXPECT_EQ(book.limited_owner_count(), 0u);
}

TEST(Quota, UsageIsKeptBeforeAQuotaExistsAndMovesWithTheUid) {
  QuotaBook book;
  book.AddUsage("p1", "ns", {3000, 30, 1});
  book.AddUsage("p2", "ns", {2000, 0, 1});
  EXPECT_FALSE(book.Limited("ns"));
  EXPECT_TRUE(book.Check("ns", {1 << 20, 0, 1}).ok());
  book.SetLimits("ns", "q", L(6000));
  EXPECT_EQ(book.Used("ns"), (QuotaAmount{5000, 30, 2}));
  EXPECT_FALSE(book.Check("ns", {1001, 0, 1}).ok());
  EXPECT_TRUE(book.Check("ns", {1000, 0, 1}).ok());
  // Re-adding a uid replaces its record, also across owners.
  book.AddUsage("p1", "other", {3000, 30, 1});
  EXPECT_EQ(book.Used("ns"), (QuotaAmount{2000, 0, 1}));
  EXPECT_EQ(book.Used("other"), (QuotaAmount{3000, 30, 1}));
  EXPECT_TRUE(book.RemoveUsage("p1"));
  EXPECT_FALSE(book.RemoveUsage("p1"));
  EXPECT_EQ(book.Used("other"), QuotaAmount{});
  book.AddUsage("p2", "ns", {});  // zero amount: no record
  EXPECT_FALSE(book.HasUsage("p2"));
  EXPECT_EQ(book.Used("ns"), QuotaAmount{});
  book.AddUsage("p3", "ns", {10, 0, 1});
  book.ClearUsage();
  EXPECT_EQ(book.usage_count(), 0u);
  EXPECT_EQ(book.Used("ns"), QuotaAmount{});
  EXPECT_TRUE(book.Limited("ns"));
}

TEST(Quota, EverFitsTable) {
  QuotaBook book;
  book.SetLimits("team-a", "q", L(40 * 1024, 300, 4));
  EXPECT_TRUE(book.CheckEverFits("team-a", {40 * 1024, 300, 4}).ok());
  book.AddUsage("full", "team-a", {40 * 1024, 300, 4});  // usage does not matter here
  EXPECT_TRUE(book.CheckEverFits("team-a", {40 * 1024, 300, 4}).ok());
  Status st = book.CheckEverFits("team-a", {50 * 1024, 0, 1});
  EXPECT_EQ(st.message(),
            "namespace team-a: the pod asks 50 GiB of gpumem, more than its whole gpumem quota "
            "of 40 GiB");
  st = book.CheckEverFits("team-a", {1, 400, 4}, "container 0");
  EXPECT_EQ(st.message(),
            "namespace team-a: container 0 asks 400 % of gpucores, more than its whole gpucores "
            "quota of 300 %");
  EXPECT_FALSE(book.CheckEverFits("team-a", {1, 0, 5}).ok());
  EXPECT_TRUE(book.CheckEverFits("unlimited", {1 << 30, 1000, 100}).ok());
}

TEST(Quota, SnapshotListsBoundedDimensionsOfLimitedOwners) {
  QuotaBook book;
  book.SetLimits("b", "q", L(std::nullopt, 200));
  book.SetLimits("a", "q", L(4096, std::nullopt, 2));
  book.AddUsage("x", "a", {1024, 10, 1});
  book.AddUsage("y", "c", {1024, 10, 1});  // not limited: no rows
  std::vector<QuotaBook::Row> want = {{"a", QuotaDim::kMemory, 1024, 4096},
                                      {"a", QuotaDim::kCards, 1, 2},
                                      {"b", QuotaDim::kCores, 0, 200}};
  EXPECT_EQ(book.Snapshot(), want);
  EXPECT_EQ(book.limited_owner_count(), 2u);
}

// Admitting only what Check allows never takes an owner past its ceiling, and the usage always
// equals the sum of the live records, whatever the order of adds, replaces and removes.
TEST(Quota, RandomizedNeverOvershoots) {
  std::mt19937 rng(7);
  QuotaBook book;
  const std::vector<std::string> owners = {"a", "b", "c", "d"};
  book.SetLimits("a", "q", L(20000, 300, 6));
  book.SetLimits("b", "q", L(5000));
  book.SetLimits("c", "q", L(std::nullopt, std::nullopt, 3));
  std::map<std::string, std::pair<std::string, QuotaAmount>> live;
  for (int step = 0; step < 20000; ++step) {
    std::string uid = "p" + std::to_string(rng() % 200);
    if (rng() % 3 == 0) {
      EXPECT_EQ(book.RemoveUsage(uid), live.erase(uid) == 1);
    } else {
      const std::string& owner = owners[rng() % owners.size()];
      QuotaAmount ask{static_cast<int64_t>(rng() % 5000), static_cast<int64_t>(rng() % 101),
                      static_cast<int64_t>(1 + rng() % 2)};
      book.RemoveUsage(uid);  // a pod re-placed: its old record no longer holds anything
      live.erase(uid);
      if (book.Check(owner, ask).ok()) {
        book.AddUsage(uid, owner, ask);
        live[uid] = {owner, ask};
      }
    }
    for (const auto& row : book.Snapshot()) ASSERT_LE(row.used, row.limit) << row.owner;
  }
  std::map<std::string, QuotaAmount> sum;
  for (const auto& [uid, rec] : live) sum[rec.first] += rec.second;
  for (const auto& o : owners) EXPECT_EQ(book.Used(o), sum[o]) << o;
  EXPECT_EQ(book.usage_count(), live.size());
}

}  // namespace
}  // namespace hami::sched
