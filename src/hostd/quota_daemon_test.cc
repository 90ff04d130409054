// `hami serve`'s quotas in the daemon (docs/quotas.md): a request over its user's quota waits in
// the queue with the reason and is granted, in order, when the user's slices are released; one
// larger than the whole quota is refused at once; usage survives a restart.
#include <gtest/gtest.h>
#include <unistd.h>

#include "hostd/daemon.h"
#include "hostd/test_util.h"
#include "hostd/webui_source.h"

namespace hami::hostd {
namespace {

using testing::Gpus;
using testing::TempDirGuard;

SliceRequest Req(int64_t mib, bool wait = true) {
  SliceRequest r;
  r.memory_mib = mib;
  r.wait = wait;
  r.command = {"test"};
  return r;
}

std::unique_ptr<Daemon> OpenWithQuota(const std::string& dir, const std::string& rule) {
  DaemonOptions o;
  o.state_dir = dir;
  o.node_name = "test";
  auto q = ParseQuotaRule(rule, false);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (q.ok()) o.quotas.push_back(*q);
  auto d = Daemon::Open(o, Gpus(2, 16384));
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(*d) : nullptr;
}

TEST(HostQuotaDaemonTest, OverQuotaWaitsWithReasonAndIsServedInOrder) {
  TempDirGuard dir("quota");
  const std::string me = std::to_string(geteuid());
  auto d = OpenWithQuota(dir.path, me + ":gpumem=8g,gpus=3");
  ASSERT_TRUE(d);
  auto a = d->Request(Req(4096));
  auto b = d->Request(Req(4096));
  ASSERT_TRUE(a.ok() && a->granted);
  ASSERT_TRUE(b.ok() && b->granted);
  // --no-wait: refused now, naming the quota.
  auto now = d->Request(Req(1024, /*wait=*/false));
  EXPECT_EQ(now.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(now.status().message().find("would exceed its gpumem quota"), std::string::npos)
      << now.status().message();
  // The GPUs have room (32 GiB); the user's quota does not.
  auto c = d->Request(Req(2048));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->granted);
  EXPECT_EQ(d->QueueReason(c->ticket),
            "user " + me + " would exceed its gpumem quota: 8/8 GiB used, 2 GiB asked");
  // A later, smaller request of the same user keeps its place behind the first.
  auto e = d->Request(Req(1024));
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->granted);
  EXPECT_EQ(e->position, 2);
  EXPECT_EQ(d->QueueReason(e->ticket), "an earlier request of the same user waits for its quota");
  // Larger than the whole quota: it could never be granted.
  auto never = d->Request(Req(12288));
  EXPECT_EQ(never.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(never.status().message(),
            "user " + me +
                ": the request asks 12 GiB of gpumem, more than its whole gpumem "
                "quota of 8 GiB");

  // Releasing one slice frees 4 GiB: the first waiting request is granted, then the second
  // (2 + 1 GiB fit in the 4 GiB freed, and the card quota of 3 is reached).
  ASSERT_TRUE(d->Release(a->slice.id).ok());
  auto pc = d->Poll(c->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(pc.ok());
  EXPECT_TRUE(pc->granted);
  auto pe = d->Poll(e->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(pe.ok());
  EXPECT_TRUE(pe->granted);
  auto rows = d->QuotaRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].used, 4096 + 2048 + 1024);
  EXPECT_EQ(rows[0].limit, 8192);
  EXPECT_EQ(rows[1].dim, sched::QuotaDim::kCards);
  EXPECT_EQ(rows[1].used, 3);
  auto f = d->Request(Req(512, /*wait=*/false));
  EXPECT_NE(f.status().message().find("would exceed its gpu quota: 3/3 GPUs used, 1 asked"),
            std::string::npos)
      << f.status().message();

  // A restarted daemon counts the same slices against the quota.
  auto before = d->QuotaRows();
  d.reset();
  d = OpenWithQuota(dir.path, me + ":gpumem=8g,gpus=3");
  ASSERT_TRUE(d);
  auto after = d->QuotaRows();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].used, before[i].used) << i;
}

// The web UI's quota view of the daemon: one row per rule with used / limit per bounded
// dimension, and the queued request held by the quota with the quota's reason.
TEST(HostQuotaDaemonTest, WebUiSourceShowsRowsAndTheRequestHeldByTheQuota) {
  TempDirGuard dir("quota-webui");
  const std::string me = std::to_string(geteuid());
  auto d = OpenWithQuota(dir.path, me + ":gpumem=8g,gpucores=150");
  ASSERT_TRUE(d);
  DaemonWebUiSource source(*d);
  webui::Snapshot empty = source.Collect();
  ASSERT_EQ(empty.quotas.size(), 1u);
  EXPECT_EQ(empty.quotas[0].memory_mib.used, 0);
  SliceRequest a = Req(4096);
  a.cores = 60;
  ASSERT_TRUE(d->Request(a).ok());
  ASSERT_TRUE(d->Request(Req(2048)).ok());
  auto held = d->Request(Req(4096));  // 6 + 4 GiB > 8 GiB: waits for the quota
  ASSERT_TRUE(held.ok());
  ASSERT_FALSE(held->granted);
  webui::Snapshot s = source.Collect();
  ASSERT_EQ(s.quotas.size(), 1u);
  const webui::QuotaRow& q = s.quotas[0];
  EXPECT_EQ(q.kind, "user");
  EXPECT_EQ(q.owner, me);
  EXPECT_EQ(q.ns, "hami-run");
  EXPECT_EQ(q.memory_mib.used, 6144);
  EXPECT_EQ(q.memory_mib.limit, 8192);
  EXPECT_EQ(q.cores.used, 60);
  EXPECT_EQ(q.cores.limit, 150);
  EXPECT_LT(q.gpus.limit, 0);  // no card ceiling given
  ASSERT_EQ(s.pending.size(), 1u);
  EXPECT_TRUE(s.pending[0].quota);
  EXPECT_EQ(s.pending[0].reason,
            "user " + me + " would exceed its gpumem quota: 6/8 GiB used, 4 GiB asked");
  EXPECT_EQ(s.quota_names.memory, "gpumem");
}

TEST(HostQuotaDaemonTest, PercentagesCountOnTheCardGranted) {
  TempDirGuard dir("quota-pct");
  const std::string me = std::to_string(geteuid());
  auto d = OpenWithQuota(dir.path, me + ":gpumem=6g");
  ASSERT_TRUE(d);
  SliceRequest r = Req(0);
  r.memory_percent = 25;  // 4 GiB of a 16 GiB card
  auto a = d->Request(r);
  ASSERT_TRUE(a.ok() && a->granted);
  EXPECT_EQ(d->QuotaRows()[0].used, 4096);
  auto b = d->Request(r);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->granted);
  EXPECT_EQ(d->QueueReason(b->ticket),
            "user " + me + " would exceed its gpumem quota: 4/6 GiB used, 4 GiB asked");
}

// Another user's request goes past an entry held only by its own user's quota (needs root to
// act for two users in one process).
TEST(HostQuotaDaemonTest, OtherUsersPassAQuotaHeldEntry) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make requests for another uid";
  TempDirGuard dir("quota-users");
  auto d = OpenWithQuota(dir.path, "4242:gpus=1");
  ASSERT_TRUE(d);
  SliceRequest a = Req(1024);
  a.uid = 4242;
  auto first = d->Request(a);
  ASSERT_TRUE(first.ok() && first->granted) << first.status().ToString();
  auto held = d->Request(a);
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(held->granted);
  EXPECT_EQ(d->QueueReason(held->ticket),
            "user 4242 would exceed its gpu quota: 1/1 GPUs used, 1 asked");
  auto other = d->Request(Req(1024, /*wait=*/false));  // root: no quota, GPUs free
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_TRUE(other->granted);
  ASSERT_TRUE(d->Release(first->slice.id).ok());
  auto later = d->Poll(held->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->granted);
}

}  // namespace
}  // namespace hami::hostd
