// Attacks on `hami serve` by a second, unprivileged local user (issue 12). The daemon runs as
// root; Alice, Bob and Carol are plain uids (no passwd entry needed) that a forked child
// becomes with setresuid, as `setpriv --reuid` would. Each test fails if its attack works.
// docs/security.md points at these tests.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "hostd/client.h"
#include "hostd/peer_server.h"

extern char** environ;

namespace hami::hostd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uid_t kAlice = 64101, kBob = 64102, kCarol = 64103;

void BecomeUser(uid_t uid) {
  if (uid == 0) return;
  if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
      setresuid(uid, uid, uid) != 0) {
    _exit(121);
  }
}

pid_t SpawnAs(uid_t uid, const std::vector<std::string>& args,
              const std::vector<std::string>& extra_env, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    setpgid(0, 0);
    BecomeUser(uid);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& e : extra_env) env.push_back(e);
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> a = args;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

// Runs fn in a child that is `uid`; returns what it returned.
std::string AsUser(uid_t uid, const std::function<std::string()>& fn) {
  int p[2];
  if (pipe(p) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    BecomeUser(uid);
    std::string out = fn();
    (void)!write(p[1], out.data(), out.size());
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return out;
}

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

template <typename F>
bool WaitFor(F pred, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

int64_t RssKib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class HostdAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root: the daemon must run as root and the attackers as other uids";
    }
    char tmpl[] = "/tmp/hami-sec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);  // other users reach the socket and the binary
    bin_ = dir_ + "/hami";
    fs::copy_file(HAMI_BIN, bin_);
    chmod(bin_.c_str(), 0755);
    sock_ = dir_ + "/hami.sock";
    StartServe();
  }
  void TearDown() override {
    for (pid_t p : children_) {
      kill(-p, SIGKILL);
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    StopServe(SIGKILL);
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  // Starts the daemon; returns false (with its log) when it exits instead of answering.
  bool TryStartServe(std::vector<std::string> extra = {}) {
    fs::remove(dir_ + "/port");
    std::vector<std::string> args = {bin_,
                                     "serve",
                                     "--state-dir",
                                     dir_ + "/state",
                                     "--listen",
                                     sock_,
                                     "--port-file",
                                     dir_ + "/port",
                                     "--static-gpus",
                                     "8g",
                                     "--reap-interval-ms",
                                     "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    serve_ = SpawnAs(0, args, {}, dir_ + "/serve.log");
    bool up = WaitFor(
        [&] {
          int st;
          if (waitpid(serve_, &st, WNOHANG) == serve_) {
            serve_exit_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
            serve_ = -1;
            return true;
          }
          return fs::exists(dir_ + "/port");
        },
        std::chrono::seconds(10));
    return up && serve_ > 0;
  }
  void StartServe(std::vector<std::string> extra = {}) {
    ASSERT_TRUE(TryStartServe(extra)) << ReadFile(dir_ + "/serve.log");
  }
  void StopServe(int sig = SIGTERM) {
    if (serve_ > 0) {
      kill(serve_, sig);
      WaitExit(serve_);
      serve_ = -1;
    }
  }
  // One API call as `uid` over the Unix socket: {"http": code, "body": ...}.
  json Call(uid_t uid, const std::string& method, const std::string& path,
            const json& body = nullptr) {
    std::string out = AsUser(uid, [&] {
      auto c = ApiClient::Make("unix:" + sock_);
      if (!c.ok()) return json{{"http", -1}, {"body", c.status().message()}}.dump();
      auto r = (*c)->Call(method, path, body.is_null() ? nullptr : &body);
      if (!r.ok()) return json{{"http", -1}, {"body", r.status().message()}}.dump();
      return json{{"http", r->http}, {"body", r->body}}.dump();
    });
    auto j = json::parse(out, nullptr, false);
    return j.is_discarded() ? json{{"http", -2}, {"body", out}} : j;
  }
  static std::string Message(const json& r) {
    if (r["body"].is_object() && r["body"].contains("error")) {
      return r["body"]["error"]["message"].get<std::string>();
    }
    return r["body"].dump();
  }
  json Slices() { return Call(0, "GET", "/v1/slices")["body"]["slices"]; }
  // `hami run -- sleep 60` as uid; returns its slice once the job is attached.
  json RunAs(uid_t uid, std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {bin_, "run", "--no-preload", "-q"};
    args.insert(args.end(), flags.begin(), flags.end());
    for (const char* a : {"--", "sleep", "60"}) args.push_back(a);
    size_t before = Slices().size();
    children_.push_back(SpawnAs(uid, args, {"HAMI_ADDR=unix:" + sock_}, dir_ + "/run.log"));
    json found;
    WaitFor(
        [&] {
          json all = Slices();
          if (all.size() <= before) return false;
          for (const auto& s : all) {
            if (s["uid"] == uid && s["job"]["pid"].get<int>() > 0) found = s;
          }
          return !found.is_null();
        },
        std::chrono::seconds(10));
    return found;
  }

  std::string dir_, bin_, sock_;
  pid_t serve_ = -1;
  int serve_exit_ = -1;
  std::vector<pid_t> children_;
};

TEST_F(HostdAttack, AnotherUserCannotReleaseASlice) {
  json s = RunAs(kAlice);
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  const std::string path = "/v1/slices/" + s["name"].get<std::string>();
  json r = Call(kBob, "DELETE", path);
  EXPECT_EQ(r["http"], 403) << r.dump();
  EXPECT_NE(Message(r).find("only its owner or root"), std::string::npos) << r.dump();
  pid_t rel = SpawnAs(kBob, {bin_, "release", s["name"]}, {"HAMI_ADDR=unix:" + sock_},
                      dir_ + "/release.log");
  EXPECT_NE(WaitExit(rel), 0);
  ASSERT_EQ(Slices().size(), 1u);
  // So Bob cannot be granted the card Alice still holds (the over-commit of issue 12).
  json grab = Call(kBob, "POST", "/v1/slices", {{"wait", false}});
  EXPECT_EQ(grab["http"], 409) << grab.dump();
  // Root may.
  EXPECT_EQ(Call(0, "DELETE", path)["http"], 200);
}

TEST_F(HostdAttack, AnotherUserCannotReadOrTouchAJob) {
  json s = RunAs(kAlice);
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  const std::string path = "/v1/slices/" + s["name"].get<std::string>();
  EXPECT_EQ(Call(kBob, "GET", path)["http"], 403);
  EXPECT_EQ(Call(kAlice, "GET", path)["http"], 200);
  json list = Call(kBob, "GET", "/v1/slices")["body"]["slices"];
  ASSERT_EQ(list.size(), 1u);
  for (const char* k : {"env", "dir", "cache_file", "limits_file", "job"}) {
    EXPECT_FALSE(list[0].contains(k)) << k << " shown to another user";
  }
  EXPECT_FALSE(list[0]["request"].contains("command"));
  EXPECT_EQ(list[0]["uid"], kAlice);  // who holds what stays visible
  // Tie Alice's slice to one of Bob's processes: refused.
  json attach = Call(kBob, "POST", path + "/job", {{"pid", 1}});
  EXPECT_EQ(attach["http"], 403) << attach.dump();
  // The files: Alice's, private.
  const std::string dir = dir_ + "/state/slices/" + s["name"].get<std::string>();
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kAlice);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((dir + "/vgpu.cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kAlice);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string opened = AsUser(kBob, [&] {
    int fd = open((dir + "/vgpu.cache").c_str(), O_RDWR | O_NONBLOCK);
    return fd >= 0 ? std::string("opened") : std::string(strerror(errno));
  });
  EXPECT_NE(opened, "opened");  // no mapping it and holding its mutex
  std::string mine = AsUser(kAlice, [&] {
    int fd = open((dir + "/vgpu.cache").c_str(), O_RDWR | O_NONBLOCK);
    return fd >= 0 ? std::string("opened") : std::string(strerror(errno));
  });
  EXPECT_EQ(mine, "opened");  // the job's processes write it
  struct stat db {};
  ASSERT_EQ(stat((dir_ + "/state/hami.db").c_str(), &db), 0);
  EXPECT_EQ(db.st_mode & 077, 0u);
}

TEST_F(HostdAttack, NoOwnerlessOrEverlastingSlices) {
  // Owner pid 0 used to mean "never expires": now the slice is the calling process's.
  json r =
      Call(kBob, "POST", "/v1/slices", {{"memory", "1g"}, {"owner", {{"pid", 0}}}, {"uid", 0}});
  ASSERT_EQ(r["http"], 201) << r.dump();
  EXPECT_EQ(r["body"]["slice"]["uid"], kBob);  // not root's, whatever the body says
  EXPECT_GT(r["body"]["slice"]["request"]["owner"]["pid"].get<int>(), 0);
  // The calling process has exited: the reaper frees its slice.
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(5)));
  json init = Call(kBob, "POST", "/v1/slices", {{"memory", "1g"}, {"owner", {{"pid", 1}}}});
  EXPECT_EQ(init["http"], 403) << init.dump();
  // Nor can a user keep a slice alive through somebody else's process.
  std::string out = AsUser(kBob, [&] {
    auto c = ApiClient::Make("unix:" + sock_);
    json req = {{"memory", "1g"}};
    auto g = (*c)->CallOk("POST", "/v1/slices", &req);
    if (!g.ok()) return g.status().message();
    json job = {{"pid", 1}};
    auto a = (*c)->Call(
        "POST", "/v1/slices/" + std::to_string((*g)["slice"]["id"].get<int>()) + "/job", &job);
    return a.ok() ? std::to_string(a->http) : a.status().message();
  });
  EXPECT_EQ(out, "403");
  EXPECT_TRUE(WaitFor([&] { return Slices().empty(); }, std::chrono::seconds(5)));
}

TEST_F(HostdAttack, HugeBodiesAreRefusedAndTheDaemonStaysSmall) {
  const std::string big(10 << 20, 'x');
  std::string out = AsUser(kBob, [&] {
    std::string msgs;
    for (int i = 0; i < 30; ++i) {
      auto c = ApiClient::Make("unix:" + sock_);
      json req = {{"memory", "1g"}, {"command", {big}}};
      auto r = (*c)->Call("POST", "/v1/slices", &req);
      if (!r.ok()) return "transport: " + r.status().message();
      if (r->http != 413) return "HTTP " + std::to_string(r->http);
      msgs = r->body["error"]["message"].get<std::string>();
    }
    return msgs;
  });
  EXPECT_NE(out.find("request body too large"), std::string::npos) << out;
  EXPECT_TRUE(Slices().empty());
  EXPECT_LT(RssKib(serve_), 200 * 1024) << "daemon grew";
  int64_t db = 0;
  for (const char* f : {"hami.db", "hami.db-wal"}) {
    std::error_code ec;
    auto n = fs::file_size(dir_ + "/state/" + f, ec);
    if (!ec) db += static_cast<int64_t>(n);
  }
  EXPECT_LT(db, 4 << 20) << "hami.db grew";
}

TEST_F(HostdAttack, QueueFloodIsBoundedPerUser) {
  json s = RunAs(kAlice);  // the whole card: every later request waits
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  std::string out = AsUser(kBob, [&] {
    auto c = ApiClient::Make("unix:" + sock_);
    int queued = 0, refused = 0;
    std::string last;
    for (int i = 0; i < 40; ++i) {
      json req = {{"memory", "1g"}, {"command", {"x", std::string(4000, 'y')}}};
      auto r = (*c)->Call("POST", "/v1/slices", &req);
      if (r.ok() && r->http == 202) ++queued;
      if (r.ok() && r->http == 409) {
        ++refused;
        last = r->body["error"]["message"].get<std::string>();
      }
    }
    return json{{"queued", queued}, {"refused", refused}, {"last", last}}.dump();
  });
  json j = json::parse(out);
  EXPECT_EQ(j["queued"], 16) << out;
  EXPECT_EQ(j["refused"], 24) << out;
  EXPECT_NE(j["last"].get<std::string>().find("requests waiting"), std::string::npos);
  // Another user still gets a place.
  std::string carol = AsUser(kCarol, [&] {
    auto c = ApiClient::Make("unix:" + sock_);
    json req = {{"memory", "1g"}};
    auto r = (*c)->Call("POST", "/v1/slices", &req);
    return r.ok() ? std::to_string(r->http) : r.status().message();
  });
  EXPECT_EQ(carol, "202");
}

TEST_F(HostdAttack, ConnectionFloodDoesNotLockOthersOut) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t flooder = fork();
  if (flooder == 0) {
    BecomeUser(kBob);
    std::vector<int> fds;
    for (int i = 0; i < 200; ++i) {
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::memcpy(a.sun_path, sock_.c_str(), sock_.size());
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
        // ... and never finish the request. MSG_NOSIGNAL: a connection the daemon already
        // closed (over the per-user cap) must not kill the flooder with SIGPIPE.
        (void)!send(fd, "GET /v1/gpus HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
        fds.push_back(fd);
      }
    }
    (void)!write(ready[1], "r", 1);
    sleep(60);
    _exit(0);
  }
  children_.push_back(flooder);
  close(ready[1]);  // a flooder that dies early ends the read instead of hanging it
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto start = Clock::now();
  json r = Call(kAlice, "GET", "/v1/gpus");
  EXPECT_EQ(r["http"], 200) << r.dump();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST_F(HostdAttack, SymlinksAndFifosInASliceDirectoryAreNotFollowed) {
  json s = RunAs(kAlice);
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  const std::string dir = dir_ + "/state/slices/" + s["name"].get<std::string>();
  const std::string victim = dir_ + "/victim", victim_dir = dir_ + "/victimdir";
  std::ofstream(victim) << "precious\n";
  fs::create_directory(victim_dir);
  std::ofstream(victim_dir + "/keep") << "keep\n";
  std::string planted = AsUser(kAlice, [&] {
    if (unlink((dir + "/vgpu.cache").c_str()) != 0) return std::string("unlink");
    if (mkfifo((dir + "/vgpu.cache").c_str(), 0600) != 0) return std::string("mkfifo");
    if (symlink(victim.c_str(), (dir + "/vgpu.limits.tmp").c_str()) != 0) return std::string("l1");
    if (mkdir((dir + "/d").c_str(), 0700) != 0) return std::string("mkdir");
    if (symlink(victim_dir.c_str(), (dir + "/d/link").c_str()) != 0) return std::string("l2");
    return std::string("ok");
  });
  ASSERT_EQ(planted, "ok");
  // A FIFO in place of the accounting file must not hang the daemon's views.
  auto start = Clock::now();
  json list = Call(kAlice, "GET", "/v1/slices");
  EXPECT_EQ(list["http"], 200);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  std::string swapped = AsUser(kAlice, [&] {
    unlink((dir + "/vgpu.cache").c_str());
    return symlink(victim.c_str(), (dir + "/vgpu.cache").c_str()) == 0 ? "ok" : "fail";
  });
  ASSERT_EQ(swapped, "ok");
  EXPECT_EQ(Call(kAlice, "GET", "/v1/slices")["http"], 200);
  EXPECT_EQ(Call(0, "DELETE", "/v1/slices/" + s["name"].get<std::string>())["http"], 200);
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir)));
  EXPECT_EQ(ReadFile(victim), "precious\n");
  EXPECT_EQ(ReadFile(victim_dir + "/keep"), "keep\n");
}

TEST_F(HostdAttack, DatabaseRowPointingOutsideTheStateDirectoryIsRefused) {
  json s = RunAs(kAlice);
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  StopServe(SIGTERM);
  const std::string outside = dir_ + "/outside";
  fs::create_directory(outside);
  std::ofstream(outside + "/keep") << "keep\n";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/state/hami.db").c_str(), &db), SQLITE_OK);
  std::string sql = "UPDATE slices SET body=json_set(body,'$.dir','" + outside + "')";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_FALSE(TryStartServe());
  EXPECT_NE(serve_exit_, 0);
  EXPECT_NE(ReadFile(dir_ + "/serve.log").find("refusing to start"), std::string::npos)
      << ReadFile(dir_ + "/serve.log");
  EXPECT_EQ(ReadFile(outside + "/keep"), "keep\n");
}

TEST_F(HostdAttack, LostDatabaseWhileAJobRunsIsDetectedAndNothingIsReused) {
  json s = RunAs(kAlice);  // the whole 8 GiB card
  ASSERT_FALSE(s.is_null()) << ReadFile(dir_ + "/run.log");
  const std::string cache = dir_ + "/state/slices/s1/vgpu.cache";
  ASSERT_EQ(s["name"], "s1");
  struct stat before {};
  ASSERT_EQ(stat(cache.c_str(), &before), 0);
  // Alice's job maps its accounting file, as libvgpu.so does.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t mapper = fork();
  if (mapper == 0) {
    BecomeUser(kAlice);
    int fd = open(cache.c_str(), O_RDWR);
    void* m = fd >= 0 && ftruncate(fd, 16384) == 0
                  ? mmap(nullptr, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                  : MAP_FAILED;
    (void)!write(ready[1], m == MAP_FAILED ? "f" : "r", 1);
    sleep(60);
    _exit(0);
  }
  children_.push_back(mapper);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'r');
  StopServe(SIGKILL);
  // hami.db lost: truncated to nothing, journal gone.
  fs::resize_file(dir_ + "/state/hami.db", 0);
  fs::remove(dir_ + "/state/hami.db-wal");
  fs::remove(dir_ + "/state/hami.db-shm");
  StartServe();
  EXPECT_NE(ReadFile(dir_ + "/serve.log").find("adopted s1"), std::string::npos)
      << ReadFile(dir_ + "/serve.log");
  json all = Slices();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["name"], "s1");
  EXPECT_EQ(all[0]["uid"], kAlice);
  // The card is still Alice's: no over-commit, and her live accounting file untouched.
  json grab = Call(kBob, "POST", "/v1/slices", {{"memory", "1g"}, {"wait", false}});
  EXPECT_EQ(grab["http"], 409) << grab.dump();
  struct stat after {};
  ASSERT_EQ(stat(cache.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  // Released (by its owner), the next slice gets a new id, never s1 again.
  EXPECT_EQ(Call(kAlice, "DELETE", "/v1/slices/s1")["http"], 200);
  json next = Call(kBob, "POST", "/v1/slices", {{"memory", "1g"}, {"wait", false}});
  ASSERT_EQ(next["http"], 201) << next.dump();
  EXPECT_NE(next["body"]["slice"]["name"], "s1");
}

TEST_F(HostdAttack, CorruptDatabaseIsRefusedWithAClearMessage) {
  StopServe(SIGTERM);
  fs::remove(dir_ + "/state/hami.db-wal");
  fs::remove(dir_ + "/state/hami.db-shm");
  std::ofstream(dir_ + "/state/hami.db", std::ios::trunc) << std::string(4096, 'z');
  EXPECT_FALSE(TryStartServe());
  EXPECT_NE(serve_exit_, 0);
  EXPECT_NE(ReadFile(dir_ + "/serve.log").find("database"), std::string::npos)
      << ReadFile(dir_ + "/serve.log");
}

TEST_F(HostdAttack, TcpNeedsTheTokenWhichOnlyRootCanRead) {
  StopServe(SIGTERM);
  const std::string token_file = dir_ + "/state/api.token";
  StartServe({"--listen-tcp", "127.0.0.1:0", "--token-file", token_file});
  int port = std::stoi(ReadFile(dir_ + "/port"));
  ASSERT_GT(port, 0);
  std::string out = AsUser(kBob, [&] {
    auto t = ReadTokenFile(token_file);
    if (t.ok()) return std::string("read the token");
    auto c = ApiClient::Make("127.0.0.1:" + std::to_string(port));
    json req = {{"memory", "1g"}};
    auto r = (*c)->Call("POST", "/v1/slices", &req);
    auto l = (*c)->Call("GET", "/v1/slices");
    return std::to_string(r.ok() ? r->http : -1) + " " + std::to_string(l.ok() ? l->http : -1);
  });
  EXPECT_EQ(out, "401 401");
  auto token = ReadTokenFile(token_file);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto root = ApiClient::Make("127.0.0.1:" + std::to_string(port), *token);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE((*root)->CallOk("GET", "/v1/slices").ok());
}

// Bad addresses and empty selectors are refused (no root needed).
TEST(HostdCli, BadAddressesAndEmptyFlagsAreRefused) {
  char tmpl[] = "/tmp/hami-cli-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"serve", "--static-gpus", "8g", "--listen-tcp", "127.0.0.1:99999"}, "0..65535"},
      {{"serve", "--static-gpus", "8g", "--listen-tcp", "127.0.0.1:abc"}, "0..65535"},
      {{"serve", "--static-gpus", "8g", "--listen-tcp", ":7460"}, "no host"},
      {{"serve", "--static-gpus", "8g", "--listen-tcp", "10.1.2.3:7460"}, "loopback"},
      {{"serve", "--static-gpus", "8g", "--listen-tcp", "127.evil.com:7460"}, "loopback"},
      {{"serve", "--static-gpus", "8g", "--listen", "127.0.0.1:7460"}, "--listen-tcp"},
      {{"run", "--gpumem", "", "--", "true"}, "--gpumem"},
      {{"run", "--gpu-uuid", ",,,", "--", "true"}, "empty item"},
      {{"run", "--gpu-type", "", "--", "true"}, "empty item"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args = {HAMI_BIN};
    args.insert(args.end(), c.args.begin(), c.args.end());
    if (c.args[0] == "serve") {
      args.insert(args.end(), {"--state-dir", dir + "/state"});
      if (std::find(args.begin(), args.end(), "--listen") == args.end()) {
        args.insert(args.end(), {"--listen", dir + "/s.sock"});
      }
    }
    std::string log = dir + "/log" + std::to_string(i++);
    pid_t p = SpawnAs(geteuid(), args, {"HAMI_ADDR=unix:" + dir + "/none.sock"}, log);
    EXPECT_EQ(WaitExit(p), 2) << ReadFile(log);
    EXPECT_NE(ReadFile(log).find(c.message), std::string::npos) << ReadFile(log);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace hami::hostd
