#include "safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glibc_compat.h"

namespace hami::vgpu {

const char* OwnershipProblem(uid_t uid, mode_t mode, uid_t euid) {
  if (uid != 0 && uid != euid) return "is owned by another user";
  if (mode & (S_IWGRP | S_IWOTH)) return "is writable by group or others";
  return nullptr;
}

int SafeOpen(const char* path, const SafeOpenOptions& opt, const char* what, char* err,
             size_t errlen) {
  int flags = (opt.write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  if (opt.write && opt.create) flags |= O_CREAT;
  int fd = open(path, flags, 0600);
  if (fd < 0) {
    int e = errno;
    struct stat lst;
    // ELOOP on Linux; other kernels (gVisor) answer a link in a sticky directory otherwise.
    if (e == ELOOP || (LstatPath(path, &lst) == 0 && S_ISLNK(lst.st_mode))) {
      snprintf(err, errlen, "%s %s is a symbolic link; refused (it could point anywhere)", what,
               path);
    } else {
      snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(e));
    }
    return -1;
  }
  struct stat st;
  const char* bad = nullptr;
  char why[160] = {};
  uid_t euid = geteuid();
  if (StatFd(fd, &st) != 0) {
    snprintf(why, sizeof(why), "stat failed: %s", strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    bad = "is not a regular file (a FIFO, device, socket or directory); refused";
  } else if ((bad = OwnershipProblem(st.st_uid, st.st_mode, euid)) != nullptr) {
    snprintf(why, sizeof(why), "%s (owner uid %u, mode %03o; this process runs as uid %u)", bad,
             static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_mode & 07777),
             static_cast<unsigned>(euid));
  } else if (opt.single_link && st.st_nlink != 1) {
    snprintf(why, sizeof(why), "has %lu hard links; refused (it could be another file)",
             static_cast<unsigned long>(st.st_nlink));
  }
  if (bad == nullptr && why[0] == '\0') return fd;
  snprintf(err, errlen, "%s %s %s", what, path, why[0] ? why : bad);
  close(fd);
  return -1;
}

}  // namespace hami::vgpu
