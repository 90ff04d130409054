// libvgpu.so is preloaded into whatever a container runs, on whatever glibc the image has:
// Debian 12 builds it against glibc 2.36, while CUDA images run 2.28 (UBI 8), 2.31 (Ubuntu
// 20.04) or 2.35 (Ubuntu 22.04). Where a preloaded library asks for a newer symbol version
// than the image's glibc has, ld.so refuses to start the program ("version `GLIBC_2.36' not
// found (required by libvgpu.so)"; through /etc/ld.so.preload, no program of the container
// starts). So the library asks for nothing newer than glibc 2.17 (RHEL/CentOS 7):
//  - the functions glibc 2.34 moved from libdl and libpthread into libc are linked against
//    stand-ins of the old libdl.so.2 / libpthread.so.0 (glibc_stubs/, CMakeLists.txt), which
//    define them at their original versions: the library needs them from there, where old
//    glibc keeps them (new glibc's libc.so.6 still exports those versions for old programs);
//  - stat, fstat and lstat (exported only since 2.33) go through __xstat and friends (here);
//  - libstdc++'s runtime is not linked in (cxx_runtime.cc: it needs glibc 2.32-2.36);
//  - no strtol/strtoll/strtoul/strtoull/sscanf family: glibc 2.38+ headers turn them into
//    __isoc23_* (GLIBC_2.38) in C++ (_GNU_SOURCE), which a build on Ubuntu 24.04 showed on
//    the H100 machine; numbers are parsed by hand (tests/compat/glibc_floor.py refuses them).
// tests/compat/glibc_floor.py checks the built library (ctest), tests/compat/old_glibc_load.sh
// loads it under glibc 2.23-2.35 (by hand). x86-64 and aarch64 glibc are handled (on aarch64
// every version named here is GLIBC_2.17, its first; tests/compat/aarch64_floor.sh).
#pragma once

#include <sys/stat.h>

#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__GLIBC__)
extern "C" {
int __xstat(int ver, const char* path, struct stat* st) __THROW;
int __lxstat(int ver, const char* path, struct stat* st) __THROW;
int __fxstat(int ver, int fd, struct stat* st) __THROW;
}

namespace hami::vgpu {
// _STAT_VER: the kernel's struct stat, 1 on x86-64; 0 on aarch64 (the generic layout).
#if defined(__x86_64__)
inline constexpr int kStatVer = 1;
#else
inline constexpr int kStatVer = 0;
#endif
inline int StatPath(const char* path, struct stat* st) { return __xstat(kStatVer, path, st); }
inline int LstatPath(const char* path, struct stat* st) { return __lxstat(kStatVer, path, st); }
inline int StatFd(int fd, struct stat* st) { return __fxstat(kStatVer, fd, st); }
}  // namespace hami::vgpu
#else
namespace hami::vgpu {
inline int StatPath(const char* path, struct stat* st) { return ::stat(path, st); }
inline int LstatPath(const char* path, struct stat* st) { return ::lstat(path, st); }
inline int StatFd(int fd, struct stat* st) { return ::fstat(fd, st); }
}  // namespace hami::vgpu
#endif
