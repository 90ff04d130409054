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
  // Follow a symbolic link in the last component. Only for files an administrator placed:
  // kubelet mounts ConfigMaps and service-account tokens as links (token -> ..data/token).
  // Never for a path inside a tenant-writable directory.
  bool follow_links = false;
};

// Reads `path` with O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC (O_NOFOLLOW unless follow_links) after
// fstat shows a regular file.
// Errors: kNotFound (absent), kFailedPrecondition (a symlink, FIFO, directory, socket or device),
// kPermissionDenied (cannot open, or the owner/mode check fails), kResourceExhausted (larger
// than max_bytes), kInternal (a read error). Each message names the path.
StatusOr<std::string> ReadFileBounded(const std::string& path, std::size_t max_bytes,
                                      const ReadFileOptions& options = {});

}  // namespace hami::common
