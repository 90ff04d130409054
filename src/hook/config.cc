#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "abi/units.h"

namespace hami::vgpu {
namespace {

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

// Applies one KEY=VALUE to *v. `file_only` keys are accepted only from the limits file.
// Returns false with a message on a bad key or value; unknown keys are errors only when
// `strict` (the file), since the environment is full of unrelated variables.
bool Apply(Values* v, const char* key, const char* value, bool strict, char* err, size_t errlen) {
  int idx = 0;
  if (MatchIndexed(key, "CUDA_DEVICE_MEMORY_LIMIT", &idx)) {
    if (idx == -2) {
      snprintf(err, errlen, "%s: device index must be 0..%d", key, kMaxDevices - 1);
      return false;
    }
    uint64_t bytes = 0;
    // Bytes when bare, as in HAMi-core; the grammar is the project's one (abi/units.h).
    abi::SizeError e = abi::ParseMemSize(value, 1, &bytes);
    if (e != abi::SizeError::kOk) {
      snprintf(err, errlen, "%s=\"%s\" is not a memory size: %s", key, value,
               abi::SizeErrorText(e));
      return false;
    }
    if (idx < 0) {
      v->mem_global_set = true;
      v->mem_global = bytes;
    } else {
      v->mem_set[idx] = true;
      v->mem[idx] = bytes;
    }
    return true;
  }
  if (MatchIndexed(key, "CUDA_DEVICE_SM_LIMIT", &idx)) {
    long pct = 0;
    if (idx == -2) {
      snprintf(err, errlen, "%s: device index must be 0..%d", key, kMaxDevices - 1);
      return false;
    }
    if (!ParseInt(value, 0, 100, &pct)) {
      snprintf(err, errlen, "%s=\"%s\" is not a percentage 0..100", key, value);
      return false;
    }
    if (idx < 0) {
      v->sm_global_set = true;
      v->sm_global = static_cast<uint32_t>(pct);
    } else {
      v->sm_set[idx] = true;
      v->sm[idx] = static_cast<uint32_t>(pct);
    }
    return true;
  }
  if (strcmp(key, "GPU_CORE_UTILIZATION_POLICY") == 0) {
    if (strcasecmp(value, "default") == 0) {
      v->policy = CorePolicy::kDefault;
    } else if (strcasecmp(value, "force") == 0) {
      v->policy = CorePolicy::kForce;
    } else if (strcasecmp(value, "disable") == 0) {
      v->policy = CorePolicy::kDisable;
    } else {
      snprintf(err, errlen, "%s=\"%s\" must be default, force or disable", key, value);
      return false;
    }
    v->policy_set = true;
    return true;
  }
  if (strcmp(key, "CUDA_TASK_PRIORITY") == 0) {
    long p = 0;
    if (!ParseInt(value, 0, 1000, &p)) {
      snprintf(err, errlen, "%s=\"%s\" must be an integer 0..1000", key, value);
      return false;
    }
    v->priority_set = true;
    v->priority = static_cast<int>(p);
    return true;
  }
  if (strcmp(key, "CUDA_DEVICE_MEMORY_SHARED_CACHE") == 0) {
    size_t n = strlen(value);
    if (n == 0 || n >= sizeof(v->shm) || value[0] != '/') {
      snprintf(err, errlen, "%s=\"%s\" must be an absolute path shorter than %zu bytes", key, value,
               sizeof(v->shm));
      return false;
    }
    memcpy(v->shm, value, n + 1);
    v->shm_set = true;
    return true;
  }
  if (strcmp(key, "CUDA_OVERSUBSCRIBE") == 0) {
    if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0) {
      v->oversubscribe = true;
    } else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0) {
      v->oversubscribe = false;
    } else {
      snprintf(err, errlen, "%s=\"%s\" must be true or false", key, value);
      return false;
    }
    v->oversubscribe_set = true;
    return true;
  }
  if (strcmp(key, "LIBCUDA_LOG_LEVEL") == 0) {
    long lvl = 0;
    if (!ParseInt(value, 0, 4, &lvl)) {
      snprintf(err, errlen, "%s=\"%s\" must be 0..4", key, value);
      return false;
    }
    v->log_level_set = true;
    v->log_level = static_cast<int>(lvl);
    return true;
  }
  if (strict && MatchIndexed(key, "CUDA_DEVICE_UUID", &idx)) {
    size_t n = strlen(value);
    if (idx < 0 || n == 0 || n >= sizeof(v->uuid[0])) {
      snprintf(err, errlen, "%s=\"%s\": expected CUDA_DEVICE_UUID_<0..%d>=GPU-...", key, value,
               kMaxDevices - 1);
      return false;
    }
    memcpy(v->uuid[idx], value, n + 1);
    v->uuid_set[idx] = true;
    return true;
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
    // An index we cannot honour must not be silently ignored.
    for (int i = kMaxDevices; i < 64; ++i) {
      snprintf(name, sizeof(name), "%s_%d", base, i);
      if (src.getenv(name)) {
        snprintf(err, errlen, "%s: device index must be 0..%d", name, kMaxDevices - 1);
        return false;
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

bool LoadFile(const char* path, Values* v, char* err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "limits file %s: cannot open: %s", path, strerror(errno));
    return false;
  }
  char buf[16384];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(err, errlen, "limits file %s: read failed: %s", path, strerror(errno));
      close(fd);
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    if (len == sizeof(buf) - 1) {
      snprintf(err, errlen, "limits file %s: larger than %zu bytes", path, sizeof(buf) - 1);
      close(fd);
      return false;
    }
  }
  close(fd);
  buf[len] = '\0';
  int line_no = 0;
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
    ++line_no;
    char* t = Trim(line);
    if (*t == '\0' || *t == '#') continue;
    char* eq = strchr(t, '=');
    if (!eq) {
      snprintf(err, errlen, "limits file %s line %d: expected KEY=VALUE, got \"%.64s\"", path,
               line_no, t);
      return false;
    }
    *eq = '\0';
    char* key = Trim(t);
    char* value = Trim(eq + 1);
    char msg[384];
    if (!Apply(v, key, value, true, msg, sizeof(msg))) {
      snprintf(err, errlen, "limits file %s line %d: %s", path, line_no, msg);
      return false;
    }
  }
  return true;
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

bool LoadConfig(const ConfigSource& src, Config* out, char* err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->priority = 1;
  out->log_level = 2;
  Values env;
  if (!LoadEnv(src, &env, err, errlen)) return false;
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
  if (src.fixed_limits_path && access(src.fixed_limits_path, F_OK) == 0) {
    file = src.fixed_limits_path;
  } else {
    const char* f = src.getenv("HAMI_LIMITS_FILE");
    if (f && f[0] != '\0') file = f;
  }
  Values fv;
  if (file) {
    if (!LoadFile(file, &fv, err, errlen)) return false;
    out->from_file = true;
    snprintf(out->limits_file, sizeof(out->limits_file), "%s", file);
  }

  for (int i = 0; i < kMaxDevices; ++i) {
    out->mem_limit[i] = Tighter(MemFor(fv, i), MemFor(env, i));
    out->sm_limit[i] = Tighter(SmFor(fv, i), SmFor(env, i));
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
  return true;
}

}  // namespace hami::vgpu
