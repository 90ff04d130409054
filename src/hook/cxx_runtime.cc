// The little of the C++ runtime libvgpu.so uses, so that libstdc++'s own runtime is not
// linked in (glibc_compat.h says why: its exception, locale and random-device objects need
// glibc 2.32-2.36, and the unwinder 2.35). The library is built without exceptions, so what
// would throw ends the process with a message, as an uncaught exception would. All of it is
// local to the library (exports.map): the application keeps its own operator new.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <new>

#include "log.h"

namespace {
[[noreturn]] void Die(const char* what) {
  VGPU_LOG(hami::vgpu::kLogError, "FATAL: %s", what);
  abort();
}
}  // namespace

namespace std {
void __throw_bad_alloc() { Die("out of memory"); }
void __throw_bad_array_new_length() { Die("bad array length"); }
void __throw_length_error(const char* what) { Die(what); }
void __throw_system_error(int err) {
  VGPU_LOG(hami::vgpu::kLogError, "system error %d in a lock", err);
  Die("system error");
}
}  // namespace std

void* operator new(std::size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) Die("out of memory");
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, std::size_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t) noexcept { free(p); }

// Function-local statics (Itanium C++ ABI 3.3.2). Byte 0 of the guard: initialised; byte 1:
// a thread is initialising it; bytes 4-7: that thread's id (an initialiser that reaches its
// own static again ends the process, as libstdc++'s recursive_init_error would, instead of
// waiting for itself). One lock for all guards: they are taken a handful of times.
namespace {
pthread_mutex_t g_guard_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_guard_cv = PTHREAD_COND_INITIALIZER;
uint32_t Tid() { return static_cast<uint32_t>(syscall(SYS_gettid)); }
uint32_t* Owner(uint64_t* guard) { return reinterpret_cast<uint32_t*>(guard) + 1; }
}  // namespace

extern "C" int __cxa_guard_acquire(uint64_t* guard) {
  auto* b = reinterpret_cast<uint8_t*>(guard);
  if (__atomic_load_n(b, __ATOMIC_ACQUIRE)) return 0;
  const uint32_t me = Tid();
  pthread_mutex_lock(&g_guard_mu);
  int mine = 0;
  for (;;) {
    if (__atomic_load_n(b, __ATOMIC_RELAXED)) break;
    if (!b[1]) {
      b[1] = 1;
      *Owner(guard) = me;
      mine = 1;
      break;
    }
    if (*Owner(guard) == me) Die("recursive initialisation of a function-local static");
    pthread_cond_wait(&g_guard_cv, &g_guard_mu);
  }
  pthread_mutex_unlock(&g_guard_mu);
  return mine;
}

extern "C" void __cxa_guard_release(uint64_t* guard) {
  auto* b = reinterpret_cast<uint8_t*>(guard);
  pthread_mutex_lock(&g_guard_mu);
  b[1] = 0;
  *Owner(guard) = 0;
  __atomic_store_n(b, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&g_guard_cv);
  pthread_mutex_unlock(&g_guard_mu);
}

extern "C" void __cxa_guard_abort(uint64_t* guard) {
  auto* b = reinterpret_cast<uint8_t*>(guard);
  pthread_mutex_lock(&g_guard_mu);
  b[1] = 0;
  *Owner(guard) = 0;
  pthread_cond_broadcast(&g_guard_cv);
  pthread_mutex_unlock(&g_guard_mu);
}
