// Codec of `hami.io/vgpu-devices-to-allocate` / `-allocated` (annotation.h).
#include "sched/annotation.h"

#include <charconv>

namespace hami::sched {
namespace {

bool CleanField(std::string_view s) {
  return !s.empty() && s.find_first_of(",:;") == std::string_view::npos;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

StatusOr<std::string> EncodeContainerDevices(const std::vector<ContainerDevices>& containers) {
  std::string out;
  for (size_t c = 0; c < containers.size(); ++c) {
    for (size_t d = 0; d < containers[c].size(); ++d) {
      const DeviceAlloc& dev = containers[c][d];
      std::string where = "container " + std::to_string(c) + " device " + std::to_string(d);
      if (!CleanField(dev.uuid))
        return InvalidArgument(where + ": UUID " + Quote(dev.uuid) +
                               " is empty or contains ',', ':' or ';'");
      if (!CleanField(dev.type))
        return InvalidArgument(where + ": type " + Quote(dev.type) +
                               " is empty or contains ',', ':' or ';'");
      if (dev.used_mem_mib < 0) return InvalidArgument(where + ": negative memory");
      if (dev.used_cores < 0) return InvalidArgument(where + ": negative cores");
      out += dev.uuid;
      out += ',';
      out += dev.type;
      out += ',';
      out += std::to_string(dev.used_mem_mib);
      out += ',';
      out += std::to_string(dev.used_cores);
      out += ':';
    }
    out += ';';
  }
  return out;
}

StatusOr<std::string> EncodePlacement(const PodPlacement& placement) {
  return EncodeContainerDevices(placement.containers);
}

StatusOr<std::vector<ContainerDevices>> DecodeContainerDevices(std::string_view text) {
  std::vector<ContainerDevices> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    size_t c = out.size();
    std::string where = "container " + std::to_string(c);
    if (end == std::string_view::npos) {
      return InvalidArgument(where + ": segment " + Quote(text.substr(pos)) +
                             " does not end with ';'");
    }
    std::string_view seg = text.substr(pos, end - pos);
    ContainerDevices devs;
    size_t dpos = 0;
    while (dpos < seg.size()) {
      size_t dend = seg.find(':', dpos);
      std::string dwhere = where + " device " + std::to_string(devs.size());
      if (dend == std::string_view::npos) {
        return InvalidArgument(dwhere + ": " + Quote(seg.substr(dpos)) + " does not end with ':'");
      }
      std::string_view dev = seg.substr(dpos, dend - dpos);
      std::string_view f[4];
      size_t fpos = 0;
      int n = 0;
      while (true) {
        size_t comma = dev.find(',', fpos);
        // Fields after the fourth are ignored, as HAMi's DecodeContainerDevices does since
        // v2.10 ("extra optional fields"); the four read here are still checked strictly.
        if (n == 4) break;
        f[n++] = dev.substr(fpos, comma == std::string_view::npos ? comma : comma - fpos);
        if (comma == std::string_view::npos) break;
        fpos = comma + 1;
      }
      if (n != 4) {
        return InvalidArgument(dwhere + ": " + Quote(dev) + " has " + std::to_string(n) +
                               " fields (want UUID,Type,mem,cores)");
      }
      DeviceAlloc a;
      if (f[0].empty()) return InvalidArgument(dwhere + ": empty UUID");
      if (f[1].empty()) return InvalidArgument(dwhere + ": empty type");
      a.uuid = f[0];
      a.type = f[1];
      if (!ParseNumber(f[2], &a.used_mem_mib))
        return InvalidArgument(dwhere + ": memory " + Quote(f[2]) + " is not a MiB count");
      if (!ParseNumber(f[3], &a.used_cores) || a.used_cores > 10000)
        return InvalidArgument(dwhere + ": cores " + Quote(f[3]) + " is not a percentage");
      devs.push_back(std::move(a));
      dpos = dend + 1;
    }
    out.push_back(std::move(devs));
    pos = end + 1;
  }
  return out;
}

StatusOr<PodPlacement> DecodePlacement(std::string_view text, int32_t num_init) {
  auto c = DecodeContainerDevices(text);
  if (!c.ok()) return c.status();
  if (num_init < 0 || static_cast<size_t>(num_init) > c->size()) {
    return InvalidArgument("annotation has " + std::to_string(c->size()) +
                           " container segments, fewer than the " + std::to_string(num_init) +
                           " init containers");
  }
  PodPlacement p;
  p.containers = std::move(*c);
  p.num_init = num_init;
  return p;
}

}  // namespace hami::sched
