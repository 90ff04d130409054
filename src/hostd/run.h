// `hami run`: get a slice from the daemon (waiting in its queue if needed), start the command
// with libvgpu.so and the slice's limits, and give the slice back when the command ends.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "hostd/types.h"

namespace hami::hostd {

// Exit codes of `hami` itself (a command run by `hami run` exits with its own code, or
// 128 + signal).
inline constexpr int kExitUsage = 2;         // bad flags or values
inline constexpr int kExitDaemon = 69;       // the daemon cannot be reached
inline constexpr int kExitInternal = 70;     // anything else that went wrong
inline constexpr int kExitNoFitNow = 75;     // --no-wait and no slice free now
inline constexpr int kExitNeverFits = 77;    // the request cannot fit on this host at all
inline constexpr int kExitConfig = 78;       // libvgpu.so not found
inline constexpr int kExitCannotExec = 127;  // the command was not found

struct RunOptions {
  std::string address;
  SliceRequest request;  // owner and command are filled by RunJob
  std::vector<std::string> command;
  std::string libvgpu;      // overrides the daemon's libvgpu.so path when set
  bool no_preload = false;  // run without libvgpu.so (NOT capped; for debugging)
  bool quiet = false;       // no progress on stderr
};

// Returns the exit code for `hami run`.
int RunJob(const RunOptions& options);

// The exit code (128 + signal) when `s` is the queue wait's own "interrupted" status (ABORTED
// with the code as its whole message); nullopt for any other status, e.g. a daemon's ABORTED
// error with free text, which the caller reports as an error instead.
std::optional<int> InterruptExitCode(const Status& s);

}  // namespace hami::hostd
