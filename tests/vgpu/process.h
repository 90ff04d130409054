// Runs a program with a given environment and collects its output: the integration tests
// start real processes so the hook is loaded exactly as in production.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace hami::testing {

struct Result {
  int exit_code = -1;  // -signal when killed
  std::string out, err;
  // `key=value` pairs of the last line that has `key`.
  std::string Get(const std::string& key) const;
  long long GetInt(const std::string& key) const;
};

using Env = std::map<std::string, std::string>;

// Runs argv with exactly `env` (plus PATH), waits at most `timeout_s`, kills it after that.
Result RunProcess(const std::vector<std::string>& argv, const Env& env, int timeout_s = 60);

// A started child with pipes; for tests that hold processes alive or kill them.
struct Child {
  pid_t pid = -1;
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  std::string ReadLine(int timeout_ms);  // "" on timeout/EOF
  void CloseStdin();
  Result Wait(int timeout_s = 30);
  std::string rest_out;
};

Child Start(const std::vector<std::string>& argv, const Env& env);

}  // namespace hami::testing
