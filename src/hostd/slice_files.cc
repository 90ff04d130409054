#include "hostd/slice_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "abi/vgpu_shm.h"
#include "hostd/limits.h"

namespace hami::hostd {
namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string Err(const std::string& what) { return what + ": " + std::strerror(errno); }

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool ValidName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// Empties the directory `dfd` (depth-bounded), unlinking links and files, never following.
bool EmptyDir(int dfd, int depth) {
  if (depth > 8) return false;
  int dup_fd = dup(dfd);
  if (dup_fd < 0) return false;
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return false;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  bool ok = true;
  for (const auto& n : names) {
    if (unlinkat(dfd, n.c_str(), 0) == 0) continue;
    if (errno != EISDIR && errno != EPERM) {
      ok = false;
      continue;
    }
    Fd sub(openat(dfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.fd < 0 || !EmptyDir(sub.fd, depth + 1) || unlinkat(dfd, n.c_str(), AT_REMOVEDIR) != 0) {
      ok = false;
    }
  }
  return ok;
}

}  // namespace

Status CreateSliceFiles(const std::string& slices_dir, const Slice& s, uid_t uid) {
  Fd root(open(slices_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) return Internal(Err("cannot open " + slices_dir));
  const std::string name = s.Name();
  if (mkdirat(root.fd, name.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return Status(StatusCode::kAlreadyExists,
                    slices_dir + "/" + name + " already exists; not reusing another slice's files");
    }
    return Internal(Err("cannot create " + slices_dir + "/" + name));
  }
  Fd dir(openat(root.fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.fd < 0) return Internal(Err("cannot open " + s.dir));
  {
    Fd f(openat(dir.fd, "vgpu.limits", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (f.fd < 0 || fchmod(f.fd, 0644) != 0 || !WriteAll(f.fd, FormatLimitsFile(s))) {
      return Internal(Err("cannot write " + s.limits_file));
    }
  }
  const bool root_daemon = geteuid() == 0;
  {
    // libvgpu.so initialises the accounting file on first use; the job's processes (its
    // user) must write it, nobody else may open it.
    Fd f(openat(dir.fd, "vgpu.cache", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (f.fd < 0 || fchmod(f.fd, 0600) != 0 ||
        (root_daemon && fchown(f.fd, uid, static_cast<gid_t>(-1)) != 0)) {
      return Internal(Err("cannot create " + s.cache_file));
    }
  }
  // Handed to the user last: until now the daemon alone could write in it.
  if (fchmod(dir.fd, 0700) != 0 ||
      (root_daemon && fchown(dir.fd, uid, static_cast<gid_t>(-1)) != 0)) {
    return Internal(Err("cannot give " + s.dir + " to uid " + std::to_string(uid)));
  }
  return Status::Ok();
}

Status RemoveSliceDir(const std::string& slices_dir, const std::string& name) {
  if (!ValidName(name)) return InvalidArgument("bad slice directory name \"" + name + "\"");
  Fd root(open(slices_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) return Internal(Err("cannot open " + slices_dir));
  Fd dir(openat(root.fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    // Not a directory (a link or file planted in its place): remove the entry itself.
    if (unlinkat(root.fd, name.c_str(), 0) == 0) return Status::Ok();
    return Internal(Err("cannot remove " + slices_dir + "/" + name));
  }
  if (!EmptyDir(dir.fd, 0) || unlinkat(root.fd, name.c_str(), AT_REMOVEDIR) != 0) {
    return Internal(Err("cannot remove " + slices_dir + "/" + name));
  }
  return Status::Ok();
}

std::vector<int64_t> ListSliceDirs(const std::string& slices_dir) {
  std::vector<int64_t> ids;
  DIR* d = opendir(slices_dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 2 || n.size() > 19 || n[0] != 's' ||
        !std::all_of(n.begin() + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    ids.push_back(std::stoll(n.substr(1)));
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

StatusOr<uid_t> SliceDirOwner(const std::string& slices_dir, const std::string& name) {
  struct stat st {};
  if (fstatat(AT_FDCWD, (slices_dir + "/" + name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return NotFound(Err(slices_dir + "/" + name));
  }
  return st.st_uid;
}

bool FileMaybeMapped(const std::string& path) {
  DIR* d = opendir("/proc");
  if (!d) return true;
  bool found = false;
  while (!found) {
    dirent* e = readdir(d);
    if (!e) break;
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream maps(std::string("/proc/") + e->d_name + "/maps");
    if (!maps) continue;  // gone, or a kernel thread
    std::string line;
    while (std::getline(maps, line)) {
      auto pos = line.find(path);
      if (pos != std::string::npos &&
          (pos + path.size() == line.size() || line.compare(pos + path.size(), 10, " (deleted)") == 0)) {
        found = true;
        break;
      }
    }
  }
  closedir(d);
  return found;
}

StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  Fd f(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) return NotFound(Err("cannot open " + path));
  struct stat st {};
  if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return FailedPrecondition(path + " is not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    return FailedPrecondition(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = pread(f.fd, buf.data() + got, buf.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return buf;
}

StatusOr<accounting::AccountingSnapshot> ReadSliceAccounting(const std::string& path) {
  // Bounded at four times the slots libvgpu.so creates: a user cannot make the daemon read
  // a file they grew to gigabytes.
  auto bytes = ReadSmallFile(
      path, HAMI_SHM_HEADER_SIZE + size_t{HAMI_SHM_SLOT_SIZE} * HAMI_SHM_DEFAULT_SLOTS * 4);
  if (!bytes.ok()) return bytes.status();
  return accounting::ParseAccounting(bytes->data(), bytes->size());
}

}  // namespace hami::hostd
