#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi/units.h"
#include "glibc_compat.h"
#include "safe_open.h"

namespace hami::vgpu {
namespace {

constexpr size_t kMaxLimitsFileBytes = 16383;

// One source's raw values (the file or the environment), before combining.
struct Values {
  bool mem_global_set = false;
  uint64_t mem_global = 0;
  bool mem_set[kMaxDevices] = {};
  uint64_t mem[kMaxDevices] = {};
  bool sm_global_set = false;
  uint32_t sm_global = 0;
  bool sm_set[kMaxDevices] = {};
  uint32_t sm[kMaxDevices] = {};
  bool policy_set = false;
  CorePolicy policy = CorePolicy::kDefault;
  bool priority_set = false;
  int priority = 1;
  bool shm_set = false;
  char shm[1024] = {};
  bool uuid_set[kMaxDevices] = {};
  char uuid[kMaxDevices][96] = {};
  bool oversubscribe_set = false;
  bool oversubscribe = false;
  bool log_level_set = false;
  int log_level = 0;
};

// Parses "<PREFIX>" or "<PREFIX>_<i>" into index -1 (global) or i.
bool MatchIndexed(const char* key, const char* prefix, int* index) {
  size_t n = strlen(prefix);
  if (strncmp(key, prefix, n) != 0) return false;
  if (key[n] == '\0') {
    *index = -1;
    return true;
  }
  if (key[n] != '_') return false;
  long v = 0;
  if (!ParseInt(key + n + 1, 0, kMaxDevices - 1, &v)) {
    *index = -2;  // a malformed index
    return true;
  }
  *index = static_cast<int>(v);
  return true;
}

bool Fail(char* err, size_t errlen, const char* fmt, const char* key, const char* value) {
  snprintf(err, errlen, fmt, key, value);
  return false;
}

// A key given twice in the file: which one was meant is unknowable, so it is an error.
bool Duplicate(bool already, const char* key, char* err, size_t errlen) {
  if (!already) return false;
  snprintf(err, errlen, "duplicate key %s", key);
  return true;
}

bool ApplyIndexError(const char* key, char* err, size_t errlen) {
  snprintf(err, errlen, "%s: device index must be 0..%d", key, kMaxDevices - 1);
  return false;
}

bool ApplyMemory(Values* v, const char* key, const char* value, int idx, char* err, size_t errlen) {
  if (idx == -2) return ApplyIndexError(key, err, errlen);
  bool& set = idx < 0 ? v->mem_global_set : v->mem_set[idx];
  if (Duplicate(set, key, err, errlen)) return false;
  uint64_t bytes = 0;
  // Bytes when bare, as in HAMi-core; the grammar is the project's one (abi/units.h).
  abi::SizeError e = abi::ParseMemSize(value, 1, &bytes);
  if (e != abi::SizeError::kOk) {
    snprintf(err, errlen, "%s=\"%s\" is not a memory size: %s", key, value, abi::SizeErrorText(e));
    return false;
  }
  set = true;
  (idx < 0 ? v->mem_global : v->mem[idx]) = bytes;
  return true;
}

bool ApplySm(Values* v, const char* key, const char* value, int idx, char* err, size_t errlen) {
  if (idx == -2) return ApplyIndexError(key, err, errlen);
  bool& set = idx < 0 ? v->sm_global_set : v->sm_set[idx];
  if (Duplicate(set, key, err, errlen)) return false;
  long pct = 0;
  if (!ParseInt(value, 0, 100, &pct))
    return Fail(err, errlen, "%s=\"%s\" is not a percentage 0..100", key, value);
  set = true;
  (idx < 0 ? v->sm_global : v->sm[idx]) = static_cast<uint32_t>(pct);
  return true;
}

bool ApplyPolicy(Values* v, const char* key, const char* value, char* err, size_t errlen) {
  if (Duplicate(v->policy_set, key, err, errlen)) return false;
  if (strcasecmp(value, "default") == 0) {
    v->policy = CorePolicy::kDefault;
  } else if (strcasecmp(value, "force") == 0) {
    v->policy = CorePolicy::kForce;
  } else if (strcasecmp(value, "disable") == 0) {
    v->policy = CorePolicy::kDisable;
  } else {
    return Fail(err, errlen, "%s=\"%s\" must be default, force or disable", key, value);
  }
  v->policy_set = true;
  return true;
}

bool ApplyBool(bool* set, bool* out, const char* key, const char* value, char* err, size_t errlen) {
  if (Duplicate(*set, key, err, errlen)) return false;
  if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0) {
    *out = true;
  } else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0) {
    *out = false;
  } else {
    return Fail(err, errlen, "%s=\"%s\" must be true or false", key, value);
  }
  *set = true;
  return true;
}

bool ApplyInt(bool* set, int* out, long hi, const char* key, const char* value, char* err,
              size_t errlen) {
  if (Duplicate(*set, key, err, errlen)) return false;
  long x = 0;
  if (!ParseInt(value, 0, hi, &x)) {
    snprintf(err, errlen, "%s=\"%s\" must be an integer 0..%ld", key, value, hi);
    return false;
  }
  *set = true;
  *out = static_cast<int>(x);
  return true;
}

bool ApplyString(bool* set, char* out, size_t cap, bool absolute_path, const char* key,
                 const char* value, char* err, size_t errlen) {
  if (Duplicate(*set, key, err, errlen)) return false;
  size_t n = strlen(value);
  if (n == 0 || n >= cap || (absolute_path && value[0] != '/')) {
    snprintf(err, errlen, "%s=\"%s\" must be %s shorter than %zu bytes", key, value,
             absolute_path ? "an absolute path" : "a non-empty value", cap);
    return false;
  }
  memcpy(out, value, n + 1);
  *set = true;
  return true;
}

// Applies one KEY=VALUE to *v. Returns false with a message on a bad key, value or a key
// given twice; unknown keys are errors only when `strict` (the file), since the environment
// is full of unrelated variables, and CUDA_DEVICE_UUID_<i> is read from the file only.
bool Apply(Values* v, const char* key, const char* value, bool strict, char* err, size_t errlen) {
  int idx = 0;
  if (MatchIndexed(key, "CUDA_DEVICE_MEMORY_LIMIT", &idx))
    return ApplyMemory(v, key, value, idx, err, errlen);
  if (MatchIndexed(key, "CUDA_DEVICE_SM_LIMIT", &idx))
    return ApplySm(v, key, value, idx, err, errlen);
  if (strcmp(key, "GPU_CORE_UTILIZATION_POLICY") == 0)
    return ApplyPolicy(v, key, value, err, errlen);
  if (strcmp(key, "CUDA_TASK_PRIORITY") == 0)
    return ApplyInt(&v->priority_set, &v->priority, 1000, key, value, err, errlen);
  if (strcmp(key, "CUDA_DEVICE_MEMORY_SHARED_CACHE") == 0)
    return ApplyString(&v->shm_set, v->shm, sizeof(v->shm), true, key, value, err, errlen);
  if (strcmp(key, "CUDA_OVERSUBSCRIBE") == 0)
    return ApplyBool(&v->oversubscribe_set, &v->oversubscribe, key, value, err, errlen);
  if (strcmp(key, "LIBCUDA_LOG_LEVEL") == 0)
    return ApplyInt(&v->log_level_set, &v->log_level, 4, key, value, err, errlen);
  if (strict && MatchIndexed(key, "CUDA_DEVICE_UUID", &idx)) {
    if (idx < 0) {
      snprintf(err, errlen, "%s=\"%s\": expected CUDA_DEVICE_UUID_<0..%d>=GPU-...", key, value,
               kMaxDevices - 1);
      return false;
    }
    return ApplyString(&v->uuid_set[idx], v->uuid[idx], sizeof(v->uuid[0]), false, key, value, err,
                       errlen);
  }
  if (strict) {
    snprintf(err, errlen, "unknown key \"%s\"", key);
    return false;
  }
  return true;
}

bool LoadEnv(const ConfigSource& src, Values* v, char* err, size_t errlen) {
  static const char* const kKeys[] = {"CUDA_DEVICE_MEMORY_LIMIT", "CUDA_DEVICE_SM_LIMIT"};
  char name[64];
  for (const char* base : kKeys) {
    const char* val = src.getenv(base);
    if (val && !Apply(v, base, val, false, err, errlen)) return false;
    for (int i = 0; i < kMaxDevices; ++i) {
      snprintf(name, sizeof(name), "%s_%d", base, i);
      val = src.getenv(name);
      if (val && !Apply(v, name, val, false, err, errlen)) return false;
    }
  }
  // An index we cannot honour (CUDA_DEVICE_MEMORY_LIMIT_99) must not be silently ignored.
  if (src.environment != nullptr) {
    for (const char* const* e = src.environment(); e && *e; ++e) {
      for (const char* base : kKeys) {
        size_t n = strlen(base);
        if (strncmp(*e, base, n) != 0 || (*e)[n] != '_') continue;
        const char* eq = strchr(*e, '=');
        size_t klen = eq ? static_cast<size_t>(eq - *e) : strlen(*e);
        snprintf(name, sizeof(name), "%.*s", static_cast<int>(klen), *e);
        int idx = 0;
        if (MatchIndexed(name, base, &idx) && idx == -2) return ApplyIndexError(name, err, errlen);
      }
    }
  }
  static const char* const kPlain[] = {"GPU_CORE_UTILIZATION_POLICY", "CUDA_TASK_PRIORITY",
                                       "CUDA_DEVICE_MEMORY_SHARED_CACHE", "CUDA_OVERSUBSCRIBE",
                                       "LIBCUDA_LOG_LEVEL"};
  for (const char* key : kPlain) {
    const char* val = src.getenv(key);
    if (val && val[0] != '\0' && !Apply(v, key, val, false, err, errlen)) return false;
  }
  return true;
}

char* Trim(char* s) {
  while (*s == ' ' || *s == '\t') ++s;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
  return s;
}

// Reads the whole limits file (at most 16 KiB) through SafeOpen: a FIFO, a symbolic link,
// another user's file or a group/world-writable one is refused before any byte is read.
bool ReadLimitsFile(const char* path, char* buf, size_t cap, size_t* len, char* err,
                    size_t errlen) {
  SafeOpenOptions opt{false, false, false};
  int fd = SafeOpen(path, opt, "limits file", err, errlen);
  if (fd < 0) return false;
  *len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + *len, cap - 1 - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(err, errlen, "limits file %s: read failed: %s", path, strerror(errno));
      close(fd);
      return false;
    }
    if (n == 0) break;
    *len += static_cast<size_t>(n);
    if (*len == cap - 1) {
      snprintf(err, errlen, "limits file %s: larger than %zu bytes", path, cap - 1);
      close(fd);
      return false;
    }
  }
  close(fd);
  buf[*len] = '\0';
  return true;
}

// With UUIDs, a per-device limit binds to CUDA_DEVICE_UUID_<i>; one without its UUID would
// bind to nothing. Two indices with one UUID would make the limit ambiguous.
bool CheckUuidBinding(const char* path, const Values& v, char* err, size_t errlen) {
  bool any = false;
  for (int i = 0; i < kMaxDevices; ++i) any = any || v.uuid_set[i];
  if (!any) return true;
  for (int i = 0; i < kMaxDevices; ++i) {
    if ((v.mem_set[i] || v.sm_set[i]) && !v.uuid_set[i]) {
      snprintf(err, errlen,
               "limits file %s: device %d has a limit but no CUDA_DEVICE_UUID_%d while other "
               "devices are named by UUID",
               path, i, i);
      return false;
    }
    for (int j = 0; j < i; ++j) {
      if (v.uuid_set[i] && v.uuid_set[j] && strcmp(v.uuid[i], v.uuid[j]) == 0) {
        snprintf(err, errlen, "limits file %s: CUDA_DEVICE_UUID_%d and _%d are both %s", path, j, i,
                 v.uuid[i]);
        return false;
      }
    }
  }
  return true;
}

// Parses limits-file text buf[0..len) (buf[len] == '\0') into *v; `path` names it in errors.
bool ParseLimitsBuffer(const char* path, char* buf, size_t len, Values* v, char* err,
                       size_t errlen) {
  // A NUL would end the text early and silently drop every limit after it.
  if (const void* nul = memchr(buf, '\0', len)) {
    snprintf(err, errlen, "limits file %s: contains a NUL byte at offset %zu", path,
             static_cast<size_t>(static_cast<const char*>(nul) - buf));
    return false;
  }
  int line_no = 0, keys = 0;
  for (char* line = buf; line != nullptr;) {
    char* nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    ++line_no;
    char* t = Trim(line);
    line = nl ? nl + 1 : nullptr;
    if (*t == '\0' || *t == '#') continue;
    char* eq = strchr(t, '=');
    if (!eq) {
      snprintf(err, errlen, "limits file %s line %d: expected KEY=VALUE, got \"%.64s\"", path,
               line_no, t);
      return false;
    }
    *eq = '\0';
    char msg[384];
    if (!Apply(v, Trim(t), Trim(eq + 1), true, msg, sizeof(msg))) {
      snprintf(err, errlen, "limits file %s line %d: %s", path, line_no, msg);
      return false;
    }
    ++keys;
  }
  if (keys == 0) {
    snprintf(err, errlen,
             "limits file %s sets nothing (an empty limits file must not mean unlimited)", path);
    return false;
  }
  return CheckUuidBinding(path, *v, err, errlen);
}

bool LoadFile(const char* path, Values* v, char* err, size_t errlen) {
  char buf[kMaxLimitsFileBytes + 1];
  size_t len = 0;
  if (!ReadLimitsFile(path, buf, sizeof(buf), &len, err, errlen)) return false;
  return ParseLimitsBuffer(path, buf, len, v, err, errlen);
}

// The highest device index the file sets a per-device key for; -1 for none.
int MaxFileIndex(const Values& v) {
  int m = -1;
  for (int i = 0; i < kMaxDevices; ++i)
    if (v.mem_set[i] || v.sm_set[i] || v.uuid_set[i]) m = i;
  return m;
}

uint64_t MemFor(const Values& v, int i) {
  if (v.mem_set[i]) return v.mem[i];
  return v.mem_global_set ? v.mem_global : 0;
}

uint32_t SmFor(const Values& v, int i) {
  if (v.sm_set[i]) return v.sm[i];
  return v.sm_global_set ? v.sm_global : 0;
}

// Smallest non-zero of the two; 0 means "no limit" in both inputs and the output.
template <typename T>
T Tighter(T a, T b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return a < b ? a : b;
}

// The file is authoritative; the environment may only tighten it (docs/limits-file.md).
void Combine(const Values& fv, const Values& env, Config* out) {
  for (int i = 0; i < kMaxDevices; ++i) {
    out->mem_limit[i] = Tighter(MemFor(fv, i), MemFor(env, i));
    out->env_sm_limit[i] = SmFor(env, i);
    out->sm_limit[i] = Tighter(SmFor(fv, i), out->env_sm_limit[i]);
    if (fv.uuid_set[i]) {
      memcpy(out->uuid[i], fv.uuid[i], sizeof(out->uuid[i]));
      out->have_uuids = true;
    }
  }
  // Stricter policy wins: force > default > disable.
  auto rank = [](CorePolicy p) {
    return p == CorePolicy::kForce ? 2 : (p == CorePolicy::kDefault ? 1 : 0);
  };
  out->policy = CorePolicy::kDefault;
  if (fv.policy_set)
    out->policy = fv.policy;
  else if (env.policy_set)
    out->policy = env.policy;
  if (fv.policy_set && env.policy_set && rank(env.policy) > rank(fv.policy))
    out->policy = env.policy;
  // A larger number is a lower priority; the environment may only lower it.
  out->priority = fv.priority_set ? fv.priority : (env.priority_set ? env.priority : 1);
  if (fv.priority_set && env.priority_set && env.priority > fv.priority)
    out->priority = env.priority;
  out->priority_set = fv.priority_set || env.priority_set;
  const char* shm = fv.shm_set ? fv.shm : (env.shm_set ? env.shm : kDefaultShmPath);
  snprintf(out->shm_path, sizeof(out->shm_path), "%s", shm);
  out->oversubscribe = fv.oversubscribe_set ? fv.oversubscribe : env.oversubscribe;
  if (env.log_level_set)
    out->log_level = env.log_level;
  else if (fv.log_level_set)
    out->log_level = fv.log_level;
}

void Defaults(Config* out) {
  memset(out, 0, sizeof(*out));
  out->file_max_index = -1;
  out->priority = 1;
  out->log_level = 2;
}

}  // namespace

bool ParseInt(const char* s, long lo, long hi, long* out) {
  if (!s || *s == '\0') return false;
  long v = 0;
  for (const char* p = s; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
    if (v > hi) return false;
  }
  if (v < lo) return false;
  *out = v;
  return true;
}

bool Config::AnyMemoryLimit() const {
  for (int i = 0; i < kMaxDevices; ++i)
    if (mem_limit[i] != 0) return true;
  return have_uuids;
}

bool Config::AnySmLimit() const {
  for (int i = 0; i < kMaxDevices; ++i)
    if (sm_limit[i] != 0) return true;
  return false;
}

bool ParseLimitsText(const char* text, size_t len, Config* out, char* err, size_t errlen) {
  Defaults(out);
  if (len > kMaxLimitsFileBytes) {
    snprintf(err, errlen, "limits file (text): larger than %zu bytes", kMaxLimitsFileBytes);
    return false;
  }
  char buf[kMaxLimitsFileBytes + 1];
  memcpy(buf, text, len);
  buf[len] = '\0';
  Values fv;
  if (!ParseLimitsBuffer("(text)", buf, len, &fv, err, errlen)) return false;
  out->from_file = true;
  out->file_max_index = MaxFileIndex(fv);
  Combine(fv, Values{}, out);
  return true;
}

bool LoadConfig(const ConfigSource& src, Config* out, char* err, size_t errlen) {
  Defaults(out);
  Values env;
  if (!LoadEnv(src, &env, err, errlen)) return false;
  if (!LoadComputeConfig(src.getenv, &out->compute, err, errlen)) return false;
  if (const char* cvd = src.getenv("CUDA_VISIBLE_DEVICES")) {
    if (strlen(cvd) >= sizeof(out->visible_devices)) {
      snprintf(err, errlen, "CUDA_VISIBLE_DEVICES is longer than %zu bytes",
               sizeof(out->visible_devices) - 1);
      return false;
    }
    out->visible_devices_set = true;
    snprintf(out->visible_devices, sizeof(out->visible_devices), "%s", cvd);
  }

  const char* file = nullptr;
  struct stat st;
  // lstat: whatever sits at the fixed path (a dangling link, a FIFO) is the file and is
  // refused by LoadFile, never a reason to fall back to the tenant's environment.
  if (src.fixed_limits_path && LstatPath(src.fixed_limits_path, &st) == 0) {
    file = src.fixed_limits_path;
  } else {
    const char* f = src.getenv("HAMI_LIMITS_FILE");
    if (f && f[0] != '\0') file = f;
  }
  Values fv;
  if (file) {
    if (!LoadFile(file, &fv, err, errlen)) return false;
    out->from_file = true;
    out->file_max_index = MaxFileIndex(fv);
    snprintf(out->limits_file, sizeof(out->limits_file), "%s", file);
  }

  Combine(fv, env, out);
  return true;
}

bool ReloadSmLimits(const Config& start, uint32_t (&sm_limit)[kMaxDevices], char* err,
                    size_t errlen) {
  if (!start.from_file || start.limits_file[0] == '\0') {
    snprintf(err, errlen, "no limits file was read at start");
    return false;
  }
  char buf[kMaxLimitsFileBytes + 1];
  size_t len = 0;
  if (!ReadLimitsFile(start.limits_file, buf, sizeof(buf), &len, err, errlen)) return false;
  Values fv;
  if (!ParseLimitsBuffer(start.limits_file, buf, len, &fv, err, errlen)) return false;
  for (int i = 0; i < kMaxDevices; ++i) {
    bool had = start.uuid[i][0] != '\0';
    if (fv.uuid_set[i] != had || (had && strcmp(fv.uuid[i], start.uuid[i]) != 0)) {
      snprintf(err, errlen, "limits file %s: CUDA_DEVICE_UUID_%d differs from the one at start",
               start.limits_file, i);
      return false;
    }
  }
  for (int i = 0; i < kMaxDevices; ++i) sm_limit[i] = Tighter(SmFor(fv, i), start.env_sm_limit[i]);
  return true;
}

}  // namespace hami::vgpu
