#include "common/hamicore_region.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/accounting_reader.h"
#include "common/testing/accounting_files.h"
#include "common/testing/hamicore_files.h"

namespace hami::accounting {
namespace {

using hami::testing::HamiCoreRegion;

HamiCoreRegion TwoDevicesThreeProcs() {
  HamiCoreRegion r;
  r.DeviceNum(2);
  r.Device(0, "GPU-aaaa", 4ull << 30, 30);
  r.Device(1, "GPU-bbbb", 2ull << 30, 0);
  r.Proc(0, 10, 0, 300, 20, 1000);
  r.Proc(1, 11, 0, 300, 0, 5000);
  r.Proc(1, 11, 1, 100, 0, 7);
  r.Proc(2, 12, 1, 0, 0, 0);  // live, no memory
  r.SmUtil(0, 0, 25);
  r.SmUtil(1, 0, 30);
  r.Proc(3, 13, 0, 999, 999, 999);  // beyond proc_num: a stale slot, not counted
  r.SmUtil(3, 0, 99);
  r.ProcNum(3);
  r.Priority(1);
  r.LastKernelTime(1'700'000'000);
  return r;
}

TEST(HamiCoreRegion, ParsesTheRegionIntoASnapshot) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  auto s = ParseAnyAccounting(r.bytes().data(), r.bytes().size());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->devices.size(), 2u);
  EXPECT_EQ(s->live_processes, 3u);
  const AccountingDevice& a = s->devices[0];
  EXPECT_EQ(a.uuid, "GPU-aaaa");
  EXPECT_EQ(a.limit_bytes, 4ull << 30);
  EXPECT_EQ(a.sm_limit_percent, 30u);
  EXPECT_EQ(a.used_bytes, 1320u + 5300u);
  EXPECT_EQ(a.processes, 2u);
  EXPECT_TRUE(a.has_memory_split);
  EXPECT_EQ(a.context_bytes, 600u);
  EXPECT_EQ(a.module_bytes, 20u);
  EXPECT_EQ(a.buffer_bytes, 6000u);
  EXPECT_EQ(a.sm_util_percent, 55u);
  EXPECT_EQ(a.priority, 1u);
  EXPECT_EQ(a.last_kernel_ns, 1'700'000'000ull * 1'000'000'000ull);
  const AccountingDevice& b = s->devices[1];
  EXPECT_EQ(b.uuid, "GPU-bbbb");
  EXPECT_EQ(b.limit_bytes, 2ull << 30);
  EXPECT_EQ(b.used_bytes, 107u);
  EXPECT_EQ(b.processes, 1u);
  EXPECT_EQ(b.context_bytes, 100u);
  EXPECT_EQ(b.buffer_bytes, 7u);
  EXPECT_EQ(b.sm_util_percent, 0u);
}

TEST(HamiCoreRegion, OurOwnFileStillParsesWithoutASplit) {
  std::string ours = hami::testing::AccountingBytes({{"GPU-a", 100, 5, 0, 0, 0}}, 1);
  auto s = ParseAnyAccounting(ours.data(), ours.size());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->devices.size(), 1u);
  EXPECT_FALSE(s->devices[0].has_memory_split);
  EXPECT_EQ(s->devices[0].used_bytes, 5u);
}

TEST(HamiCoreRegion, NeitherLayoutIsTheExistingBadMagicError) {
  std::string junk(HAMI_SHM_HEADER_SIZE, 'x');
  auto s = ParseAnyAccounting(junk.data(), junk.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("bad magic"), std::string::npos) << s.status().ToString();
}

// HAMi-core sizes the file before it sets the flag: not initialised yet reads as "no file yet"
// (skipped silently), not as a corrupt file; any other zero-flag content is still an error.
TEST(HamiCoreRegion, ARegionNotYetInitialisedIsNotFound) {
  std::string zeros(hami::testing::HamiCoreRegion::kSize, '\0');
  auto s = ParseAnyAccounting(zeros.data(), zeros.size());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound) << s.status().ToString();
  auto t = ParseAnyAccounting(zeros.data(), zeros.size() - 8);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
}

TEST(HamiCoreRegion, NotATimestampLeavesNoLastKernel) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.LastKernelTime(-5);
  auto s = ParseAnyAccounting(r.bytes().data(), r.bytes().size());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->devices[0].last_kernel_ns, 0u);
  r.LastKernelTime(0);
  s = ParseAnyAccounting(r.bytes().data(), r.bytes().size());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->devices[0].last_kernel_ns, 0u);
}

TEST(HamiCoreRegion, EmptyUuidEntriesAreSkipped) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.Device(0, "", 0, 0);
  auto s = ParseAnyAccounting(r.bytes().data(), r.bytes().size());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->devices.size(), 1u);
  EXPECT_EQ(s->devices[0].uuid, "GPU-bbbb");
}

// A saturating sum: a tenant writing huge counters gets a huge number, not a wrapped small one.
TEST(HamiCoreRegion, HugeCountersSaturate) {
  HamiCoreRegion r;
  r.DeviceNum(1);
  r.Device(0, "GPU-a", 1, 0);
  r.Proc(0, 1, 0, 0, 0, ~0ull - 1);
  r.Proc(1, 2, 0, 0, 0, ~0ull - 1);
  r.ProcNum(2);
  auto s = ParseAnyAccounting(r.bytes().data(), r.bytes().size());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->devices[0].used_bytes, ~0ull);
}

void ExpectError(HamiCoreRegion& r, std::size_t size, const std::string& needle) {
  auto s = ParseAnyAccounting(r.bytes().data(), size);
  ASSERT_FALSE(s.ok()) << "expected an error naming: " << needle;
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status().ToString();
}

TEST(HamiCoreRegion, TruncatedFileIsNamed) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  ExpectError(r, r.bytes().size() - 1, "needs 2008952");
  ExpectError(r, 4096, "needs 2008952");
  ExpectError(r, 6, "too short for the version");
}

TEST(HamiCoreRegion, TooManyDevicesIsNamed) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.DeviceNum(17);
  ExpectError(r, r.bytes().size(), "device_num 17 > 16");
  r.DeviceNum(~0ull);
  ExpectError(r, r.bytes().size(), "device_num");
}

TEST(HamiCoreRegion, ProcNumOutOfRangeIsNamed) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.ProcNum(1025);
  ExpectError(r, r.bytes().size(), "proc_num 1025 outside 0..1024");
  r.ProcNum(-1);
  ExpectError(r, r.bytes().size(), "proc_num -1");
  r.ProcNum(1024);  // the table full is fine
  EXPECT_TRUE(ParseAnyAccounting(r.bytes().data(), r.bytes().size()).ok());
}

TEST(HamiCoreRegion, UnterminatedOrNonPrintableUuidIsNamed) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.Device(1, std::string(96, 'G'), 1, 0);
  ExpectError(r, r.bytes().size(), "device 1 uuid is not terminated");
  r.Device(1, "GPU-\x01", 1, 0);
  ExpectError(r, r.bytes().size(), "device 1 uuid has a non-printable byte");
}

TEST(HamiCoreRegion, UnsupportedVersionsAreNamed) {
  HamiCoreRegion r = TwoDevicesThreeProcs();
  r.Version(2, 0);
  ExpectError(r, r.bytes().size(), "unsupported version 2.0");
  r.Version(0, 7);
  ExpectError(r, r.bytes().size(), "unsupported version 0.7");
  r.Version(1, 9);  // any 1.x minor keeps the layout
  EXPECT_TRUE(ParseAnyAccounting(r.bytes().data(), r.bytes().size()).ok());
  ExpectError(r, 1197896, "v0 layout");
}

TEST(HamiCoreRegion, ReadAccountingFileDispatchesAndNamesThePath) {
  char dir[] = "/tmp/hamicore_region_testXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string good = std::string(dir) + "/a.cache", bad = std::string(dir) + "/b.cache";
  HamiCoreRegion r = TwoDevicesThreeProcs();
  hami::testing::WriteFile(good, r.bytes());
  r.ProcNum(5000);
  hami::testing::WriteFile(bad, r.bytes());
  auto s = ReadAccountingFile(good);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->devices.size(), 2u);
  auto e = ReadAccountingFile(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find(bad), std::string::npos);
  EXPECT_NE(e.status().message().find("proc_num 5000"), std::string::npos);
  std::remove(good.c_str());
  std::remove(bad.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace hami::accounting
