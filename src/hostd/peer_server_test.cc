// Unit tests of the identity and file-safety pieces of hostd (issue 12) that need no second
// user: address parsing, the token file, slice files under planted links, ownership rules
// and per-user limits of the Daemon. tests/security/hostd runs the attacks as other uids.
#include "hostd/peer_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "hostd/client.h"
#include "hostd/daemon.h"
#include "hostd/limits.h"
#include "hostd/slice_files.h"
#include "hostd/test_util.h"

namespace hami::hostd {
namespace {

namespace fs = std::filesystem;
using testing::Gpus;
using testing::TempDirGuard;

TEST(AddressTest, ParsesSocketsAndStrictPorts) {
  auto u = ParseApiAddress("unix:/run/hami/hami.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->unix_socket);
  EXPECT_EQ(u->path, "/run/hami/hami.sock");
  EXPECT_TRUE(ParseApiAddress("/tmp/x.sock")->unix_socket);
  auto t = ParseApiAddress("http://127.0.0.1:7460/");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 7460);
  EXPECT_EQ(ParseApiAddress("[::1]:80")->host, "::1");
  EXPECT_TRUE(ParseApiAddress("127.0.0.1:0", /*allow_port_zero=*/true).ok());
  for (const char* bad :
       {"127.0.0.1:99999", "127.0.0.1:abc", ":7460", "127.0.0.1:", "127.0.0.1", "127.0.0.1:-1",
        "127.0.0.1:0", "127.0.0.1:7460x", "unix:", "unix:rel", "127.0.0.1:000080"}) {
    auto r = ParseApiAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AddressTest, LoopbackIsParsedNotPrefixMatched) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"127.evil.com", "127.0.0.1.nip.io", "0.0.0.0", "10.0.0.1", "::", "",
                        "128.0.0.1", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

TEST(TokenTest, FreshPrivateTokenAndStrictReader) {
  TempDirGuard dir("token");
  const std::string path = dir.path + "/api.token";
  auto t1 = CreateTokenFile(path);
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(t1->size(), 64u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadTokenFile(path), *t1);
  auto t2 = CreateTokenFile(path);  // a new one at each start
  ASSERT_TRUE(t2.ok());
  EXPECT_NE(*t1, *t2);
  EXPECT_TRUE(TokenMatches(*t2, *t2));
  EXPECT_FALSE(TokenMatches(*t1, *t2));
  EXPECT_FALSE(TokenMatches("", ""));
  chmod(path.c_str(), 0644);
  EXPECT_EQ(ReadTokenFile(path).status().code(), StatusCode::kFailedPrecondition);
  // A link in its place is not followed, neither to read nor to write through.
  const std::string target = dir.path + "/target";
  std::ofstream(target) << "keep\n";
  fs::remove(path);
  fs::create_symlink(target, path);
  EXPECT_FALSE(ReadTokenFile(path).ok());
  ASSERT_TRUE(CreateTokenFile(path).ok());
  std::ifstream in(target);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "keep");
  EXPECT_FALSE(fs::is_symlink(path));
}

TEST(SliceFilesTest, LimitsFileReadsBackAndRemovalNeverFollowsLinks) {
  TempDirGuard dir("files");
  const std::string slices = dir.path + "/slices";
  fs::create_directories(slices);
  Slice s;
  s.id = 7;
  s.dir = slices + "/s7";
  s.limits_file = s.dir + "/vgpu.limits";
  s.cache_file = s.dir + "/vgpu.cache";
  s.devices = {{"GPU-a", 0, "T4", 2048, 30}, {"GPU-b", 1, "T4", 1024, 0}};
  ASSERT_TRUE(CreateSliceFiles(slices, s, geteuid()).ok());
  EXPECT_EQ(CreateSliceFiles(slices, s, geteuid()).code(), StatusCode::kAlreadyExists);
  struct stat st {};
  ASSERT_EQ(stat(s.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(s.cache_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = ReadSmallFile(s.limits_file, 4096);
  ASSERT_TRUE(text.ok());
  auto devs = ParseOwnLimitsFile(*text);
  ASSERT_TRUE(devs.ok()) << devs.status().ToString();
  ASSERT_EQ(devs->size(), 2u);
  EXPECT_EQ((*devs)[0].uuid, "GPU-a");
  EXPECT_EQ((*devs)[0].memory_mib, 2048);
  EXPECT_EQ((*devs)[0].cores, 30);
  EXPECT_EQ((*devs)[1].memory_mib, 1024);
  EXPECT_FALSE(ParseOwnLimitsFile("CUDA_DEVICE_MEMORY_LIMIT_0=2g\n").ok());
  EXPECT_FALSE(ParseOwnLimitsFile("CUDA_DEVICE_UUID_99=x\n").ok());

  // Whatever a user plants inside the directory, removal stays inside it.
  const std::string outside = dir.path + "/outside";
  fs::create_directories(outside);
  std::ofstream(outside + "/keep") << "keep\n";
  fs::remove(s.cache_file);
  fs::create_symlink(outside + "/keep", s.cache_file);
  fs::create_directories(s.dir + "/sub");
  fs::create_directory_symlink(outside, s.dir + "/sub/link");
  mkfifo((s.dir + "/fifo").c_str(), 0600);
  EXPECT_FALSE(ReadSliceAccounting(s.dir + "/fifo").ok());  // refused, not blocked on
  EXPECT_FALSE(ReadSliceAccounting(s.cache_file).ok());     // a link is not followed
  ASSERT_TRUE(RemoveSliceDir(slices, "s7").ok());
  EXPECT_FALSE(fs::exists(s.dir));
  EXPECT_TRUE(fs::exists(outside + "/keep"));
  // A link in place of the slice directory itself is removed, not followed.
  fs::create_directory_symlink(outside, slices + "/s8");
  ASSERT_TRUE(RemoveSliceDir(slices, "s8").ok());
  EXPECT_TRUE(fs::exists(outside + "/keep"));
  EXPECT_FALSE(RemoveSliceDir(slices, "..").ok());
  EXPECT_FALSE(RemoveSliceDir(slices, "a/b").ok());
}

SliceRequest Req(uint32_t uid, int64_t mib, bool wait = true) {
  SliceRequest r;
  r.uid = uid;
  r.memory_mib = mib;
  r.wait = wait;
  return r;
}

TEST(OwnershipTest, OnlyTheOwnerOrRootTouchesASliceOrTicket) {
  TempDirGuard dir("own");
  DaemonOptions o;
  o.state_dir = dir.path;
  auto d = Daemon::Open(o, Gpus(1, 4096));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const uint32_t me = static_cast<uint32_t>(geteuid());
  const Caller owner = Caller::User(me), other{me + 1, false};
  auto g = (*d)->Request(Req(me, 4096));
  ASSERT_TRUE(g.ok() && g->granted);
  auto q = (*d)->Request(Req(me, 1024));
  ASSERT_TRUE(q.ok() && !q->granted);
  const int64_t id = g->slice.id, ticket = q->ticket;
  EXPECT_EQ((*d)->GetSlice(id, other).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*d)->Release(id, other).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*d)->AttachJob(id, Self(), other).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*d)->Poll(ticket, std::chrono::milliseconds(0), other).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ((*d)->Cancel(ticket, other).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*d)->Slices().size(), 1u);
  EXPECT_EQ((*d)->Queue().size(), 1u);
  // A user may not tie the slice to a process that is not theirs (pid 1 is root's).
  if (me != 0) {
    ProcessRef init{1, 0};
    EXPECT_EQ((*d)->AttachJob(id, init, owner).code(), StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE((*d)->GetSlice(id, owner).ok());
  EXPECT_TRUE((*d)->Cancel(ticket, owner).ok());
  EXPECT_TRUE((*d)->Release(id, owner).ok());
  // A request id is scoped to its user: another user's retry does not get this slice.
  SliceRequest a = Req(me, 1024);
  a.request_id = "same";
  auto ga = (*d)->Request(a);
  ASSERT_TRUE(ga.ok() && ga->granted);
  if (me == 0) {
    SliceRequest b = Req(4242, 1024);
    b.request_id = "same";
    auto gb = (*d)->Request(b);
    ASSERT_TRUE(gb.ok());
    EXPECT_NE(gb->slice.id, ga->slice.id);
  }
}

TEST(OwnershipTest, PerUserLimitsOnSlicesAndQueue) {
  TempDirGuard dir("quota");
  DaemonOptions o;
  o.state_dir = dir.path;
  o.max_slices_per_user = 2;
  o.max_queued_per_user = 3;
  o.max_queued_total = 4;
  auto d = Daemon::Open(o, Gpus(1, 4096));
  ASSERT_TRUE(d.ok());
  const uint32_t me = static_cast<uint32_t>(geteuid());
  ASSERT_TRUE((*d)->Request(Req(me, 1024)).ok());
  ASSERT_TRUE((*d)->Request(Req(me, 1024)).ok());
  auto third = (*d)->Request(Req(me, 1024));
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("the most one user may hold"), std::string::npos);
  if (me != 0) return;                      // the rest needs other uids (root daemon only)
  auto g = (*d)->Request(Req(5000, 2048));  // the card is full now (1 + 1 + 2 GiB)
  ASSERT_TRUE(g.ok() && g->granted);
  ASSERT_TRUE((*d)->Request(Req(5002, 1024)).ok());  // waits: 1 in the queue
  for (int i = 0; i < 3; ++i) {
    auto q = (*d)->Request(Req(5001, 1024));
    ASSERT_TRUE(q.ok() && !q->granted) << i;
  }
  auto over = (*d)->Request(Req(5001, 1024));
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("requests waiting"), std::string::npos);
  auto full = (*d)->Request(Req(5003, 1024));
  EXPECT_NE(full.status().message().find("queue is full"), std::string::npos);
}

TEST(OwnershipTest, NonRootDaemonServesOnlyItsOwnUser) {
  if (geteuid() == 0) GTEST_SKIP() << "a root daemon serves every user";
  TempDirGuard dir("nonroot");
  DaemonOptions o;
  o.state_dir = dir.path;
  auto d = Daemon::Open(o, Gpus(1, 4096));
  ASSERT_TRUE(d.ok());
  auto r = (*d)->Request(Req(static_cast<uint32_t>(geteuid()) + 1, 1024));
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
}

// A unix socket whose queue of unaccepted connections is full refuses a newcomer at once,
// just as a socket with no daemon behind it does. The client must wait for the daemon to
// drain a flood instead of reporting "no daemon" (the CI flake of ConnectionFlood...).
TEST(ClientTest, AFullConnectionQueueIsWaitedOutNotTakenForNoDaemon) {
  TempDirGuard dir("backlog");
  const std::string path = dir.path + "/d.sock";
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size());
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(lfd, 0), 0);
  std::vector<int> fillers;  // fill the queue until the kernel refuses
  for (int i = 0; i < 64; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
      close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  ASSERT_FALSE(fillers.empty());
  ASSERT_LT(fillers.size(), 64u) << "the queue never filled";
  // The "daemon" starts accepting 250 ms later: it drops connections that send nothing and
  // answers the first request it reads.
  std::thread daemon([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    for (;;) {
      int c = accept(lfd, nullptr, nullptr);
      if (c < 0) return;
      pollfd p{c, POLLIN, 0};
      std::string req;
      char buf[4096];
      while (poll(&p, 1, 100) > 0) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (req.find("\r\n\r\n") != std::string::npos) break;
      }
      if (req.rfind("GET /v1/gpus ", 0) == 0) {
        const std::string ok =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
            "Connection: close\r\n\r\n{\"ok\":true}";
        (void)!write(c, ok.data(), ok.size());
        close(c);
        return;
      }
      close(c);
    }
  });
  auto client = ApiClient::Make("unix:" + path);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Call("GET", "/v1/gpus");
  shutdown(lfd, SHUT_RDWR);  // ends an accept still waiting (when the call gave up)
  daemon.join();
  for (int fd : fillers) close(fd);
  close(lfd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http, 200);
  EXPECT_EQ(r->body["ok"], true);
  // No socket at all is still "no daemon", with the hint.
  auto none = ApiClient::Make("unix:" + dir.path + "/none.sock");
  auto nr = (*none)->Call("GET", "/v1/gpus");
  ASSERT_FALSE(nr.ok());
  EXPECT_EQ(nr.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(nr.status().message().find("is `hami serve` running?"), std::string::npos);
}

}  // namespace
}  // namespace hami::hostd
