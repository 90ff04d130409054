// One safe way for host-side code to read a small file that someone else may control (a tenant's
// container directory, a config map, a token): no links followed, no blocking on a FIFO, a regular
// file only, optionally of an expected owner and mode, and never more than a bound into memory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "common/status.h"

namespace hami::common {

struct ReadFileOptions {
  // When set, the file must be owned by this uid.
  std::optional<uid_t> owner;
  // Mode bits the file must not have (e.g. 022: writable by group or others).
  mode_t forbidden_mode_bits = 0;
  // A file larger than the bound is an error unless this is set; then its first max_bytes are
  // returned (for fixed-layout files whose tail is optional).
  bool allow_truncate = false;
};

// Reads `path` with O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC after fstat shows a regular file.
// Errors: kNotFound (absent), kFailedPrecondition (a symlink, FIFO, directory, socket or device),
// kPermissionDenied (cannot open, or the owner/mode check fails), kResourceExhausted (larger
// than max_bytes), kInternal (a read error). Each message names the path.
StatusOr<std::string> ReadFileBounded(const std::string& path, std::size_t max_bytes,
                                      const ReadFileOptions& options = {});

}  // namespace hami::common
