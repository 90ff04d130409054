// Bounded, link-free file reading (file_reader.h).
#include "common/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hami::common {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Status OpenError(const std::string& path, int err) {
  const std::string why = path + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound("cannot open " + why);
    case ELOOP:  // O_NOFOLLOW on a symbolic link
      return FailedPrecondition(path + ": is a symbolic link (not followed)");
    case EACCES:
    case EPERM:
      return PermissionDenied("cannot open " + why);
    case ENXIO:  // a FIFO or socket without a peer
      return FailedPrecondition(path + ": not a regular file");
    default:
      return Internal("cannot open " + why);
  }
}

Status CheckOwnerAndMode(const std::string& path, const struct stat& st,
                         const ReadFileOptions& o) {
  if (o.owner && st.st_uid != *o.owner) {
    return PermissionDenied(path + ": owned by uid " + std::to_string(st.st_uid) +
                            ", expected uid " + std::to_string(*o.owner));
  }
  if ((st.st_mode & o.forbidden_mode_bits) != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "mode %04o has bits %04o that are not allowed",
                  static_cast<unsigned>(st.st_mode & 07777),
                  static_cast<unsigned>(st.st_mode & o.forbidden_mode_bits));
    return PermissionDenied(path + ": " + buf);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> ReadFileBounded(const std::string& path, std::size_t max_bytes,
                                      const ReadFileOptions& options) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (a tenant can swap a file for one).
  const int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                    (options.follow_links ? 0 : O_NOFOLLOW);
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return OpenError(path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Internal(path + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + ": " + KindOf(st.st_mode));
  HAMI_RETURN_IF_ERROR(CheckOwnerAndMode(path, st, options));
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > max_bytes && !options.allow_truncate) {
    return ResourceExhausted(path + ": " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(max_bytes) + " allowed");
  }
  // Read up to one byte past the bound so a file that grew after fstat is still caught.
  const std::size_t want = options.allow_truncate ? max_bytes : max_bytes + 1;
  std::string buf;
  buf.resize(std::min(want, size + 1));
  std::size_t got = 0;
  while (got < want) {
    if (got == buf.size()) buf.resize(std::min(want, buf.size() * 2 + 4096));
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(path + ": read: " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_bytes) {
    if (!options.allow_truncate) {
      return ResourceExhausted(path + ": grew past the " + std::to_string(max_bytes) +
                               " bytes allowed while being read");
    }
    got = max_bytes;
  }
  buf.resize(got);
  return buf;
}

}  // namespace hami::common
