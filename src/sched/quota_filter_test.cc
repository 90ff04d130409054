#include "sched/quota_filter.h"

#include <gtest/gtest.h>

#include <random>

#include "sched/test_util.h"

namespace hami::sched {
namespace {

using testing::C;
using testing::G;
using testing::N;
using testing::P;

constexpr int64_t kGiB = 1024;

class QuotaFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.AddNode(N("small", {G("s0", 40 * kGiB), G("s1", 40 * kGiB)})).ok());
    ASSERT_TRUE(state_.AddNode(N("large", {G("l0", 80 * kGiB), G("l1", 80 * kGiB)})).ok());
    ASSERT_TRUE(state_.AddNode(N("mixed", {G("m0", 40 * kGiB), G("m1", 80 * kGiB)})).ok());
    ASSERT_TRUE(state_.AddNode(N("full", {G("f0", 1 * kGiB)})).ok());
    book_.SetLimits("team-a", "gpu-quota", QuotaLimits{40 * kGiB, 300, 8});
    book_.AddUsage("running", "team-a", {28 * kGiB, 150, 2});  // 12 GiB left
  }
  Reason ReasonOf(const FilterResult& r, std::string_view node) {
    for (const auto& v : r.nodes)
      if (v.node == node) return v.reason;
    ADD_FAILURE() << "no verdict for " << node;
    return Reason::kFits;
  }
  ClusterState state_;
  Engine engine_;
  QuotaBook book_;
  std::vector<std::string> all_ = {"small", "large", "mixed", "full"};
};

TEST_F(QuotaFilterTest, VerdictsTable) {
  struct Case {
    const char* name;
    PodRequest pod;
    std::string owner;
    std::map<std::string, Reason> want;
    std::string reason;  // named quota reason, "" when no node is refused for the quota
  };
  const auto F = Reason::kFits;
  const auto Q = Reason::kQuota;
  const auto M = Reason::kInsufficientMemory;
  std::vector<Case> cases = {
      {"unlimited namespace",
       P({C(1, 16 * kGiB)}),
       "team-b",
       {{"small", F}, {"large", F}, {"mixed", F}, {"full", M}},
       ""},
      {"MiB within quota",
       P({C(1, 12 * kGiB)}),
       "team-a",
       {{"small", F}, {"large", F}, {"mixed", F}, {"full", M}},
       ""},
      {"MiB over quota: every node",
       P({C(1, 16 * kGiB)}),
       "team-a",
       {{"small", Q}, {"large", Q}, {"mixed", Q}, {"full", Q}},
       "namespace team-a would exceed its gpumem quota: 28/40 GiB used, 16 GiB asked"},
      {"cores over quota",
       P({C(2, 1 * kGiB, 100)}),
       "team-a",
       {{"small", Q}, {"large", Q}, {"mixed", Q}, {"full", Q}},
       "namespace team-a would exceed its gpucores quota: 150/300 % used, 200 % asked"},
      // 25 % is 10 GiB of a 40 GiB card and 20 GiB of an 80 GiB card: converted per card.
      {"percentage per card",
       P({C(1, std::nullopt, 0, 25)}),
       "team-a",
       {{"small", F}, {"large", Q}, {"mixed", F}, {"full", F}},
       "namespace team-a would exceed its gpumem quota: 28/40 GiB used, 20 GiB asked"},
      {"whole card by default",
       P({C(1)}),
       "team-a",
       {{"small", Q}, {"large", Q}, {"mixed", Q}, {"full", F}},
       "namespace team-a would exceed its gpumem quota: 28/40 GiB used, 40 GiB asked"},
      {"pod without GPU",
       P({C(0)}),
       "team-a",
       {{"small", F}, {"large", F}, {"mixed", F}, {"full", F}},
       ""},
  };
  for (const auto& c : cases) {
    std::string reason = "stale";
    auto r = FilterUnderQuota(engine_, state_, c.pod, all_, {&book_, c.owner}, &reason);
    ASSERT_TRUE(r.ok()) << c.name;
    for (const auto& [node, want] : c.want) {
      EXPECT_EQ(ReasonOf(*r, node), want) << c.name << " on " << node;
    }
    EXPECT_EQ(reason, c.reason) << c.name;
    if (!c.reason.empty()) {
      EXPECT_NE(r->summary.message.find(c.reason), std::string::npos) << r->summary.message;
    }
    // Schedule agrees with Filter: scheduled exactly when a node fits, on a fitting node.
    auto d = ScheduleUnderQuota(engine_, state_, c.pod, all_, {&book_, c.owner});
    ASSERT_TRUE(d.ok()) << c.name;
    EXPECT_EQ(d->scheduled, r->summary.fitting > 0) << c.name;
    if (d->scheduled) {
      EXPECT_EQ(c.want.at(d->node), F) << c.name << " chose " << d->node;
      EXPECT_TRUE(CheckPlacementQuota({&book_, c.owner}, d->placement).ok()) << c.name;
    } else {
      EXPECT_EQ(d->summary.message, r->summary.message) << c.name;
    }
  }
}

TEST_F(QuotaFilterTest, RefusedEverywhereSaysSoInKubeSchedulerForm) {
  auto d =
      ScheduleUnderQuota(engine_, state_, P({C(1, 16 * kGiB)}), std::nullopt, {&book_, "team-a"});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->scheduled);
  EXPECT_EQ(d->summary.message,
            "0/4 nodes fit: 4 namespace team-a would exceed its gpumem quota: 28/40 GiB used, "
            "16 GiB asked");
  // Without a book nothing is limited.
  auto free = ScheduleUnderQuota(engine_, state_, P({C(1, 16 * kGiB)}), std::nullopt, {});
  ASSERT_TRUE(free.ok());
  EXPECT_TRUE(free->scheduled);
}

TEST_F(QuotaFilterTest, MixedNodeUsesThePlacementTheEngineWouldChoose) {
  // 25 % on the mixed node: the engine's choice decides (10 or 20 GiB), and Filter must agree
  // with what Schedule then records.
  auto pod = P({C(1, std::nullopt, 0, 25)});
  auto f =
      FilterUnderQuota(engine_, state_, pod, std::vector<std::string>{"mixed"}, {&book_, "team-a"});
  ASSERT_TRUE(f.ok());
  auto placement = engine_.Place(state_, pod, "mixed");
  ASSERT_TRUE(placement.ok());
  bool within = book_.Check("team-a", PlacementQuotaUsage(*placement)).ok();
  EXPECT_EQ(f->nodes[0].fits(), within);
}

TEST_F(QuotaFilterTest, BindRecheckNamesTheReason) {
  PodPlacement p = testing::One({testing::D("s0", 13000, 10)});
  Status st = CheckPlacementQuota({&book_, "team-a"}, p);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(),
            "namespace team-a would exceed its gpumem quota: 28672/40960 MiB used, 13000 MiB "
            "asked");
  EXPECT_TRUE(CheckPlacementQuota({&book_, "team-b"}, p).ok());
}

// Scheduling pods of several namespaces in a loop (schedule, record placement and usage) never
// takes a namespace past its quota, and every refusal is for a reason the state explains.
TEST(QuotaFilter, RandomizedNeverOvershoots) {
  std::mt19937 rng(11);
  ClusterState state;
  for (int n = 0; n < 12; ++n) {
    std::vector<GpuInfo> gpus;
    for (int g = 0; g < 4; ++g) {
      gpus.push_back(
          G("n" + std::to_string(n) + "-" + std::to_string(g), (n % 3 == 0 ? 40 : 80) * kGiB));
    }
    ASSERT_TRUE(state.AddNode(N("node" + std::to_string(n), gpus)).ok());
  }
  QuotaBook book;
  const std::vector<std::string> owners = {"a", "b", "c"};
  book.SetLimits("a", "q", QuotaLimits{100 * kGiB, std::nullopt, std::nullopt});
  book.SetLimits("b", "q", QuotaLimits{std::nullopt, 250, 6});
  Engine engine;
  std::vector<std::pair<std::string, std::string>> placed;  // uid, owner
  for (int i = 0; i < 600; ++i) {
    if (!placed.empty() && rng() % 4 == 0) {
      size_t k = rng() % placed.size();
      ASSERT_TRUE(state.RemovePlacement(placed[k].first).ok());
      ASSERT_TRUE(book.RemoveUsage(placed[k].first));
      placed.erase(placed.begin() + static_cast<long>(k));
      continue;
    }
    const std::string& owner = owners[rng() % owners.size()];
    auto count = static_cast<int32_t>(1 + rng() % 2);
    auto mem = static_cast<int64_t>(1 + rng() % 16) * kGiB;
    auto cores = static_cast<int32_t>(rng() % 60);
    auto pct = static_cast<int32_t>(10 + rng() % 30);
    ContainerRequest c = rng() % 2 ? C(count, mem, cores) : C(1, std::nullopt, cores, pct);
    PodRequest pod = P({c});
    pod.uid = "p" + std::to_string(i);
    auto d = ScheduleUnderQuota(engine, state, pod, std::nullopt, {&book, owner});
    ASSERT_TRUE(d.ok());
    if (!d->scheduled) continue;
    ASSERT_TRUE(state.AddPlacement(pod.uid, d->node, d->placement).ok());
    book.AddUsage(pod.uid, owner, PlacementQuotaUsage(d->placement));
    placed.emplace_back(pod.uid, owner);
    for (const auto& row : book.Snapshot()) ASSERT_LE(row.used, row.limit) << row.owner;
  }
  EXPECT_GT(placed.size(), 20u);
}

}  // namespace
}  // namespace hami::sched
