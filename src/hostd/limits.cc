#include "hostd/limits.h"

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
