#include "sched/rules/score.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

TEST(RuleScore, FitKeyTable) {
  struct Case {
    const char* name;
    GpuUsage used;
    ResolvedContainer req;
    double want;
  } cases[] = {
      {"whole card exclusive leaves nothing", Use(), Req(10000, 100), 0.0},
      {"exclusive counts only memory left", Use(), Req(4000, 100), 0.6},
      {"half and half", Use(), Req(5000, 50), 0.55},
      {"cores left beyond memory count a tenth", Use(), Req(5000, 10), 0.59},
      {"memory left without cores counts as memory", Use(0, 0), Req(1000, 95), 0.99},
      {"tight after another slice", Use(6000, 60, 1), Req(4000, 40), 0.0},
  };
  auto g = Slot();
  for (const Case& c : cases) EXPECT_NEAR(FitKey(g, c.used, c.req), c.want, 1e-6) << c.name;
}

TEST(RuleScore, GpuPrefTable) {
  Norm even(ScoringWeights{1, 1, 1});
  Norm memory_only(ScoringWeights{0, 0, 1});
  struct Case {
    const char* name;
    GpuPolicy policy;
    const Norm* norm;
    GpuUsage used;
    ResolvedContainer req;
    double want;
  } cases[] = {
      {"binpack is minus the fit key", GpuPolicy::kBinpack, &even, Use(), Req(5000, 50), -0.55},
      {"spread: even weights", GpuPolicy::kSpread, &even, Use(), Req(5000, 50),
       1.0 - (0.1 + 0.5 + 0.5) / 3},
      {"spread: memory only", GpuPolicy::kSpread, &memory_only, Use(2000, 0, 1), Req(3000), 0.5},
      {"spread: utilisation clamps at 1", GpuPolicy::kSpread, &memory_only, Use(9000), Req(5000),
       0.0},
  };
  auto g = Slot();
  for (const Case& c : cases)
    EXPECT_NEAR(GpuPref(g, c.used, c.req, c.policy, *c.norm), c.want, 1e-6) << c.name;
}

TEST(RuleScore, NodeScoreTable) {
  internal::NodeEntry n;
  n.total_mem = 20000;
  n.used_mem = 5000;
  n.total_cores = 200;
  n.used_cores = 50;
  n.total_slots = 20;
  n.used_slots = 5;
  n.inv_total_mem = 1.0 / 20000;
  n.inv_total_cores = 1.0 / 200;
  n.inv_total_slots = 1.0 / 20;
  Norm even(ScoringWeights{1, 1, 1});
  Added a;  // the pod takes another quarter in every dimension
  a.mem = 5000;
  a.cores = 50;
  a.slots = 5;
  Added tight = a;
  tight.gpus = 1;
  tight.leftover = 0;
  internal::NodeEntry empty;  // no GPU: counts as full
  struct Case {
    const char* name;
    const internal::NodeEntry* node;
    Added added;
    NodePolicy policy;
    bool best_fit;
    int64_t want;
  } cases[] = {
      {"binpack: utilisation after the pod", &n, a, NodePolicy::kBinpack, false, 500000},
      {"spread: its complement", &n, a, NodePolicy::kSpread, false, 500000},
      {"binpack, nothing added", &n, Added{}, NodePolicy::kBinpack, false, 250000},
      {"spread, nothing added", &n, Added{}, NodePolicy::kSpread, false, 750000},
      {"best fit: perfect fit, utilisation breaks ties", &n, tight, NodePolicy::kBinpack, true,
       999500},
      {"best fit without chosen GPUs is binpack", &n, a, NodePolicy::kBinpack, true, 500000},
      {"node without capacity counts as full", &empty, Added{}, NodePolicy::kBinpack, false,
       kScoreMax},
  };
  for (const Case& c : cases)
    EXPECT_EQ(NodeScore(*c.node, c.added, even, c.policy, c.best_fit), c.want) << c.name;
}

TEST(RuleScore, ExtenderScale) {
  struct Case {
    int64_t score;
    int32_t want;
  } cases[] = {{0, 0}, {kScoreMax, 10}, {550000, 6}, {449999, 4}, {50000, 1}, {49999, 0}};
  for (const Case& c : cases) EXPECT_EQ(ExtenderScore(c.score), c.want) << c.score;
}

}  // namespace
}  // namespace hami::sched::rules
