#include "hostd/limits.h"

#include <charconv>
#include <set>

namespace hami::hostd {

std::string FormatLimitsFile(const Slice& slice) {
  std::string out = "# written by hami serve for slice " + slice.Name() + "\n";
  for (size_t i = 0; i < slice.devices.size(); ++i) {
    const auto& d = slice.devices[i];
    std::string n = std::to_string(i);
    out += "CUDA_DEVICE_MEMORY_LIMIT_" + n + "=" + std::to_string(d.memory_mib) + "m\n";
    out += "CUDA_DEVICE_SM_LIMIT_" + n + "=" + std::to_string(d.cores) + "\n";
    out += "CUDA_DEVICE_UUID_" + n + "=" + d.uuid + "\n";
  }
  out += "CUDA_DEVICE_MEMORY_SHARED_CACHE=" + slice.cache_file + "\n";
  if (slice.request.priority >= 0) {
    out += "CUDA_TASK_PRIORITY=" + std::to_string(slice.request.priority) + "\n";
  }
  return out;
}

StatusOr<std::vector<SliceDevice>> ParseOwnLimitsFile(const std::string& text) {
  std::vector<SliceDevice> devs;
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&] {
      return InvalidArgument("limits file line " + std::to_string(line_no) + " \"" + line +
                             "\" is not one hami serve writes");
    };
    auto eq = line.find('=');
    if (eq == std::string::npos) return bad();
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    static const std::string kPrefixes[] = {"CUDA_DEVICE_MEMORY_LIMIT_", "CUDA_DEVICE_SM_LIMIT_",
                                            "CUDA_DEVICE_UUID_"};
    int which = -1;
    for (int i = 0; i < 3; ++i) {
      if (key.rfind(kPrefixes[i], 0) == 0) which = i;
    }
    if (which < 0) continue;  // the shared-cache path, the priority
    std::string idx_text = key.substr(kPrefixes[which].size());
    size_t idx = 0;
    auto [p, ec] = std::from_chars(idx_text.data(), idx_text.data() + idx_text.size(), idx);
    if (ec != std::errc() || p != idx_text.data() + idx_text.size() || idx >= 16) return bad();
    if (devs.size() <= idx) devs.resize(idx + 1);
    SliceDevice& d = devs[idx];
    if (which == 2) {
      if (value.empty()) return bad();
      d.uuid = value;
      continue;
    }
    if (which == 0 && (value.empty() || value.back() != 'm')) return bad();
    std::string num = which == 0 ? value.substr(0, value.size() - 1) : value;
    int64_t v = 0;
    auto [q, ec2] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec2 != std::errc() || q != num.data() + num.size() || v < 0) return bad();
    if (which == 0) d.memory_mib = v;
    if (which == 1) d.cores = static_cast<int32_t>(std::min<int64_t>(v, 100));
  }
  for (size_t i = 0; i < devs.size(); ++i) {
    if (devs[i].uuid.empty() || devs[i].memory_mib <= 0) {
      return InvalidArgument("limits file: device " + std::to_string(i) +
                             " lacks a UUID or a memory limit");
    }
  }
  if (devs.empty()) return InvalidArgument("limits file names no device");
  return devs;
}

JobEnv BuildJobEnv(const Slice& slice, const JobContext& ctx) {
  JobEnv env;
  std::string uuids;
  for (size_t i = 0; i < slice.devices.size(); ++i) {
    const auto& d = slice.devices[i];
    std::string n = std::to_string(i);
    if (i) uuids += ",";
    uuids += d.uuid;
    // The same values as the file, for tools that only read the environment; the file stays
    // authoritative inside libvgpu.so.
    env.set["CUDA_DEVICE_MEMORY_LIMIT_" + n] = std::to_string(d.memory_mib) + "m";
    env.set["CUDA_DEVICE_SM_LIMIT_" + n] = std::to_string(d.cores);
  }
  env.set["CUDA_VISIBLE_DEVICES"] = uuids;
  env.set["NVIDIA_VISIBLE_DEVICES"] = uuids;
  env.set["HAMI_LIMITS_FILE"] = slice.limits_file;
  env.set["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = slice.cache_file;
  env.set["HAMI_SLICE"] = slice.Name();
  if (slice.request.priority >= 0) {
    env.set["CUDA_TASK_PRIORITY"] = std::to_string(slice.request.priority);
  }
  for (const auto& [k, v] : ctx.extra_env) env.set[k] = v;
  if (!ctx.libvgpu.empty()) env.prepend["LD_PRELOAD"] = ctx.libvgpu;
  if (!ctx.driver_lib_dir.empty()) env.prepend["LD_LIBRARY_PATH"] = ctx.driver_lib_dir;
  return env;
}

std::vector<std::string> ApplyJobEnv(const std::vector<std::string>& base, const JobEnv& env) {
  std::vector<std::string> out;
  std::set<std::string> done;
  for (const auto& kv : base) {
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    std::string old = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (auto it = env.set.find(key); it != env.set.end()) {
      out.push_back(key + "=" + it->second);
    } else if (auto p = env.prepend.find(key); p != env.prepend.end()) {
      // LD_PRELOAD accepts spaces or colons; colons work for both variables.
      out.push_back(key + "=" + p->second + (old.empty() ? "" : ":" + old));
    } else {
      out.push_back(kv);
    }
    done.insert(key);
  }
  for (const auto& [k, v] : env.set) {
    if (!done.count(k)) out.push_back(k + "=" + v);
  }
  for (const auto& [k, v] : env.prepend) {
    if (!done.count(k)) out.push_back(k + "=" + v);
  }
  return out;
}

}  // namespace hami::hostd
