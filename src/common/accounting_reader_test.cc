#include "common/accounting_reader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <random>

#include "common/testing/accounting_files.h"

namespace hami::accounting {
namespace {

using hami::testing::AccountingBytes;
using hami::testing::WriteFile;

TEST(AccountingReader, ParsesAGoodFile) {
  std::string b =
      AccountingBytes({{"GPU-a", 3000ull << 20, 1234, 55, 99, 1}, {"GPU-b", 0, 7, 0, 0, 0}}, 2);
  auto s = ParseAccounting(b.data(), b.size());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->devices.size(), 2u);
  EXPECT_EQ(s->devices[0].uuid, "GPU-a");
  EXPECT_EQ(s->devices[0].limit_bytes, 3000ull << 20);
  EXPECT_EQ(s->devices[0].used_bytes, 1234u);
  EXPECT_EQ(s->devices[0].last_kernel_ns, 55u);
  EXPECT_EQ(s->devices[0].busy_ns_total, 99u);
  EXPECT_EQ(s->devices[0].priority, 1u);
  EXPECT_EQ(s->devices[0].sm_limit_percent, 30u);
  EXPECT_EQ(s->devices[1].uuid, "GPU-b");
  EXPECT_EQ(s->live_processes, 2u);
  EXPECT_EQ(s->generation, 7u);
}

// `hami ps` shows per device how many live processes hold memory on it (slots with used[d] > 0);
// free slots and live ones without memory on the device do not count.
TEST(AccountingReader, CountsLiveProcessesHoldingMemoryPerDevice) {
  std::string b = AccountingBytes({{"GPU-a", 0, 10, 0, 0, 0}, {"GPU-b", 0, 20, 0, 0, 0}}, 4);
  auto set_used = [&](uint32_t slot, uint32_t dev, uint64_t bytes) {
    std::memcpy(b.data() + HAMI_SHM_HEADER_SIZE + slot * HAMI_SHM_SLOT_SIZE +
                    offsetof(hami_shm_slot, used) + dev * sizeof(uint64_t),
                &bytes, sizeof(bytes));
  };
  set_used(0, 0, 4);
  set_used(1, 0, 6);
  set_used(1, 1, 20);
  set_used(3, 0, 1);
  const uint32_t free_state = 0;  // slot 3 is free: its stale used[] does not count
  std::memcpy(b.data() + HAMI_SHM_HEADER_SIZE + 3 * HAMI_SHM_SLOT_SIZE, &free_state,
              sizeof(free_state));
  auto s = ParseAccounting(b.data(), b.size());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->live_processes, 3u);
  ASSERT_NE(s->Find("GPU-a"), nullptr);
  ASSERT_NE(s->Find("GPU-b"), nullptr);
  EXPECT_EQ(s->Find("GPU-a")->processes, 2u);
  EXPECT_EQ(s->Find("GPU-a")->used_bytes, 10u);
  EXPECT_EQ(s->Find("GPU-b")->processes, 1u);
  EXPECT_EQ(s->Find("GPU-c"), nullptr);
}

TEST(AccountingReader, RejectsCorruptFilesNamingTheCheck) {
  const std::string good = AccountingBytes({{"GPU-a", 1, 1, 0, 0, 0}}, 1);
  struct Case {
    std::size_t offset;  // into the header
    uint32_t value;
    const char* expect;
  } cases[] = {
      {offsetof(hami_shm_header, magic), 0x1234, "magic"},
      {offsetof(hami_shm_header, version), 9, "version"},
      {offsetof(hami_shm_header, header_size), 4096, "header_size"},
      {offsetof(hami_shm_header, slot_size), 128, "slot_size"},
      {offsetof(hami_shm_header, device_count), 17, "device_count"},
      {offsetof(hami_shm_header, slot_high_water), 5, "slot_high_water"},
  };
  for (const auto& c : cases) {
    std::string b = good;
    std::memcpy(b.data() + c.offset, &c.value, sizeof(c.value));
    auto s = ParseAccounting(b.data(), b.size());
    ASSERT_FALSE(s.ok()) << c.expect;
    EXPECT_NE(s.status().message().find(c.expect), std::string::npos) << s.status().message();
  }
  EXPECT_FALSE(ParseAccounting(good.data(), 100).ok());
  // Slots claimed beyond the end of the file.
  EXPECT_FALSE(ParseAccounting(good.data(), HAMI_SHM_HEADER_SIZE).ok());
  // A UUID that fills its field without a terminator, or with control bytes, is corrupt.
  std::string unterminated = good;
  std::memset(unterminated.data() + offsetof(hami_shm_header, devices), 'A', HAMI_SHM_UUID_LEN);
  auto u = ParseAccounting(unterminated.data(), unterminated.size());
  EXPECT_NE(u.status().message().find("not terminated"), std::string::npos);
  std::string control = good;
  control[offsetof(hami_shm_header, devices) + 2] = '\n';
  EXPECT_FALSE(ParseAccounting(control.data(), control.size()).ok());
}

TEST(AccountingReader, RandomBytesNeverCrash) {
  std::mt19937_64 rng(42);
  std::string b = AccountingBytes({{"GPU-a", 1, 1, 0, 0, 0}}, 1);
  for (int i = 0; i < 2000; ++i) {
    std::string m = b;
    for (int k = 0; k < 8; ++k) m[rng() % 256] = static_cast<char>(rng());
    auto s = ParseAccounting(m.data(), m.size() - (rng() % 300));
    if (s.ok()) {
      EXPECT_LE(s->devices.size(), 16u);
    }
  }
}

TEST(AccountingReader, ReadsFilesAndReportsMissingOnes) {
  char tmpl[] = "/tmp/hami-acct-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/vgpu.cache";
  WriteFile(path, AccountingBytes({{"GPU-a", 1, 42, 0, 0, 0}}, 1));
  auto s = ReadAccountingFile(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->devices[0].used_bytes, 42u);
  EXPECT_EQ(ReadAccountingFile(path + ".nope").status().code(), StatusCode::kNotFound);
  // `hami serve` creates the file empty before any CUDA process initialises it: no usage yet.
  WriteFile(path, "");
  EXPECT_FALSE(ReadAccountingFile(path).ok());
  // Truncated to less than the slots it claims.
  WriteFile(path, AccountingBytes({{"GPU-a", 1, 42, 0, 0, 0}}, 1).substr(0, HAMI_SHM_HEADER_SIZE));
  EXPECT_EQ(ReadAccountingFile(path).status().code(), StatusCode::kInvalidArgument);
  WriteFile(path, "garbage");
  auto bad = ReadAccountingFile(path);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  // A tenant swaps the file for a FIFO or a link: refused at once, never a blocking open.
  std::remove(path.c_str());
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  EXPECT_EQ(ReadAccountingFile(path).status().code(), StatusCode::kFailedPrecondition);
  std::remove(path.c_str());
  ASSERT_EQ(symlink("/etc/passwd", path.c_str()), 0);
  EXPECT_EQ(ReadAccountingFile(path).status().code(), StatusCode::kFailedPrecondition);
  std::remove(path.c_str());
  rmdir(tmpl);
}

}  // namespace
}  // namespace hami::accounting
