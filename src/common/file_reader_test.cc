#include "common/file_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hami::common {
namespace {

namespace fs = std::filesystem;

class FileReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hami_file_reader_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& body) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << body;
    return p;
  }
  std::string dir_;
};

TEST_F(FileReaderTest, ReadsARegularFile) {
  auto r = ReadFileBounded(Write("a", std::string("x\0y", 3)), 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, std::string("x\0y", 3));
}

TEST_F(FileReaderTest, ExactlyTheBoundIsAllowedOneMoreIsNot) {
  EXPECT_TRUE(ReadFileBounded(Write("a", std::string(10, 'a')), 10).ok());
  auto r = ReadFileBounded(Write("b", std::string(11, 'a')), 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("/b"), std::string::npos) << "names the path";
}

TEST_F(FileReaderTest, AllowTruncateReturnsThePrefix) {
  ReadFileOptions o;
  o.allow_truncate = true;
  auto r = ReadFileBounded(Write("a", "0123456789"), 4, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "0123");
}

TEST_F(FileReaderTest, MissingIsNotFound) {
  auto r = ReadFileBounded(dir_ + "/none", 10);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(FileReaderTest, SymlinkIsNotFollowed) {
  const std::string target = Write("target", "secret");
  fs::create_symlink(target, dir_ + "/link");
  auto r = ReadFileBounded(dir_ + "/link", 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("symbolic link"), std::string::npos);
}

TEST_F(FileReaderTest, FollowLinksIsOptInAndStillRefusesAFifoBehindALink) {
  // kubelet mounts ConfigMaps as links (config.yaml -> ..data/config.yaml).
  const std::string target = Write("target", "nvidia: {}");
  fs::create_symlink(target, dir_ + "/link");
  ReadFileOptions o;
  o.follow_links = true;
  auto r = ReadFileBounded(dir_ + "/link", 100, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "nvidia: {}");
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  fs::create_symlink(dir_ + "/fifo", dir_ + "/fifolink");
  EXPECT_EQ(ReadFileBounded(dir_ + "/fifolink", 100, o).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(FileReaderTest, FifoWithoutWriterReturnsAtOnce) {
  const std::string p = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = ReadFileBounded(p, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("FIFO"), std::string::npos) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(FileReaderTest, FifoWithAWriterIsStillRefused) {
  const std::string p = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  const int rd = ::open(p.c_str(), O_RDONLY | O_NONBLOCK);
  const int wr = ::open(p.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(wr, 0);
  auto r = ReadFileBounded(p, 100);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  ::close(wr);
  ::close(rd);
}

TEST_F(FileReaderTest, DirectoryIsRefused) {
  fs::create_directory(dir_ + "/d");
  auto r = ReadFileBounded(dir_ + "/d", 100);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("directory"), std::string::npos);
}

TEST_F(FileReaderTest, DeviceIsRefused) {
  auto r = ReadFileBounded("/dev/zero", 100);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(FileReaderTest, OwnerAndModeChecks) {
  const std::string p = Write("a", "x");
  ::chmod(p.c_str(), 0644);
  ReadFileOptions o;
  o.owner = ::geteuid();
  o.forbidden_mode_bits = 022;
  EXPECT_TRUE(ReadFileBounded(p, 10, o).ok());
  ::chmod(p.c_str(), 0666);
  auto r = ReadFileBounded(p, 10, o);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("0666"), std::string::npos) << r.status().ToString();
  ::chmod(p.c_str(), 0644);
  o.owner = ::geteuid() + 1;
  r = ReadFileBounded(p, 10, o);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("owned by uid"), std::string::npos);
}

TEST_F(FileReaderTest, EmptyFileIsEmpty) {
  auto r = ReadFileBounded(Write("e", ""), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(FileReaderTest, LargerThanFirstGuessIsReadWhole) {
  const std::string body(100000, 'z');
  auto r = ReadFileBounded(Write("big", body), 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), body.size());
}

}  // namespace
}  // namespace hami::common
