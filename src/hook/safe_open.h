// Opening the files libvgpu.so trusts (the limits file, the accounting file) the way an
// attacker on a shared node cannot subvert: no symbolic link followed, no FIFO waited on, and
// fstat must show a regular file that only this user (or root) can have written.
#pragma once

#include <stddef.h>
#include <sys/types.h>

namespace hami::vgpu {

struct SafeOpenOptions {
  bool write;        // open read-write (else read-only)
  bool create;       // create it (mode 0600) when missing; needs write
  bool single_link;  // refuse a file with other hard links (it could be someone else's file)
};

// Opens `path` with O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC and checks, on the descriptor, that it
// is a regular file owned by root or by this process's effective uid and not writable by
// group or others. Returns the descriptor, or -1 with a message naming `what`, the path and
// the reason (a symbolic link, not a regular file, owned by uid N, mode 0NNN, N hard links,
// or the errno of open) in err.
int SafeOpen(const char* path, const SafeOpenOptions& opt, const char* what, char* err,
             size_t errlen);

// The ownership and mode rule of SafeOpen for a file of owner `uid` and mode `mode`, seen by
// effective uid `euid`; nullptr when acceptable, else why not (static text).
const char* OwnershipProblem(uid_t uid, mode_t mode, uid_t euid);

}  // namespace hami::vgpu
