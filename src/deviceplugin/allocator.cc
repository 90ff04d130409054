#include "deviceplugin/allocator.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/pod_meta.h"

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;

std::size_t FirstNonEmpty(const std::vector<ContainerDevices>& segs) {
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (!segs[i].empty()) return i;
  }
  return segs.size();
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

Status WriteAtomically(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Internal("cannot write " + tmp + ": " + std::strerror(errno));
    out << text;
    if (!out.flush()) return Internal("cannot write " + tmp);
  }
  if (::chmod(tmp.c_str(), mode) != 0) {
    return Internal("cannot chmod " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot rename " + tmp + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status MakeDir(const std::string& dir, fs::perms perms) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, perms, ec);
  if (ec) return Internal("cannot chmod " + dir + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

StatusOr<Allocator::Candidate> Allocator::FindCandidate(std::size_t size) {
  auto pods = api_->ListPodsOnNode(opts_.node_name);
  if (!pods.ok()) return pods.status();
  std::vector<Candidate> matching;
  std::vector<std::string> seen;  // for the error message
  std::vector<std::string> malformed;
  for (auto& pod : *pods) {
    if (Get(pod.annotations, kBindPhaseAnnotation) != "allocating" || pod.deleting) continue;
    // docs/bind-allocate.md: the extender names the node it bound the pod to.
    if (Get(pod.annotations, kVgpuNodeAnnotation) != opts_.node_name) continue;
    const std::string id = pod.ns + "/" + pod.name;
    auto segs = ParsePodDevices(Get(pod.annotations, kToAllocateAnnotation));
    if (!segs.ok()) {
      malformed.push_back(id + " (" + segs.status().message() + ")");
      continue;
    }
    std::size_t idx = FirstNonEmpty(*segs);
    if (idx == segs->size()) {
      seen.push_back(id + " (nothing left to allocate)");
      continue;
    }
    if ((*segs)[idx].size() != size) {
      seen.push_back(id + " (next container wants " + std::to_string((*segs)[idx].size()) +
                     " devices)");
      continue;
    }
    seen.push_back(id);
    matching.push_back(Candidate{std::move(pod), std::move(*segs), idx});
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("none") : s;
  };
  if (!malformed.empty()) {
    return InvalidArgument("pods in bind-phase allocating on node " + opts_.node_name +
                           " have a malformed " + kToAllocateAnnotation + ": " + join(malformed));
  }
  if (matching.size() != 1) {
    return FailedPrecondition("expected exactly one pod in bind-phase allocating on node " +
                              opts_.node_name + " whose next container asks for " +
                              std::to_string(size) + " devices, found " +
                              std::to_string(matching.size()) + "; allocating pods: " + join(seen));
  }
  Candidate& c = matching.front();
  if (c.pod.containers.size() != c.segments.size()) {
    return InvalidArgument("pod " + c.pod.ns + "/" + c.pod.name + " has " +
                           std::to_string(c.pod.containers.size()) + " containers but " +
                           kToAllocateAnnotation + " has " + std::to_string(c.segments.size()) +
                           " segments");
  }
  return std::move(c);
}

std::vector<std::string> Allocator::PendingUuids(int size) {
  if (size <= 0) return {};
  auto c = FindCandidate(static_cast<std::size_t>(size));
  if (!c.ok()) return {};
  std::vector<std::string> out;
  for (const auto& d : c->segments[c->index]) out.push_back(d.uuid);
  return out;
}

StatusOr<ContainerResponse> Allocator::Build(const Candidate& c) const {
  const ContainerDevices& devs = c.segments[c.index];
  const ContainerInfo& ctr = c.pod.containers[c.index];
  const NvidiaConfig& nv = opts_.config.nvidia;
  const HookLayout layout = LayoutFor(opts_.hook_path);
  const std::string ctr_dir = layout.ContainerDir(c.pod.uid, ctr.name);
  const std::string alloc_dir = layout.AllocationDir(c.pod.uid, ctr.name);

  ContainerResponse r;
  std::string visible;
  bool same_cores = true;
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const auto& d = devs[i];
    if (!opts_.node_uuids.empty() && std::find(opts_.node_uuids.begin(), opts_.node_uuids.end(),
                                               d.uuid) == opts_.node_uuids.end()) {
      return FailedPrecondition("pod " + c.pod.ns + "/" + c.pod.name + " was given " + d.uuid +
                                ", which is not a GPU of node " + opts_.node_name);
    }
    visible += (i ? "," : "") + d.uuid;
    if (d.used_mem_mib > 0) {
      r.envs["CUDA_DEVICE_MEMORY_LIMIT_" + std::to_string(i)] =
          std::to_string(d.used_mem_mib) + "m";
    }
    if (d.used_cores != devs[0].used_cores) same_cores = false;
  }
  r.envs["NVIDIA_VISIBLE_DEVICES"] = visible;
  const bool core_limit = !nv.disable_core_limit;
  if (core_limit) {
    r.envs["CUDA_DEVICE_SM_LIMIT"] = std::to_string(devs[0].used_cores);
    if (!same_cores) {
      for (std::size_t i = 0; i < devs.size(); ++i) {
        r.envs["CUDA_DEVICE_SM_LIMIT_" + std::to_string(i)] = std::to_string(devs[i].used_cores);
      }
    }
  }
  r.envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = ctr_dir + "/" + kCacheFileName;
  if (nv.lib_cuda_log_level) r.envs["LIBCUDA_LOG_LEVEL"] = std::to_string(*nv.lib_cuda_log_level);
  r.envs["GPU_CORE_UTILIZATION_POLICY"] = core_limit ? nv.gpu_core_policy : "disable";
  const std::string priority = Get(ctr.limits, nv.resource_priority_name);
  if (!priority.empty()) r.envs["CUDA_TASK_PRIORITY"] = priority;

  r.mounts.push_back({layout.Library(), layout.Library(), true});
  r.mounts.push_back({ctr_dir, ctr_dir, false});
  r.mounts.push_back({kLimitsMountPath, alloc_dir + "/" + kLimitsFileName, true});
  r.mounts.push_back({layout.ContentionDir(), layout.ContentionDir(), true});
  r.mounts.push_back({layout.BoardDir(), layout.BoardDir(), false});
  r.envs["HAMI_COMPUTE_BOARD_DIR"] = layout.BoardDir();
  std::string disable = Get(ctr.env, "CUDA_DISABLE_CONTROL");
  std::transform(disable.begin(), disable.end(), disable.begin(), ::tolower);
  if (disable != "true") r.mounts.push_back({"/etc/ld.so.preload", layout.Preload(), true});
  return r;
}

Status Allocator::WriteFiles(const Candidate& c, const ContainerResponse& r) const {
  const ContainerDevices& devs = c.segments[c.index];
  const std::string& ctr = c.pod.containers[c.index].name;
  const HookLayout layout = LayoutFor(opts_.hook_path);
  const std::string ctr_dir = layout.ContainerDir(c.pod.uid, ctr);
  const std::string alloc_dir = layout.AllocationDir(c.pod.uid, ctr);
  // Any user of the container must be able to create the accounting file.
  HAMI_RETURN_IF_ERROR(MakeDir(ctr_dir, fs::perms::all));
  HAMI_RETURN_IF_ERROR(MakeDir(alloc_dir, fs::perms::owner_all | fs::perms::group_read |
                                              fs::perms::group_exec | fs::perms::others_read |
                                              fs::perms::others_exec));
  // Like /tmp: everyone may create a board file, nobody may remove another's.
  HAMI_RETURN_IF_ERROR(MakeDir(layout.BoardDir(), fs::perms::all | fs::perms::sticky_bit));
  HAMI_RETURN_IF_ERROR(MakeDir(
      layout.ContentionDir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec));

  std::string limits = "# written by hami-device-plugin for pod " + c.pod.ns + "/" + c.pod.name +
                       " container " + ctr + "\n";
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const std::string key = "CUDA_DEVICE_MEMORY_LIMIT_" + std::to_string(i);
    if (auto it = r.envs.find(key); it != r.envs.end()) limits += key + "=" + it->second + "\n";
    limits += "CUDA_DEVICE_UUID_" + std::to_string(i) + "=" + devs[i].uuid + "\n";
  }
  for (const char* key : {"CUDA_DEVICE_SM_LIMIT", "GPU_CORE_UTILIZATION_POLICY",
                          "CUDA_TASK_PRIORITY", "CUDA_DEVICE_MEMORY_SHARED_CACHE"}) {
    if (auto it = r.envs.find(key); it != r.envs.end())
      limits += std::string(key) + "=" + it->second + "\n";
  }
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const std::string key = "CUDA_DEVICE_SM_LIMIT_" + std::to_string(i);
    if (auto it = r.envs.find(key); it != r.envs.end()) limits += key + "=" + it->second + "\n";
  }
  HAMI_RETURN_IF_ERROR(WriteAtomically(alloc_dir + "/" + kLimitsFileName, limits, 0444));

  common::PodMeta meta{c.pod.ns, c.pod.name, c.pod.uid, ctr,
                       std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count(),
                       {}};
  for (const auto& d : devs) {
    meta.devices.push_back({d.uuid, d.type, d.used_mem_mib, d.used_cores});
  }
  return WriteAtomically(alloc_dir + "/" + kPodMetaFileName, common::EncodePodMeta(meta), 0444);
}

StatusOr<ContainerResponse> Allocator::AllocateContainer(
    const std::vector<std::string>& device_ids) {
  if (device_ids.empty()) return InvalidArgument("Allocate: container request without devices");
  Status last = Status::Ok();
  int unavailable = 0;
  for (int attempt = 0; attempt < opts_.max_patch_attempts; ++attempt) {
    auto c = FindCandidate(device_ids.size());
    // kubelet fails the pod when Allocate fails, so a brief API outage is waited out.
    if (!c.ok() && c.status().code() == StatusCode::kUnavailable && unavailable < 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << unavailable++));
      --attempt;
      continue;
    }
    if (!c.ok()) return c.status();
    auto resp = Build(*c);
    if (!resp.ok()) return resp.status();
    HAMI_RETURN_IF_ERROR(WriteFiles(*c, *resp));

    std::vector<ContainerDevices> rest = c->segments;
    rest[c->index].clear();
    // Cannot fail: every field came out of the strict decoder.
    auto remaining = sched::EncodeContainerDevices(rest);
    if (!remaining.ok()) return remaining.status();
    AnnotationPatch patch;
    patch[kToAllocateAnnotation] = *remaining;
    if (FirstNonEmpty(rest) == rest.size()) patch[kBindPhaseAnnotation] = "success";
    last = api_->PatchPodAnnotations(c->pod.ns, c->pod.name, c->pod.resource_version, patch);
    if (last.ok()) return resp;
    if (last.code() != StatusCode::kAborted) return last;
  }
  return Aborted("Allocate: pod kept changing while recording the allocation: " + last.message());
}

StatusOr<int> CollectGarbage(const std::string& hook_path,
                             const std::vector<std::string>& live_pod_uids,
                             std::chrono::seconds min_age) {
  const HookLayout layout = LayoutFor(hook_path);
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  for (const std::string& parent : {layout.root + "/containers", layout.root + "/allocations"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      if (!e.is_directory(ec)) continue;
      const std::string key = e.path().filename().string();
      const std::string uid = key.substr(0, key.find('_'));
      if (std::find(live_pod_uids.begin(), live_pod_uids.end(), uid) != live_pod_uids.end()) {
        continue;
      }
      // The newest change inside counts (a live process keeps touching its accounting file).
      auto newest = fs::last_write_time(e.path(), ec);
      for (const auto& f : fs::directory_iterator(e.path(), ec)) {
        std::error_code ec2;
        newest = std::max(newest, fs::last_write_time(f.path(), ec2));
      }
      if (now - newest < min_age) continue;
      std::error_code rm;
      fs::remove_all(e.path(), rm);
      if (rm) return Internal("cannot remove " + e.path().string() + ": " + rm.message());
      ++removed;
    }
  }
  return removed;
}

}  // namespace hami::deviceplugin
