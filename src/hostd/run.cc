#include "hostd/run.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "hostd/client.h"
#include "hostd/limits.h"

extern char** environ;

namespace hami::hostd {
namespace {

using nlohmann::json;

volatile sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

void SetHandler(int sig, void (*fn)(int)) {
  struct sigaction sa {};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waits return EINTR so the signal is acted on
  sigaction(sig, &sa, nullptr);
}

int ExitFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kUnavailable:
      return kExitDaemon;
    case StatusCode::kResourceExhausted:
      return kExitNoFitNow;
    case StatusCode::kFailedPrecondition:
      return kExitNeverFits;
    default:
      return kExitInternal;
  }
}

int Fail(const Status& s) {
  std::fprintf(stderr, "hami run: %s\n", s.message().c_str());
  return ExitFor(s);
}

std::string Describe(const json& slice) {
  std::string out = slice.value("name", std::string("?")) + ":";
  for (const auto& d : slice["devices"]) {
    out += " " + d.value("uuid", std::string()) + " (" + std::to_string(d.value("memory_mib", 0)) +
           " MiB, " + std::to_string(d.value("cores", 0)) + "% cores)";
  }
  return out;
}

// Waits in the queue until granted. Returns the slice JSON.
StatusOr<json> WaitInQueue(ApiClient& client, int64_t ticket, int32_t position,
                           const std::string& reason, bool quiet) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  auto start = std::chrono::steady_clock::now();
  int32_t shown = -1;
  std::string why = reason;
  auto show = [&](bool force) {
    if (quiet) return;
    if (!force && !tty && position == shown) return;
    long secs = static_cast<long>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
            .count());
    if (tty) {
      std::fprintf(stderr,
                   "\r\033[Khami run: waiting for a GPU slice: position %d in queue, %lds (%s)",
                   position, secs, why.c_str());
    } else {
      std::fprintf(stderr, "hami run: waiting for a GPU slice: position %d in queue (%s)\n",
                   position, why.c_str());
    }
    std::fflush(stderr);
    shown = position;
  };
  show(true);
  auto unreachable_since = std::chrono::steady_clock::time_point{};
  for (;;) {
    if (g_signal != 0) {
      int sig = g_signal;
      (void)client.Call("DELETE", "/v1/queue/" + std::to_string(ticket));
      if (tty && !quiet) std::fprintf(stderr, "\n");
      std::fprintf(stderr, "hami run: interrupted while waiting; left the queue\n");
      return Status(StatusCode::kAborted, std::to_string(128 + sig));
    }
    auto r = client.Call("GET", "/v1/queue/" + std::to_string(ticket) + "?wait_ms=1000");
    if (!r.ok()) {
      // The daemon may be restarting; the queue is persistent, so keep the ticket a while.
      auto now = std::chrono::steady_clock::now();
      if (unreachable_since == std::chrono::steady_clock::time_point{}) unreachable_since = now;
      if (now - unreachable_since > std::chrono::seconds(60)) return r.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    unreachable_since = {};
    if (r->http != 200) return StatusFromErrorBody(r->http, r->body);
    if (r->body.value("granted", false)) {
      if (tty && !quiet) std::fprintf(stderr, "\n");
      return r->body["slice"];
    }
    position = r->body.value("position", position);
    why = r->body.value("reason", why);
    show(false);
  }
}

// The request sent to the daemon: o.request with the caller as owner, a display copy of the
// command and an id that makes a retried POST idempotent.
SliceRequest BuildRequest(const RunOptions& o) {
  SliceRequest req = o.request;
  req.owner = Self();
  // The daemon keeps the command for display only and refuses oversized ones: send a copy
  // within its bounds (the job itself gets every argument).
  size_t bytes = 0;
  for (const auto& a : o.command) {
    if (req.command.size() + 1 >= kMaxCommandArgs || bytes + a.size() + 3 > kMaxCommandBytes) {
      req.command.push_back("...");
      break;
    }
    req.command.push_back(a);
    bytes += a.size();
  }
  req.request_id = std::to_string(req.owner.pid) + "-" + std::to_string(req.owner.start_ticks) +
                   "-" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  return req;
}

// The job's environment: the slice's variables, with --libvgpu or --no-preload applied.
JobEnv JobEnvOf(const json& slice, const RunOptions& o) {
  JobEnv env;
  if (slice.contains("env")) {
    env.set = slice["env"].value("set", std::map<std::string, std::string>{});
    env.prepend = slice["env"].value("prepend", std::map<std::string, std::string>{});
  }
  if (o.no_preload) {
    env.prepend.erase("LD_PRELOAD");
  } else if (!o.libvgpu.empty()) {
    env.prepend["LD_PRELOAD"] = o.libvgpu;
  }
  return env;
}

// False (with the reason on stderr) when the job would run without its limits.
bool PreloadReady(const RunOptions& o, JobEnv& env) {
  if (!o.no_preload && env.prepend.count("LD_PRELOAD") == 0) {
    std::fprintf(stderr,
                 "hami run: the daemon does not know where libvgpu.so is, so the job would run "
                 "without its limits; start `hami serve --libvgpu PATH` or pass --libvgpu PATH\n");
    return false;
  }
  if (!o.no_preload && access(env.prepend["LD_PRELOAD"].c_str(), R_OK) != 0) {
    // ld.so would only warn and run the job without its limits.
    std::fprintf(stderr, "hami run: cannot read libvgpu.so at %s; not starting the job uncapped\n",
                 env.prepend["LD_PRELOAD"].c_str());
    return false;
  }
  return true;
}

// Forks and execs the command with env applied to this process's environment.
StatusOr<pid_t> Spawn(const std::vector<std::string>& command, const JobEnv& env) {
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) base.emplace_back(*e);
  std::vector<std::string> envs = ApplyJobEnv(base, env);
  std::vector<char*> envp;
  for (auto& s : envs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = command;
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  const pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    // Die with `hami run`: if it is killed (even with -9) the job ends too and the daemon
    // frees the slice once both are gone.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(kExitInternal);
    signal(SIGPIPE, SIG_DFL);  // an ignored signal would stay ignored across exec
    execvpe(argv[0], argv.data(), envp.data());
    int err = errno;
    std::fprintf(stderr, "hami run: cannot run %s: %s\n", argv[0], std::strerror(err));
    _exit(err == ENOENT ? kExitCannotExec : 126);
  }
  return child;
}

// Waits for the job, passing on SIGTERM/SIGHUP; returns its exit code (128+N for signal N).
int WaitForJob(pid_t child) {
  // Ctrl-C and Ctrl-\ reach the job through the terminal's process group; `hami run` only
  // waits for it. SIGTERM/SIGHUP sent to `hami run` alone are passed on.
  SetHandler(SIGQUIT, OnSignal);
  int status = 0;
  for (;;) {
    g_signal = 0;
    pid_t w = waitpid(child, &status, 0);
    if (w == child) break;
    if (w < 0 && errno != EINTR) {
      status = 0;
      break;
    }
    int sig = g_signal;
    if (sig == SIGTERM || sig == SIGHUP) kill(child, sig);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitInternal;
}

}  // namespace

std::optional<int> InterruptExitCode(const Status& s) {
  if (s.code() != StatusCode::kAborted) return std::nullopt;
  const std::string& m = s.message();
  int code = 0;
  auto [end, ec] = std::from_chars(m.data(), m.data() + m.size(), code);
  if (m.empty() || ec != std::errc() || end != m.data() + m.size()) return std::nullopt;
  if (code < 129 || code > 128 + 64) return std::nullopt;  // 128 + a signal number
  return code;
}

int RunJob(const RunOptions& o) {
  if (o.command.empty()) return Fail(InvalidArgument("no command given (hami run [flags] -- CMD)"));
  auto client_or = ApiClient::Make(o.address);
  if (!client_or.ok()) return Fail(client_or.status());
  ApiClient& client = **client_or;
  json body = ToJson(BuildRequest(o));

  // A daemon restarting mid-request must not kill `hami run` (and with it the job).
  signal(SIGPIPE, SIG_IGN);
  g_signal = 0;
  SetHandler(SIGINT, OnSignal);
  SetHandler(SIGTERM, OnSignal);
  SetHandler(SIGHUP, OnSignal);

  auto reply = client.Call("POST", "/v1/slices", &body);
  if (!reply.ok()) return Fail(reply.status());
  json slice;
  if (reply->http == 201) {
    slice = reply->body["slice"];
  } else if (reply->http == 202) {
    auto s =
        WaitInQueue(client, reply->body.value("ticket", int64_t{0}),
                    reply->body.value("position", 0), reply->body.value("reason", ""), o.quiet);
    if (!s.ok()) {
      if (auto code = InterruptExitCode(s.status())) return *code;
      return Fail(s.status());
    }
    slice = std::move(*s);
  } else {
    return Fail(StatusFromErrorBody(reply->http, reply->body));
  }

  const int64_t id = slice.value("id", int64_t{0});
  const std::string slice_path = "/v1/slices/" + std::to_string(id);
  auto release = [&] { (void)client.Call("DELETE", slice_path); };

  JobEnv env = JobEnvOf(slice, o);
  if (!PreloadReady(o, env)) {
    release();
    return kExitConfig;
  }
  if (o.no_preload && !o.quiet) {
    std::fprintf(stderr, "hami run: WARNING: --no-preload: the job is NOT held to its limits\n");
  }
  if (g_signal != 0) {
    release();
    return 128 + g_signal;
  }
  if (!o.quiet) std::fprintf(stderr, "hami run: slice %s\n", Describe(slice).c_str());

  auto child = Spawn(o.command, env);
  if (!child.ok()) {
    release();
    return Fail(child.status());
  }
  json job = {{"pid", *child}, {"start_ticks", ProcessStartTicks(*child).value_or(0)}};
  (void)client.Call("POST", slice_path + "/job", &job);
  int code = WaitForJob(*child);
  release();
  return code;
}

}  // namespace hami::hostd
