#include "monitor/collector.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "abi/node_layout.h"
#include "common/file_reader.h"
#include "common/hook_layout.h"
#include "common/log.h"
#include "common/pod_meta.h"
#include "sched/model.h"

namespace hami::monitor {
namespace {

namespace fs = std::filesystem;

uint64_t RealtimeNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// pod.json is a few hundred bytes; anything near this is not ours.
constexpr std::size_t kMaxPodMetaBytes = 64 * 1024;
// A container directory is the tenant's: bound the entries looked at in one scan.
constexpr int kMaxEntriesPerContainer = 256;

// The devices of a container in vdevice order: the allocation's when known (a device in the
// accounting file that the container was not given is not its slice), else the file's.
std::vector<std::string> DeviceOrder(const ContainerView& v) {
  std::vector<std::string> out;
  for (const auto& d : v.allocated) out.push_back(d.uuid);
  if (!out.empty()) return out;
  for (const auto& snap : v.accounting) {
    for (const auto& d : snap.devices) {
      if (std::find(out.begin(), out.end(), d.uuid) == out.end()) out.push_back(d.uuid);
    }
  }
  return out;
}

}  // namespace

StatusOr<ContainerView> ParsePodMeta(const std::string& json_text) {
  auto m = common::ParsePodMeta(json_text);
  if (!m.ok()) return m.status();
  ContainerView v;
  v.ns = m->ns;
  v.pod = m->pod;
  v.pod_uid = m->pod_uid;
  v.container = m->container;
  for (const auto& d : m->devices) v.allocated.push_back({d.uuid, d.memory_mib, d.cores});
  return v;
}

std::vector<ContainerView> Collector::Scan() {
  const auto layout = common::LayoutFor(opts_.hook_path);
  std::map<std::string, ContainerView> views;
  uint64_t corrupt = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(layout.AllocationsDir(), ec)) {
    if (!e.is_directory(ec)) continue;
    const std::string meta = (e.path() / abi::kPodMetaFileName).string();
    auto text = common::ReadFileBounded(meta, kMaxPodMetaBytes);
    if (!text.ok() && text.status().code() == StatusCode::kNotFound) continue;  // being written
    auto v = text.ok() ? ParsePodMeta(*text) : StatusOr<ContainerView>(text.status());
    if (!v.ok()) {
      NoteSkipped(meta, v.status());
      ++corrupt;
      continue;
    }
    v->key = e.path().filename().string();
    views[v->key] = std::move(*v);
  }
  for (const auto& e : fs::directory_iterator(layout.ContainersDir(), ec)) {
    if (!e.is_directory(ec)) continue;
    const std::string key = e.path().filename().string();
    auto it = views.find(key);
    if (it == views.end()) {
      ContainerView v;
      v.key = key;
      const std::size_t us = key.find('_');
      v.pod_uid = key.substr(0, us);
      v.pod = v.pod_uid;
      v.container = us == std::string::npos ? "" : key.substr(us + 1);
      it = views.emplace(key, std::move(v)).first;
    }
    std::error_code ec2;
    int entries = 0;
    for (const auto& f : fs::directory_iterator(e.path(), ec2)) {
      if (++entries > kMaxEntriesPerContainer) {
        NoteSkipped(e.path().string(), ResourceExhausted("more than " +
                                                         std::to_string(kMaxEntriesPerContainer) +
                                                         " entries; the rest are not read"));
        break;
      }
      if (f.path().extension() != ".cache") continue;
      // No type check here: the reader refuses links, FIFOs and directories without blocking.
      auto snap = accounting::ReadAccountingFile(f.path().string());
      if (snap.ok()) {
        it->second.accounting.push_back(std::move(*snap));
      } else if (snap.status().code() != StatusCode::kNotFound) {
        NoteSkipped(f.path().string(), snap.status());
        ++corrupt;
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    corrupt_total_ += corrupt;
    corrupt_last_scan_ = corrupt;
    ++scans_;
  }
  std::vector<ContainerView> out;
  for (auto& [k, v] : views) out.push_back(std::move(v));
  return out;
}

void Collector::NoteSkipped(const std::string& path, const Status& why) {
  std::lock_guard lock(mu_);
  const std::string key = path + "\n" + why.message();
  if (reported_.size() > 4096) reported_.clear();  // bounded; repeats are then logged again
  if (!reported_.insert(key).second) return;
  log::Warn("skipping {}: {}", path, why.ToString());
}

std::map<std::string, ContentionInfo> Collector::Contention(
    const std::vector<ContainerView>& views) {
  std::map<std::string, ContentionInfo> out;
  if (gpus_ != nullptr) {
    if (auto list = gpus_->ListGpus(); list.ok()) {
      for (const auto& g : *list) out[g.uuid];
    }
  }
  const uint64_t now = RealtimeNs();
  const uint64_t window = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.active_window).count());
  for (const auto& v : views) {
    for (const auto& uuid : DeviceOrder(v)) {
      ContentionInfo& c = out[uuid];
      ++c.allocated;
      uint64_t last = 0;
      int priority = -1;
      for (const auto& snap : v.accounting) {
        for (const auto& d : snap.devices) {
          if (d.uuid != uuid) continue;
          last = std::max(last, d.last_kernel_ns);
          priority = static_cast<int>(d.priority);
        }
      }
      if (last != 0 && last + window >= now) {
        ++c.active;
        if (priority == 0) ++c.active_high;
        if (priority >= 0 && (c.min_priority < 0 || priority < c.min_priority)) {
          c.min_priority = priority;
        }
      }
    }
  }
  return out;
}

Status Collector::WriteContentionFiles() {
  const auto layout = common::LayoutFor(opts_.hook_path);
  std::error_code ec;
  fs::create_directories(layout.ContentionDir(), ec);
  if (ec) return Internal("cannot create " + layout.ContentionDir() + ": " + ec.message());
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& [uuid, c] : Contention(Scan())) {
    if (uuid.empty() || uuid.find('/') != std::string::npos || uuid[0] == '.') continue;
    const std::string path = layout.ContentionDir() + "/" + uuid;
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "# written by hami-vgpu-monitor (docs/node-agents.md)\n"
          << "ALLOCATED_CONTAINERS=" << c.allocated << "\n"
          << "ACTIVE_CONTAINERS=" << c.active << "\n"
          << "ACTIVE_HIGH_PRIORITY=" << c.active_high << "\n"
          << "MIN_ACTIVE_PRIORITY=" << c.min_priority << "\n"
          << "UPDATED_UNIX_MS=" << now_ms << "\n";
      if (!out.flush()) return Internal("cannot write " + tmp);
    }
    ::chmod(tmp.c_str(), 0644);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return Internal("cannot rename " + tmp + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

std::vector<Family> Collector::Collect() {
  std::vector<ContainerView> views = Scan();
  std::vector<Family> out;

  Family build{"hami_build_info", "Build information of the HAMi component.", "gauge", {}};
  build.samples.push_back({{{"component", "vgpu-monitor"}, {"version", opts_.version}}, 1});
  out.push_back(std::move(build));

  Family host_mem{
      "hami_host_gpu_memory_used_bytes", "GPU memory used on the host (NVML).", "gauge", {}};
  Family host_util{
      "hami_host_gpu_utilization_ratio", "GPU utilisation on the host (NVML), 0..1.", "gauge", {}};
  if (gpus_ != nullptr) {
    if (auto list = gpus_->ListGpus(); list.ok()) {
      for (const auto& g : *list) {
        auto u = gpus_->Usage(g.uuid);
        if (!u.ok()) continue;
        Labels l = {{"node", opts_.node_name},
                    {"device_uuid", g.uuid},
                    {"device_index", std::to_string(g.index)},
                    {"device_type", sched::NormalizeGpuType(g.name)}};
        host_mem.samples.push_back({l, static_cast<double>(u->memory_used_bytes)});
        host_util.samples.push_back({l, u->utilization_percent / 100.0});
      }
    }
  }
  out.push_back(std::move(host_mem));
  out.push_back(std::move(host_util));

  Family used{"hami_vgpu_memory_used_bytes",
              "Device memory used by the container (accounting).",
              "gauge",
              {}};
  Family limit{
      "hami_vgpu_memory_limit_bytes", "Device memory limit of the container.", "gauge", {}};
  Family util{"hami_container_device_utilization_ratio",
              "Share of the GPU's time the container used since the last scrape, 0..1.",
              "gauge",
              {}};
  Family last{"hami_container_last_kernel_elapsed_seconds",
              "Seconds since the container last launched a kernel on the device.",
              "gauge",
              {}};
  const uint64_t now_ns = RealtimeNs();
  const auto now = std::chrono::steady_clock::now();
  std::set<std::string> seen_keys;
  std::lock_guard lock(mu_);
  for (const auto& v : views) {
    std::vector<std::string> order = DeviceOrder(v);
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::string& uuid = order[i];
      Labels l = {{"namespace", v.ns},
                  {"pod", v.pod},
                  {"container", v.container},
                  {"vdevice_index", std::to_string(i)},
                  {"device_uuid", uuid}};
      uint64_t used_bytes = 0, limit_bytes = 0, last_ns = 0, busy = 0;
      for (const auto& snap : v.accounting) {
        for (const auto& d : snap.devices) {
          if (d.uuid != uuid) continue;
          used_bytes += d.used_bytes;
          if (d.limit_bytes != 0) limit_bytes = d.limit_bytes;
          last_ns = std::max(last_ns, d.last_kernel_ns);
          busy += d.busy_ns_total;
        }
      }
      // The allocation is authoritative for the limit (the file may not exist yet).
      if (i < v.allocated.size() && v.allocated[i].uuid == uuid && v.allocated[i].memory_mib > 0) {
        limit_bytes = static_cast<uint64_t>(v.allocated[i].memory_mib) * 1024 * 1024;
      }
      used.samples.push_back({l, static_cast<double>(used_bytes)});
      limit.samples.push_back({l, static_cast<double>(limit_bytes)});

      const std::string bkey = v.key + "/" + uuid;
      seen_keys.insert(bkey);
      auto it = busy_.find(bkey);
      double ratio = 0;
      if (it != busy_.end()) {
        const double wall = std::chrono::duration<double, std::nano>(now - it->second.at).count();
        ratio = it->second.ratio;
        if (wall >= 1e8) {  // recompute at most every 100 ms so back-to-back scrapes agree
          ratio = busy >= it->second.busy_ns && wall > 0
                      ? std::min(1.0, static_cast<double>(busy - it->second.busy_ns) / wall)
                      : 0;
          it->second = {busy, now, ratio};
        }
      } else {
        busy_[bkey] = {busy, now, 0};
      }
      util.samples.push_back({l, ratio});
      if (last_ns != 0) {
        last.samples.push_back(
            {l, now_ns > last_ns ? static_cast<double>(now_ns - last_ns) / 1e9 : 0.0});
      }
    }
  }
  for (auto it = busy_.begin(); it != busy_.end();) {
    it = seen_keys.count(it->first) ? std::next(it) : busy_.erase(it);
  }
  out.push_back(std::move(used));
  out.push_back(std::move(limit));
  out.push_back(std::move(util));
  out.push_back(std::move(last));

  Family corrupt{"hami_monitor_corrupt_accounting_files",
                 "Accounting or allocation files skipped as corrupt in the last scan.",
                 "gauge",
                 {}};
  corrupt.samples.push_back({{}, static_cast<double>(corrupt_last_scan_)});
  out.push_back(std::move(corrupt));
  Family corrupt_total{"hami_monitor_corrupt_accounting_files_total",
                       "Corrupt accounting or allocation files seen since start.",
                       "counter",
                       {}};
  corrupt_total.samples.push_back({{}, static_cast<double>(corrupt_total_)});
  out.push_back(std::move(corrupt_total));

  Family active{"hami_gpu_active_containers",
                "Containers that launched a kernel on the GPU within the active window.",
                "gauge",
                {}};
  for (const auto& [uuid, c] : Contention(views)) {
    active.samples.push_back({{{"device_uuid", uuid}}, static_cast<double>(c.active)});
  }
  out.push_back(std::move(active));
  return out;
}

}  // namespace hami::monitor
