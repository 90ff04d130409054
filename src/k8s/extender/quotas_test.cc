#include "k8s/extender/quotas.h"

#include <gtest/gtest.h>

#include "k8s/extender/webhook.h"
#include "k8s/testing/fixtures.h"

namespace hami::k8s {
namespace {

Json Quota(const std::string& ns, const std::string& name, const Json& hard) {
  return {{"apiVersion", "v1"},
          {"kind", "ResourceQuota"},
          {"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"hard", hard}}}};
}

TEST(QuotaObjectTest, ReadsHamisKeysTable) {
  struct Case {
    const char* name;
    Json hard;
    double factor;
    sched::QuotaLimits want;
  };
  std::vector<Case> cases = {
      {"HAMi's memory and cores",
       {{"limits.nvidia.com/gpumem", "40960"}, {"limits.nvidia.com/gpucores", "300"}},
       1,
       {40960, 300, std::nullopt}},
      {"cards", {{"limits.nvidia.com/gpu", "4"}}, 1, {std::nullopt, std::nullopt, 4}},
      {"Kubernetes' own keys ignored",
       {{"requests.nvidia.com/gpu", "2"}, {"limits.cpu", "4"}, {"pods", "10"}},
       1,
       {}},
      {"memoryFactor scales the memory ceiling",
       {{"limits.nvidia.com/gpumem", "1000"}, {"limits.nvidia.com/gpucores", "50"}},
       4,
       {4000, 50, std::nullopt}},
      {"quantity suffixes",
       {{"limits.nvidia.com/gpumem", "40k"}},
       1,
       {40000, std::nullopt, std::nullopt}},
      {"zero admits nothing", {{"limits.nvidia.com/gpu", "0"}}, 1, {std::nullopt, std::nullopt, 0}},
  };
  for (const auto& c : cases) {
    auto l = QuotaLimitsFromResourceQuota(Quota("team-a", "q", c.hard), {}, c.factor);
    ASSERT_TRUE(l.ok()) << c.name << ": " << l.status().ToString();
    EXPECT_EQ(*l, c.want) << c.name;
  }
  // Configured resource names are honoured.
  ResourceNames names;
  names.memory = "example.com/vmem";
  auto l = QuotaLimitsFromResourceQuota(
      Quota("ns", "q", {{"limits.example.com/vmem", "10"}, {"limits.nvidia.com/gpumem", "5"}}),
      names, 1);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->memory_mib, 10);
  EXPECT_EQ(QuotaKey(names, sched::QuotaDim::kMemory), "limits.example.com/vmem");
}

TEST(QuotaObjectTest, BadValuesAreNamedAndFailClosed) {
  Json q = Quota("team-a", "gpu-quota",
                 {{"limits.nvidia.com/gpumem", "1.5"}, {"limits.nvidia.com/gpucores", "200"}});
  auto l = QuotaLimitsFromResourceQuota(q, {}, 1);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message(),
            "ResourceQuota team-a/gpu-quota limits.nvidia.com/gpumem: quantity \"1.5\" is not a "
            "whole number");
  std::string error;
  sched::QuotaLimits closed = QuotaLimitsOrClosed(q, {}, 1, &error);
  EXPECT_EQ(error, l.status().message());
  EXPECT_EQ(closed, (sched::QuotaLimits{0, 200, std::nullopt}));
  Json broken = Quota("team-a", "q", "not an object");
  EXPECT_EQ(QuotaLimitsOrClosed(broken, {}, 1, &error), (sched::QuotaLimits{0, 0, 0}));
  EXPECT_NE(error.find("spec.hard is not an object"), std::string::npos);
  // Readable quotas report no error.
  QuotaLimitsOrClosed(Quota("a", "b", {{"limits.nvidia.com/gpu", "1"}}), {}, 1, &error);
  EXPECT_EQ(error, "");
}

TEST(QuotaObjectTest, MetricUsesHamisNameAndLabels) {
  sched::QuotaBook book;
  book.SetLimits("team-a", "q", {40960, std::nullopt, 4});
  book.AddUsage("p", "team-a", {38912, 30, 2});
  std::string text = QuotaMetricsText(book.Snapshot(), {});
  EXPECT_NE(text.find("# TYPE hami_resource_quota_used gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hami_resource_quota_used{namespace=\"team-a\",quota_name=\"nvidia.com/"
                      "gpumem\",limit=\"40960\"} 38912\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("hami_resource_quota_used{namespace=\"team-a\",quota_name=\"nvidia.com/"
                      "gpu\",limit=\"4\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("QuotaUsed{quotanamespace=\"team-a\",quotaName=\"nvidia.com/gpumem\","
                      "limit=\"40960\"} 38912\n"),
            std::string::npos)
      << text;
  // Unbounded dimensions have no series.
  EXPECT_EQ(text.find("gpucores"), std::string::npos) << text;
}

}  // namespace
}  // namespace hami::k8s

namespace hami::k8s {
namespace {

// The webhook asks its quota check and denies, naming the quota, a pod larger than the whole
// quota; everything else passes to the scheduler (which keeps it pending while quota is used).
TEST(QuotaWebhookTest, DeniesOnlyWhatCanNeverFit) {
  sched::QuotaBook book;
  book.SetLimits("team-a", "q", {40 * 1024, 300, 4});
  book.AddUsage("running", "team-a", {40 * 1024, 300, 4});  // full: still admitted
  WebhookOptions o;
  o.quota_check = [&](const std::string& ns, const sched::ResolvedPod& pod) {
    return book.CheckEverFits(ns, sched::RequestQuotaUsage(pod, 0));
  };
  struct Case {
    const char* name;
    Json pod;
    bool allowed;
    std::string message;
  };
  std::vector<Case> cases = {
      {"fits an empty quota", testing::MakeGpuPod("team-a", "p", 1, 4096), true, ""},
      {"bigger than the quota", testing::MakeGpuPod("team-a", "p", 2, 25 * 1024), false,
       "hami: namespace team-a: the pod asks 50 GiB of gpumem, more than its whole gpumem "
       "quota of 40 GiB"},
      {"more cards than the quota", testing::MakeGpuPod("team-a", "p", 5, 10), false,
       "hami: namespace team-a: the pod asks 5 of gpu, more than its whole gpu quota of 4 "
       "GPUs"},
      {"other namespace", testing::MakeGpuPod("team-b", "p", 2, 25 * 1024), true, ""},
  };
  // A percentage depends on the card: never denied here.
  Json pct = testing::MakePod("team-a", "p", {{"main", {{"nvidia.com/gpumem-percentage", "90"}}}});
  cases.push_back({"percentage", pct, true, ""});
  for (const auto& c : cases) {
    auto r = ReviewAdmission(testing::MakeAdmissionReview(c.pod), o);
    ASSERT_TRUE(r.ok()) << c.name;
    const Json& resp = (*r)["response"];
    EXPECT_EQ(resp["allowed"].get<bool>(), c.allowed) << c.name << ": " << resp.dump();
    if (!c.allowed) {
      EXPECT_EQ(resp["status"]["code"], 403) << c.name;
      EXPECT_EQ(resp["status"]["message"], c.message) << c.name;
    }
  }
}

}  // namespace
}  // namespace hami::k8s
