#include "hostd/store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "hostd/test_util.h"

namespace hami::hostd {
namespace {

using testing::TempDirGuard;

TEST(StoreTest, SlicesAndQueueSurviveReopen) {
  TempDirGuard dir("store");
  std::string db = dir.path + "/hami.db";
  int64_t first = 0;
  {
    auto st = Store::Open(db);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    Slice s;
    s.request.memory_mib = 1234;
    s.devices = {{"GPU-a", 0, "T", 1234, 5}};
    ASSERT_TRUE((*st)->InsertSlice(&s, [](Slice* x) { x->dir = "/d/" + x->Name(); }).ok());
    first = s.id;
    EXPECT_GT(first, 0);
    EXPECT_EQ(s.dir, "/d/" + s.Name());
    s.job = {77, 88};
    ASSERT_TRUE((*st)->UpdateSlice(s).ok());
    QueueEntry q1, q2;
    q1.request.memory_mib = 1;
    q1.created_unix = 10;
    q2.request.memory_mib = 2;
    ASSERT_TRUE((*st)->InsertQueued(&q1).ok());
    ASSERT_TRUE((*st)->InsertQueued(&q2).ok());
    EXPECT_LT(q1.ticket, q2.ticket);
  }
  auto st = Store::Open(db);
  ASSERT_TRUE(st.ok());
  auto slices = (*st)->LoadSlices();
  ASSERT_TRUE(slices.ok());
  ASSERT_EQ(slices->size(), 1u);
  EXPECT_EQ((*slices)[0].id, first);
  EXPECT_EQ((*slices)[0].job.pid, 77);
  EXPECT_EQ((*slices)[0].devices[0].memory_mib, 1234);
  auto queue = (*st)->LoadQueue();
  ASSERT_TRUE(queue.ok());
  ASSERT_EQ(queue->size(), 2u);
  EXPECT_EQ((*queue)[0].request.memory_mib, 1);
  EXPECT_EQ((*queue)[0].created_unix, 10);
  EXPECT_EQ((*queue)[1].request.memory_mib, 2);

  // Granting from the queue removes the ticket in the same transaction.
  Slice s2;
  ASSERT_TRUE((*st)
                  ->InsertSlice(
                      &s2, [](Slice*) {}, (*queue)[0].ticket)
                  .ok());
  EXPECT_GT(s2.id, first);
  EXPECT_EQ((*st)->LoadQueue()->size(), 1u);
  ASSERT_TRUE((*st)->DeleteSlice(first).ok());
  EXPECT_EQ((*st)->DeleteSlice(first).code(), StatusCode::kNotFound);
  EXPECT_EQ((*st)->DeleteQueued(9999).code(), StatusCode::kNotFound);
  // Ids are not reused after a delete.
  Slice s3;
  ASSERT_TRUE((*st)->InsertSlice(&s3, [](Slice*) {}).ok());
  EXPECT_GT(s3.id, s2.id);
}

TEST(StoreTest, UnopenableDatabaseIsAnError) {
  auto st = Store::Open("/nonexistent-dir/for/sure/hami.db");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(st.status().message().find("/nonexistent-dir"), std::string::npos);
}

TEST(StoreTest, NotADatabaseIsAnError) {
  TempDirGuard dir("notdb");
  std::string db = dir.path + "/hami.db";
  std::ofstream(db) << "this is not sqlite, just text that is long enough to be a header.....";
  auto st = Store::Open(db);
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace hami::hostd
