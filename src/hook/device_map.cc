#include "device_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace hami::vgpu {

namespace {
int UuidIndex(const Config& c, const char* uuid) {
  for (int j = 0; j < kMaxDevices; ++j)
    if (c.uuid[j][0] && strcmp(c.uuid[j], uuid) == 0) return j;
  return -1;
}
}  // namespace

DeviceLimit LimitForDevice(const Config& c, int ordinal, const char* uuid) {
  if (!c.have_uuids) return DeviceLimit{c.mem_limit[ordinal], c.sm_limit[ordinal], true};
  int j = UuidIndex(c, uuid);
  if (j >= 0) return DeviceLimit{c.mem_limit[j], c.sm_limit[j], true};
  return DeviceLimit{1, c.sm_limit[ordinal], false};
}

int ConfigIndexFor(const Config& c, int ordinal, const char* uuid) {
  int j = c.have_uuids ? UuidIndex(c, uuid) : -1;
  return j >= 0 ? j : ordinal;
}

bool LimitForConfiguredUuid(const Config& c, const char* uuid, uint64_t* limit) {
  int j = c.have_uuids ? UuidIndex(c, uuid) : -1;
  if (j >= 0) *limit = c.mem_limit[j];
  return j >= 0;
}

int ParseVisibleDevices(const char* value, VisibleToken (&out)[kMaxDevices]) {
  char buf[sizeof(Config::visible_devices)];
  snprintf(buf, sizeof(buf), "%s", value ? value : "");
  int n = 0;
  char* save = nullptr;
  for (char* tok = strtok_r(buf, ",", &save); tok && n < kMaxDevices;
       tok = strtok_r(nullptr, ",", &save)) {
    while (*tok == ' ') ++tok;
    VisibleToken& t = out[n];
    memset(&t, 0, sizeof(t));
    if (strncmp(tok, "GPU-", 4) == 0) {
      t.is_uuid = true;
      snprintf(t.uuid, sizeof(t.uuid), "%s", tok);
    } else {
      // Leading digits, as strtol would read them (not called: see src/hook/glibc_compat.h).
      long idx = -1;
      for (const char* p = tok; *p >= '0' && *p <= '9' && idx < 1000000; ++p)
        idx = (idx < 0 ? 0 : idx * 10) + (*p - '0');
      if (idx < 0 || idx >= 1000000) break;  // not an index: the list ends here, as in CUDA
      t.index = idx;
    }
    ++n;
  }
  return n;
}

void FormatUuid(const CUuuid& u, char* out, size_t len) {
  const unsigned char* b = reinterpret_cast<const unsigned char*>(u.bytes);
  snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
}

}  // namespace hami::vgpu
