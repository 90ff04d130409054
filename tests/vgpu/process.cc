#include "vgpu/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sstream>

namespace hami::testing {
namespace {

std::vector<std::string> EnvStrings(const Env& env) {
  std::vector<std::string> v;
  bool has_path = false;
  for (const auto& [k, val] : env) {
    v.push_back(k + "=" + val);
    has_path |= k == "PATH";
  }
  if (!has_path && getenv("PATH")) v.push_back(std::string("PATH=") + getenv("PATH"));
  return v;
}

pid_t Spawn(const std::vector<std::string>& argv, const Env& env, int* in, int* out, int* err) {
  int pin[2], pout[2], perr[2];
  if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) abort();
  std::vector<std::string> envs = EnvStrings(env);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  *in = pin[1];
  *out = pout[0];
  *err = perr[0];
  return pid;
}

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int Status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st); }

}  // namespace

std::string Result::Get(const std::string& key) const {
  std::string found;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (w.compare(0, key.size() + 1, key + "=") == 0) found = w.substr(key.size() + 1);
    }
  }
  return found;
}

long long Result::GetInt(const std::string& key) const {
  std::string v = Get(key);
  return v.empty() ? -999999 : atoll(v.c_str());
}

Result RunProcess(const std::vector<std::string>& argv, const Env& env, int timeout_s) {
  int in, out, err;
  pid_t pid = Spawn(argv, env, &in, &out, &err);
  close(in);
  Result r;
  long long deadline = NowMs() + timeout_s * 1000LL;
  pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    long long left = deadline - NowMs();
    if (left <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int st = 0;
  waitpid(pid, &st, 0);
  r.exit_code = Status(st);
  return r;
}

Child Start(const std::vector<std::string>& argv, const Env& env) {
  Child c;
  int err;
  c.pid = Spawn(argv, env, &c.stdin_fd, &c.stdout_fd, &err);
  // Keep the child's stderr open (a closed pipe would kill it with SIGPIPE) but unread:
  // hand it to a thread-free sink by making the pipe non-blocking and large enough.
  fcntl(err, F_SETPIPE_SZ, 1 << 20);
  c.stderr_fd = err;
  return c;
}

std::string Child::ReadLine(int timeout_ms) {
  long long deadline = NowMs() + timeout_ms;
  for (;;) {
    size_t nl = rest_out.find('\n');
    if (nl != std::string::npos) {
      std::string line = rest_out.substr(0, nl);
      rest_out.erase(0, nl + 1);
      return line;
    }
    long long left = deadline - NowMs();
    if (left <= 0) return "";
    pollfd p = {stdout_fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return "";
    char buf[1024];
    ssize_t n = read(stdout_fd, buf, sizeof(buf));
    if (n <= 0) return "";
    rest_out.append(buf, static_cast<size_t>(n));
  }
}

void Child::CloseStdin() {
  if (stdin_fd >= 0) close(stdin_fd);
  stdin_fd = -1;
}

Result Child::Wait(int timeout_s) {
  CloseStdin();
  Result r;
  long long deadline = NowMs() + timeout_s * 1000LL;
  int st = 0;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (NowMs() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    usleep(2000);
  }
  if (stdout_fd >= 0) close(stdout_fd);
  stdout_fd = -1;
  if (stderr_fd >= 0) {
    char buf[4096];
    fcntl(stderr_fd, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = read(stderr_fd, buf, sizeof(buf))) > 0) r.err.append(buf, static_cast<size_t>(n));
    close(stderr_fd);
    stderr_fd = -1;
  }
  r.exit_code = Status(st);
  r.out = rest_out;
  return r;
}

}  // namespace hami::testing
