/* Link-time stand-ins for libdl.so.2 and libpthread.so.0 as glibc before 2.34 had them:
 * libvgpu.so links against these (never ships or loads them) so that its references to
 * dlopen@GLIBC_2.2.5, pthread_once@GLIBC_2.2.5 and the like are recorded as needed from
 * libdl.so.2 / libpthread.so.0, where old glibc defines them. Recorded against libc.so.6 (as
 * linking against glibc 2.34+ does), ld.so before 2.34 stops at libc.so.6, which lacks them,
 * and refuses the library. The bodies are never run. */
void dlopen(void) {}
void dlerror(void) {}
void dladdr(void) {}
void dlvsym(void) {}
void pthread_once(void) {}
void pthread_key_create(void) {}
void pthread_setspecific(void) {}
void pthread_mutex_trylock(void) {}
void pthread_mutex_timedlock(void) {}
void pthread_mutexattr_init(void) {}
void pthread_mutexattr_destroy(void) {}
void pthread_mutexattr_setpshared(void) {}
void pthread_mutexattr_setrobust(void) {}
void pthread_mutex_consistent(void) {}
