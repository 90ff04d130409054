#include "fakegpu/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

namespace hami::fakegpu {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string DefaultUuid(int index) {
  char buf[64];
  snprintf(buf, sizeof buf, "GPU-fa4e0000-0000-4000-8000-%012x", index);
  return buf;
}

void ApplyDefaults(DeviceConfig& d, int index) {
  if (d.uuid.empty()) d.uuid = DefaultUuid(index);
  for (size_t i = 4; i < d.uuid.size(); ++i)  // NVML prints lowercase hex, as the hook will
    if (d.uuid[i] >= 'A' && d.uuid[i] <= 'F') d.uuid[i] = static_cast<char>(d.uuid[i] - 'A' + 'a');
  ParseUuid(d.uuid, d.uuid_bytes);
}

DeviceConfig DefaultDevice(int index) {
  DeviceConfig d;
  d.pci_bus = index == 0 ? 0x3b : index == 1 ? 0x86 : 0x20 + index;
  d.numa = index % 2;
  return d;
}

StatusOr<unsigned> ParseUnsigned(std::string_view v, int base, unsigned max) {
  if (v.empty()) return InvalidArgument("empty number");
  unsigned long long x = 0;
  for (char c : v) {
    int h = HexValue(c);
    if (h < 0 || h >= base) return InvalidArgument("bad number '" + std::string(v) + "'");
    x = x * base + h;
    if (x > max) return InvalidArgument("number out of range '" + std::string(v) + "'");
  }
  return static_cast<unsigned>(x);
}

// "0000:3b:00.0" (domain optional).
Status ParseBus(std::string_view v, DeviceConfig& d) {
  std::string s(v);
  unsigned dom = 0, bus = 0, dev = 0, fn = 0;
  char tail;
  if (sscanf(s.c_str(), "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4) {
    dom = 0;
    if (sscanf(s.c_str(), "%x:%x.%x%c", &bus, &dev, &fn, &tail) != 3)
      return InvalidArgument("bad PCI bus id '" + s + "' (want 0000:3b:00.0)");
  }
  if (bus > 0xff || dev > 0x1f || fn > 7)
    return InvalidArgument("PCI bus id out of range '" + s + "'");
  d.pci_domain = dom, d.pci_bus = bus, d.pci_device = dev, d.pci_function = fn;
  return Status::Ok();
}

// "unsupported" or "<corrected>,<uncorrected>".
Status ParseEcc(std::string_view v, DeviceConfig& d) {
  if (v == "unsupported") {
    d.ecc_supported = false;
    return Status::Ok();
  }
  const size_t comma = v.find(',');
  if (comma == std::string_view::npos) {
    return InvalidArgument("ecc wants 'unsupported' or <corrected>,<uncorrected>");
  }
  auto c = ParseUnsigned(v.substr(0, comma), 10, 0xffffffffu);
  auto u = ParseUnsigned(v.substr(comma + 1), 10, 0xffffffffu);
  if (!c.ok()) return c.status();
  if (!u.ok()) return u.status();
  d.ecc_supported = true;
  d.ecc_corrected = *c;
  d.ecc_uncorrected = *u;
  return Status::Ok();
}

// "<profile>:<gpu instance>:<compute instance>,..." (MIG mode on).
Status ParseMigs(std::string_view v, DeviceConfig& d) {
  d.migs.clear();
  while (!v.empty()) {
    const size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    const size_t c1 = item.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : item.find(':', c1 + 1);
    if (c2 == std::string_view::npos || c1 == 0) {
      return InvalidArgument("migs entry '" + std::string(item) + "' (want 1g.10gb:7:0)");
    }
    auto gi = ParseUnsigned(item.substr(c1 + 1, c2 - c1 - 1), 10, 255);
    auto ci = ParseUnsigned(item.substr(c2 + 1), 10, 255);
    if (!gi.ok()) return gi.status();
    if (!ci.ok()) return ci.status();
    if (d.migs.size() == kMaxMigDevices) return InvalidArgument("more than 7 MIG devices");
    d.migs.push_back({std::string(item.substr(0, c1)), *gi, *ci});
  }
  if (d.migs.empty()) return InvalidArgument("migs wants at least one device");
  d.mig_supported = true;
  return Status::Ok();
}

Status SetKey(DeviceConfig& d, std::string_view key, std::string_view v) {
  auto int_value = [&](int max, int& out) -> Status {
    auto r = ParseUnsigned(v, 10, max);
    if (!r.ok()) return r.status();
    out = static_cast<int>(*r);
    return Status::Ok();
  };
  if (key == "uuid") {
    unsigned char b[16];
    if (!ParseUuid(v, b)) return InvalidArgument("bad uuid '" + std::string(v) + "'");
    d.uuid = std::string(v);
  } else if (key == "name") {
    if (v.empty() || v.size() >= 96) return InvalidArgument("name must be 1..95 characters");
    d.name = std::string(v);
  } else if (key == "mem" || key == "ctxmem" || key == "reserved") {
    auto r = ParseSize(v);
    if (!r.ok()) return r.status();
    if (key == "mem" && *r == 0) return InvalidArgument("mem must be > 0");
    (key == "mem" ? d.mem_bytes : key == "ctxmem" ? d.ctx_mem : d.reserved) = *r;
  } else if (key == "sms") {
    if (Status s = int_value(100000, d.sms); !s.ok()) return s;
    if (d.sms == 0) return InvalidArgument("sms must be > 0");
  } else if (key == "numa") {
    return int_value(1023, d.numa);
  } else if (key == "bus") {
    return ParseBus(v, d);
  } else if (key == "pciid") {
    std::string_view h = v.substr(0, 2) == "0x" ? v.substr(2) : v;
    auto r = ParseUnsigned(h, 16, 0xffffffffu);
    if (!r.ok()) return r.status();
    d.pci_device_id = *r;
  } else if (key == "cc") {
    size_t dot = v.find('.');
    if (dot == std::string_view::npos) return InvalidArgument("cc wants major.minor");
    auto maj = ParseUnsigned(v.substr(0, dot), 10, 99);
    auto min = ParseUnsigned(v.substr(dot + 1), 10, 9);
    if (!maj.ok() || !min.ok()) return InvalidArgument("bad cc '" + std::string(v) + "'");
    d.cc_major = static_cast<int>(*maj), d.cc_minor = static_cast<int>(*min);
  } else if (key == "temp" || key == "power") {
    auto r = ParseUnsigned(v, 10, key == "temp" ? 200 : 10000000);
    if (!r.ok()) return r.status();
    (key == "temp" ? d.temperature_c : d.power_mw) = *r;
  } else if (key == "ecc") {
    return ParseEcc(v, d);
  } else if (key == "migs") {
    return ParseMigs(v, d);
  } else if (key == "mig") {
    if (v == "unsupported")
      d.mig_supported = false;
    else if (v == "disabled")
      d.mig_supported = true;
    else
      return InvalidArgument("mig must be 'unsupported' or 'disabled'");
  } else {
    return InvalidArgument("unknown key '" + std::string(key) + "'");
  }
  return Status::Ok();
}

bool IsKeyToken(std::string_view tok, std::string_view* key, std::string_view* value) {
  size_t eq = tok.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  for (size_t i = 0; i < eq; ++i)
    if (!(tok[i] >= 'a' && tok[i] <= 'z')) return false;
  *key = tok.substr(0, eq);
  *value = tok.substr(eq + 1);
  return true;
}

// One line: "key=value key=value ...". A token without '=' continues the previous value
// (names contain spaces: "name=NVIDIA H100 80GB HBM3").
Status ParseLine(std::string_view line, DeviceConfig& d) {
  std::string key, value;
  bool have = false;
  auto flush = [&]() -> Status {
    if (!have) return Status::Ok();
    return SetKey(d, key, value);
  };
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j == i) break;
    std::string_view tok = line.substr(i, j - i), k, v;
    if (IsKeyToken(tok, &k, &v)) {
      if (Status s = flush(); !s.ok()) return s;
      key = std::string(k), value = std::string(v), have = true;
    } else if (have) {
      value += ' ';
      value += tok;
    } else {
      return InvalidArgument("expected key=value, got '" + std::string(tok) + "'");
    }
    i = j;
  }
  return flush();
}

}  // namespace

StatusOr<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t next = n * 10 + (text[i] - '0');
    if (next / 10 != n) return InvalidArgument("size too large '" + std::string(text) + "'");
    n = next, ++i;
  }
  if (i == 0) return InvalidArgument("bad size '" + std::string(text) + "'");
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      default:
        return InvalidArgument("bad size suffix '" + std::string(text) + "'");
    }
    suffix.remove_prefix(1);
    if (!suffix.empty() && suffix[0] == 'i') suffix.remove_prefix(1);
    if (!suffix.empty() && suffix[0] == 'B') suffix.remove_prefix(1);
    if (!suffix.empty()) return InvalidArgument("bad size suffix '" + std::string(text) + "'");
  }
  if (shift && (n >> (64 - shift)) != 0)
    return InvalidArgument("size too large '" + std::string(text) + "'");
  return n << shift;
}

bool ParseUuid(std::string_view text, unsigned char out[16]) {
  if (text.size() != 40 || text.substr(0, 4) != "GPU-") return false;
  static constexpr int kDashes[] = {12, 17, 22, 27};
  int nibbles = 0;
  for (size_t i = 4; i < text.size(); ++i) {
    bool dash_pos = false;
    for (int p : kDashes) dash_pos |= static_cast<int>(i) == p;
    if (dash_pos) {
      if (text[i] != '-') return false;
      continue;
    }
    int h = HexValue(text[i]);
    if (h < 0) return false;
    if (nibbles % 2 == 0)
      out[nibbles / 2] = static_cast<unsigned char>(h << 4);
    else
      out[nibbles / 2] |= static_cast<unsigned char>(h);
    ++nibbles;
  }
  return nibbles == 32;
}

StatusOr<Config> ParseConfig(std::string_view text) {
  Config cfg;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    int index = static_cast<int>(cfg.devices.size());
    if (index == kMaxDevices)
      return InvalidArgument("line " + std::to_string(line_no) + ": more than 16 devices");
    DeviceConfig d = DefaultDevice(index);
    if (Status s = ParseLine(line, d); !s.ok())
      return InvalidArgument("line " + std::to_string(line_no) + ": " + s.message());
    ApplyDefaults(d, index);
    for (const DeviceConfig& o : cfg.devices)
      if (strcasecmp(o.uuid.c_str(), d.uuid.c_str()) == 0)
        return InvalidArgument("line " + std::to_string(line_no) + ": duplicate uuid " + d.uuid);
    cfg.devices.push_back(d);
  }
  return cfg;
}

Config DefaultConfig() {
  Config cfg;
  for (int i = 0; i < 2; ++i) {
    cfg.devices.push_back(DefaultDevice(i));
    ApplyDefaults(cfg.devices.back(), i);
  }
  return cfg;
}

std::vector<int> ParseVisibleDevices(std::string_view value, const Config& cfg) {
  std::vector<int> out;
  while (true) {
    size_t comma = value.find(',');
    std::string_view e = value.substr(0, comma);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
    int found = -1;
    if (!e.empty() && e.find_first_not_of("0123456789") == std::string_view::npos) {
      if (e.size() <= 3) found = std::stoi(std::string(e));
      if (found >= static_cast<int>(cfg.devices.size())) found = -1;
    } else if (e.size() > 4 && strncasecmp(e.data(), "GPU-", 4) == 0) {
      for (size_t i = 0; i < cfg.devices.size(); ++i) {
        const std::string& u = cfg.devices[i].uuid;
        if (u.size() >= e.size() && strncasecmp(u.data(), e.data(), e.size()) == 0) {
          if (found >= 0) {  // ambiguous prefix
            found = -1;
            break;
          }
          found = static_cast<int>(i);
        }
      }
    }
    for (int o : out)
      if (o == found) found = -1;
    if (found < 0) break;
    out.push_back(found);
    if (comma == std::string_view::npos) break;
    value = value.substr(comma + 1);
  }
  return out;
}

StatusOr<Config> LoadConfig() {
  const char* path = getenv("FAKEGPU_CONFIG");
  if (path == nullptr || path[0] == 0) return DefaultConfig();
  FILE* f = fopen(path, "re");
  if (f == nullptr)
    return InvalidArgument(std::string("FAKEGPU_CONFIG ") + path +
                           ": cannot open: " + strerror(errno));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  fclose(f);
  auto cfg = ParseConfig(text);
  if (!cfg.ok())
    return InvalidArgument(std::string("FAKEGPU_CONFIG ") + path + ": " + cfg.status().message());
  return cfg;
}

}  // namespace hami::fakegpu
