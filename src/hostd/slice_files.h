// The files of a slice under <state>/slices/s<id>/, created and removed without following
// links: the directory belongs to the job's user (0700), the accounting file too (0600, the
// job's processes write it), the limits file stays the daemon's (0644). Removal is confined
// to the slices directory by construction (by name, with openat/unlinkat), whatever a
// database row or a user planted there says.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/accounting_reader.h"
#include "common/status.h"
#include "hostd/types.h"

namespace hami::hostd {

// Creates <slices_dir>/<s.Name()> with its limits and (empty) accounting file, owned by
// `uid` when the daemon runs as root. An existing directory of that name is never reused.
// Errors: kAlreadyExists, kInternal.
Status CreateSliceFiles(const std::string& slices_dir, const Slice& s, uid_t uid);
// Removes <slices_dir>/<name> and what it holds (links are removed, never followed).
// Errors: kInvalidArgument (a name with '/' or a dot name), kInternal.
Status RemoveSliceDir(const std::string& slices_dir, const std::string& name);
// The ids of the s<id> directories under slices_dir, sorted.
std::vector<int64_t> ListSliceDirs(const std::string& slices_dir);
// Owner of <slices_dir>/<name> (not following a link). Errors: kNotFound.
StatusOr<uid_t> SliceDirOwner(const std::string& slices_dir, const std::string& name);
// True when a process maps `path` (from /proc/*/maps; a maps file this process may not read
// counts as mapping it, so an unknown stays "in use").
bool FileMaybeMapped(const std::string& path);
// A small file, opened without following links or blocking on a FIFO; at most max_bytes.
// Errors: kNotFound, kFailedPrecondition (not a regular file, too large).
StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);
// The slice's accounting file, opened as above (the job's user can swap it for anything).
StatusOr<accounting::AccountingSnapshot> ReadSliceAccounting(const std::string& path);

}  // namespace hami::hostd
