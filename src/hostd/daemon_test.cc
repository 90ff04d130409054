#include "hostd/daemon.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "hostd/test_util.h"

namespace hami::hostd {
namespace {

using testing::Gpus;
using testing::KillChild;
using testing::SpawnSleeper;
using testing::TempDirGuard;

SliceRequest Req(int64_t mib, int32_t cores = 0, bool wait = true) {
  SliceRequest r;
  r.memory_mib = mib;
  r.cores = cores;
  r.wait = wait;
  r.command = {"test"};
  return r;
}

std::unique_ptr<Daemon> OpenDaemon(const std::string& dir, int ngpus = 1, uint64_t mib = 16384) {
  DaemonOptions o;
  o.state_dir = dir;
  o.node_name = "test";
  auto d = Daemon::Open(o, Gpus(ngpus, mib));
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(*d) : nullptr;
}

TEST(DaemonTest, GrantsSliceAndWritesLimitsFile) {
  TempDirGuard dir("grant");
  auto d = OpenDaemon(dir.path);
  auto g = d->Request(Req(2048, 30));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_TRUE(g->granted);
  EXPECT_EQ(g->slice.devices.size(), 1u);
  EXPECT_EQ(g->slice.devices[0].uuid, "GPU-test-0");
  EXPECT_EQ(g->slice.devices[0].memory_mib, 2048);
  std::ifstream f(g->slice.limits_file);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(text.find("CUDA_DEVICE_MEMORY_LIMIT_0=2048m\n"), std::string::npos) << text;
  EXPECT_NE(text.find("CUDA_DEVICE_SM_LIMIT_0=30\n"), std::string::npos);
  EXPECT_NE(text.find("CUDA_DEVICE_UUID_0=GPU-test-0\n"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(g->slice.cache_file));
  auto gpus = d->Gpus();
  EXPECT_EQ(gpus[0].usage.used_mem_mib, 2048);
  EXPECT_EQ(gpus[0].usage.used_cores, 30);

  ASSERT_TRUE(d->Release(g->slice.id).ok());
  EXPECT_FALSE(std::filesystem::exists(g->slice.dir));
  EXPECT_EQ(d->Gpus()[0].usage.used_mem_mib, 0);
  EXPECT_EQ(d->Release(g->slice.id).code(), StatusCode::kNotFound);
}

TEST(DaemonTest, WholeCardWhenNoMemoryGiven) {
  TempDirGuard dir("whole");
  auto d = OpenDaemon(dir.path, 1, 8192);
  auto g = d->Request(Req(0));
  ASSERT_TRUE(g.ok() && g->granted);
  EXPECT_EQ(g->slice.devices[0].memory_mib, 8192);
  auto again = d->Request(Req(1, 0, /*wait=*/false));
  EXPECT_EQ(again.status().code(), StatusCode::kResourceExhausted);
}

TEST(DaemonTest, PercentOfCard) {
  TempDirGuard dir("pct");
  auto d = OpenDaemon(dir.path, 1, 8192);
  SliceRequest r;
  r.memory_percent = 25;
  auto g = d->Request(r);
  ASSERT_TRUE(g.ok() && g->granted);
  EXPECT_EQ(g->slice.devices[0].memory_mib, 2048);
}

TEST(DaemonTest, NeverFitsIsRefusedAtOnceWithReason) {
  TempDirGuard dir("never");
  auto d = OpenDaemon(dir.path, 1, 8192);
  auto g = d->Request(Req(9000));
  EXPECT_EQ(g.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(g.status().message().find("insufficient GPU memory"), std::string::npos)
      << g.status().message();
  SliceRequest two = Req(100);
  two.gpus = 2;
  EXPECT_EQ(d->Request(two).status().code(), StatusCode::kFailedPrecondition);
  SliceRequest typed = Req(100);
  typed.gpu_types = {"A100"};
  EXPECT_EQ(d->Request(typed).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(d->Queue().empty());
}

TEST(DaemonTest, InvalidRequestIsRefused) {
  TempDirGuard dir("invalid");
  auto d = OpenDaemon(dir.path);
  SliceRequest r = Req(100);
  r.gpus = 0;
  EXPECT_EQ(d->Request(r).status().code(), StatusCode::kInvalidArgument);
  r = Req(100, 101);
  EXPECT_EQ(d->Request(r).status().code(), StatusCode::kInvalidArgument);
}

TEST(DaemonTest, GpuTypeAndUuidSelection) {
  TempDirGuard dir("select");
  auto d = OpenDaemon(dir.path, 3);
  SliceRequest r = Req(100);
  r.gpu_uuids = {"GPU-test-2"};
  auto g = d->Request(r);
  ASSERT_TRUE(g.ok() && g->granted);
  EXPECT_EQ(g->slice.devices[0].uuid, "GPU-test-2");
  EXPECT_EQ(g->slice.devices[0].index, 2);
  r = Req(100);
  r.gpu_types = {"t4"};  // case-insensitive substring of "NVIDIA-Tesla T4"
  EXPECT_TRUE(d->Request(r).ok());
}

TEST(DaemonTest, NoWaitFailsWhenFullButQueueWaits) {
  TempDirGuard dir("nowait");
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto a = d->Request(Req(3000));
  ASSERT_TRUE(a.ok() && a->granted);
  auto b = d->Request(Req(2000, 0, false));
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("insufficient GPU memory"), std::string::npos);
  auto c = d->Request(Req(2000));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->granted);
  EXPECT_EQ(c->position, 1);
}

TEST(DaemonTest, QueueIsFifo) {
  TempDirGuard dir("fifo");
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto a = d->Request(Req(4096));
  ASSERT_TRUE(a.ok() && a->granted);
  auto big = d->Request(Req(3000));   // head of the queue
  auto small = d->Request(Req(500));  // would fit after big; must not jump the queue
  ASSERT_TRUE(big.ok() && small.ok());
  EXPECT_EQ(big->position, 1);
  EXPECT_EQ(small->position, 2);
  // While the queue is non-empty a request that would fit still queues behind it.
  auto p = d->Poll(small->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->granted);
  EXPECT_EQ(p->position, 2);

  ASSERT_TRUE(d->Release(a->slice.id).ok());
  auto pb = d->Poll(big->ticket, std::chrono::milliseconds(0));
  auto ps = d->Poll(small->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(pb.ok() && ps.ok());
  EXPECT_TRUE(pb->granted);
  EXPECT_EQ(pb->slice.devices[0].memory_mib, 3000);
  EXPECT_TRUE(ps->granted);  // 3000 + 500 fit in 4096: both go once the card is free
  EXPECT_GT(ps->slice.id, pb->slice.id);
}

TEST(DaemonTest, HeadOfQueueBlocksLaterOnes) {
  TempDirGuard dir("head");
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto a = d->Request(Req(2000));
  auto b = d->Request(Req(3000));  // queued: 2000 + 3000 > 4096
  auto c = d->Request(Req(1000));  // would fit now, but b is first
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->granted);
  EXPECT_FALSE(b->granted);
  EXPECT_FALSE(c->granted);
  EXPECT_EQ(c->position, 2);
  ASSERT_TRUE(d->Cancel(b->ticket).ok());  // b leaves: c is head and fits
  auto pc = d->Poll(c->ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(pc.ok());
  EXPECT_TRUE(pc->granted);
  EXPECT_EQ(d->Cancel(b->ticket).code(), StatusCode::kNotFound);
}

TEST(DaemonTest, PollWakesOnGrant) {
  TempDirGuard dir("poll");
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto a = d->Request(Req(4096));
  auto b = d->Request(Req(1000));
  ASSERT_TRUE(a.ok() && b.ok() && !b->granted);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (void)d->Release(a->slice.id);
  });
  auto start = std::chrono::steady_clock::now();
  auto p = d->Poll(b->ticket, std::chrono::milliseconds(5000));
  t.join();
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->granted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(DaemonTest, RestartKeepsSlicesAndQueue) {
  TempDirGuard dir("restart");
  int64_t id1, ticket;
  {
    auto d = OpenDaemon(dir.path, 1, 4096);
    SliceRequest r = Req(3000, 40);
    r.priority = 1;
    r.command = {"python", "train.py"};
    auto a = d->Request(r);
    ASSERT_TRUE(a.ok() && a->granted);
    id1 = a->slice.id;
    auto q = d->Request(Req(2000));
    ASSERT_TRUE(q.ok() && !q->granted);
    ticket = q->ticket;
  }
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto slices = d->Slices();
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].id, id1);
  EXPECT_EQ(slices[0].request.priority, 1);
  EXPECT_EQ(slices[0].request.cores, 40);
  EXPECT_EQ(slices[0].request.command, (std::vector<std::string>{"python", "train.py"}));
  EXPECT_EQ(slices[0].devices[0].memory_mib, 3000);
  EXPECT_TRUE(std::filesystem::exists(slices[0].limits_file));
  EXPECT_EQ(d->Gpus()[0].usage.used_mem_mib, 3000);
  ASSERT_EQ(d->Queue().size(), 1u);
  EXPECT_EQ(d->Queue()[0].ticket, ticket);
  // The restored usage is enforced.
  EXPECT_EQ(d->Request(Req(2000, 0, false)).status().code(), StatusCode::kResourceExhausted);
  // Ids are never reused.
  ASSERT_TRUE(d->Release(id1).ok());
  auto p = d->Poll(ticket, std::chrono::milliseconds(0));
  ASSERT_TRUE(p.ok() && p->granted);
  EXPECT_GT(p->slice.id, id1);
}

TEST(DaemonTest, OneDaemonPerStateDirectory) {
  TempDirGuard dir("lock");
  auto first = OpenDaemon(dir.path);
  DaemonOptions o;
  o.state_dir = dir.path;
  auto second = Daemon::Open(o, Gpus(1));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another hami serve (pid " + std::to_string(getpid())),
            std::string::npos)
      << second.status().message();
  first.reset();
  EXPECT_TRUE(Daemon::Open(o, Gpus(1)).ok());
}

TEST(DaemonTest, ReapsSliceWhenOwnerAndJobAreGone) {
  TempDirGuard dir("reap");
  auto d = OpenDaemon(dir.path);
  ProcessRef owner = SpawnSleeper();
  ProcessRef job = SpawnSleeper();
  SliceRequest r = Req(1000);
  r.owner = owner;
  auto g = d->Request(r);
  ASSERT_TRUE(g.ok() && g->granted);
  ASSERT_TRUE(d->AttachJob(g->slice.id, job).ok());
  EXPECT_EQ(d->ReapDead(), 0);
  KillChild(owner);
  // The job still runs (it may hold GPU memory): the slice stays.
  EXPECT_EQ(d->ReapDead(), 0);
  EXPECT_EQ(d->Slices().size(), 1u);
  KillChild(job);
  EXPECT_EQ(d->ReapDead(), 1);
  EXPECT_TRUE(d->Slices().empty());
  EXPECT_EQ(d->Gpus()[0].usage.used_mem_mib, 0);
}

TEST(DaemonTest, ReapsQueueEntryOfDeadOwnerAndPidReuseDoesNotKeepSlice) {
  TempDirGuard dir("reapq");
  auto d = OpenDaemon(dir.path, 1, 4096);
  auto a = d->Request(Req(4096));
  ProcessRef waiter = SpawnSleeper();
  SliceRequest r = Req(100);
  r.owner = waiter;
  auto q = d->Request(r);
  ASSERT_TRUE(q.ok() && !q->granted);
  KillChild(waiter);
  EXPECT_EQ(d->ReapDead(), 1);
  EXPECT_TRUE(d->Queue().empty());
  // An owner whose pid exists but started at another time is a different process.
  SliceRequest s = Req(0);
  s.owner = Self();
  s.owner.start_ticks += 1;
  ASSERT_TRUE(d->Release(a->slice.id).ok());
  auto g = d->Request(s);
  ASSERT_TRUE(g.ok() && g->granted);
  EXPECT_EQ(d->ReapDead(), 1);
}

TEST(DaemonTest, ReaperThreadFreesPromptly) {
  TempDirGuard dir("reaper");
  DaemonOptions o;
  o.state_dir = dir.path;
  o.reap_interval = std::chrono::milliseconds(20);
  auto d = Daemon::Open(o, Gpus(1));
  ASSERT_TRUE(d.ok());
  (*d)->StartReaper();
  ProcessRef owner = SpawnSleeper();
  SliceRequest r = Req(1000);
  r.owner = owner;
  ASSERT_TRUE((*d)->Request(r).ok());
  KillChild(owner);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!(*d)->Slices().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE((*d)->Slices().empty());
  (*d)->StopReaper();
}

TEST(DaemonTest, ConcurrentRequestsNeverOvercommit) {
  TempDirGuard dir("concurrent");
  auto d = OpenDaemon(dir.path, 2, 10000);
  std::atomic<int> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      auto g = d->Request(Req(3000, 0, /*wait=*/false));
      if (g.ok() && g->granted) {
        ++granted;
      } else if (g.status().code() == StatusCode::kResourceExhausted) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 6);  // 3 per 10000 MiB card
  EXPECT_EQ(refused.load(), 14);
  for (const auto& g : d->Gpus()) EXPECT_LE(g.usage.used_mem_mib, g.memory_mib);
}

TEST(DaemonTest, RepeatedRequestIdGetsTheSameSliceOrTicket) {
  TempDirGuard dir("dedup");
  auto d = OpenDaemon(dir.path, 1, 4096);
  SliceRequest r = Req(3000);
  r.request_id = "client-1";
  auto a = d->Request(r);
  auto again = d->Request(r);
  ASSERT_TRUE(a.ok() && again.ok());
  ASSERT_TRUE(a->granted && again->granted);
  EXPECT_EQ(a->slice.id, again->slice.id);
  EXPECT_EQ(d->Slices().size(), 1u);
  SliceRequest q = Req(3000);
  q.request_id = "client-2";
  auto qa = d->Request(q);
  auto qb = d->Request(q);
  ASSERT_TRUE(qa.ok() && qb.ok());
  EXPECT_FALSE(qb->granted);
  EXPECT_EQ(qa->ticket, qb->ticket);
  EXPECT_EQ(d->Queue().size(), 1u);
}

}  // namespace
}  // namespace hami::hostd
