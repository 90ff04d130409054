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
      if (pods_ != nullptr) {
        if (auto ref = pods_->Lookup(v.pod_uid)) {
          v.ns = ref->ns;
          v.pod = ref->name;
        }
      }
      it = views.emplace(key, std::move(v)).first;
    }
    std::error_code ec2;
    int entries = 0;
    for (const auto& f : fs::directory_iterator(e.path(), ec2)) {
      if (++entries > kMaxEntriesPerContainer) {
        NoteSkipped(e.path().string(),
                    ResourceExhausted("more than " + std::to_string(kMaxEntriesPerContainer) +
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

void Collector::AppendTelemetry(const gpu::GpuInfo& g, const Labels& l, std::vector<Family>& out) {
  auto t = gpus_->Telemetry(g.uuid);
  if (!t.ok()) return;
  // A sensor the GPU lacks has no series (HAMi skips NOT_SUPPORTED the same way).
  if (t->temperature_c) out[0].samples.push_back({l, static_cast<double>(*t->temperature_c)});
  if (t->power_mw) out[1].samples.push_back({l, *t->power_mw / 1000.0});  // NVML says mW
  for (const auto& [type, count] :
       {std::pair{"corrected", t->ecc_corrected}, std::pair{"uncorrected", t->ecc_uncorrected}}) {
    if (!count) continue;
    Labels le = l;
    le.emplace_back("error_type", type);
    out[2].samples.push_back({std::move(le), static_cast<double>(*count)});
  }
}

std::map<std::string, uint64_t> Collector::AccountedBytes(const std::vector<ContainerView>& views) {
  std::map<std::string, uint64_t> out;
  const auto add = [&](const std::string& uuid, uint64_t bytes) {
    uint64_t& sum = out[uuid];
    sum = bytes > UINT64_MAX - sum ? UINT64_MAX : sum + bytes;
  };
  bool mig = false;
  for (const auto& v : views) {
    for (const auto& snap : v.accounting) {
      for (const auto& d : snap.devices) {
        add(d.uuid, d.used_bytes);
        mig = mig || d.uuid.starts_with("MIG-");
      }
    }
  }
  if (mig && gpus_ != nullptr) {
    if (auto migs = gpus_->MigDevices(); migs.ok()) {
      for (const auto& m : *migs) {
        auto it = out.find(m.uuid);
        if (it != out.end()) add(m.parent_uuid, it->second);
      }
    }
  }
  return out;
}

std::vector<Family> Collector::HostFamilies(const std::vector<ContainerView>& views) {
  Family host_mem{
      "hami_host_gpu_memory_used_bytes", "GPU device memory usage in bytes (NVML).", "gauge", {}};
  // What the slices do not explain: processes without libvgpu.so (or that go around it, which
  // an in-process library cannot stop) and the driver's own reservation.
  Family unaccounted{"hami_host_gpu_memory_unaccounted_bytes",
                     "GPU device memory in use (NVML) beyond what the containers' accounting "
                     "files account for.",
                     "gauge",
                     {}};
  Family host_util{"hami_host_gpu_utilization_ratio",
                   "GPU core utilization ratio (0-100), as HAMi reports it (NVML).",
                   "gauge",
                   {}};
  Family host_mc{"hami_host_gpu_memory_controller_utilization_ratio",
                 "GPU memory controller utilization ratio (0-100) (NVML).",
                 "gauge",
                 {}};
  std::vector<Family> sensors{
      {"hami_host_gpu_temperature_celsius",
       "GPU temperature in degrees Celsius (NVML).",
       "gauge",
       {}},
      {"hami_host_gpu_power_usage_watts", "GPU power draw in watts (NVML).", "gauge", {}},
      // A gauge, as HAMi types it, though the count only grows.
      {"hami_host_gpu_ecc_errors_total", "Lifetime aggregate ECC errors (NVML).", "gauge", {}}};
  if (gpus_ != nullptr) {
    const std::map<std::string, uint64_t> accounted = AccountedBytes(views);
    if (auto list = gpus_->ListGpus(); list.ok()) {
      for (const auto& g : *list) {
        auto u = gpus_->Usage(g.uuid);
        if (!u.ok()) continue;
        // HAMi's monitor labels host GPUs "NVIDIA-" + the NVML name.
        Labels l = {{"node", opts_.node_name},
                    {"device_uuid", g.uuid},
                    {"device_index", std::to_string(g.index)},
                    {"device_type", sched::NormalizeGpuType(g.name)}};
        host_mem.samples.push_back({l, static_cast<double>(u->memory_used_bytes)});
        auto a = accounted.find(g.uuid);
        const uint64_t acc = a == accounted.end() ? 0 : a->second;
        unaccounted.samples.push_back(
            {l, static_cast<double>(u->memory_used_bytes > acc ? u->memory_used_bytes - acc : 0)});
        host_util.samples.push_back({l, static_cast<double>(u->utilization_percent)});
        host_mc.samples.push_back({l, static_cast<double>(u->memory_utilization_percent)});
        AppendTelemetry(g, l, sensors);
      }
    }
  }
  std::vector<Family> out{std::move(host_mem), std::move(host_util), std::move(host_mc),
                          std::move(unaccounted)};
  for (auto& f : sensors) out.push_back(std::move(f));
  return out;
}

Family Collector::MigFamily(const std::vector<ContainerView>& views) {
  Family info{
      "hami_mig_device_info", "MIG runtime identity for a container allocation.", "gauge", {}};
  std::set<std::string> seen;
  const auto add = [&](const std::string& ns, const std::string& pod, const std::string& ctr,
                       int vdev, const gpu::MigDevice& m) {
    if (!seen.insert(ns + "/" + pod + "/" + ctr + "/" + std::to_string(vdev) + "/" + m.uuid)
             .second) {
      return;
    }
    info.samples.push_back({{{"namespace", ns},
                             {"pod", pod},
                             {"container", ctr},
                             {"vdevice_index", std::to_string(vdev)},
                             {"device_uuid", m.parent_uuid},
                             {"mig_uuid", m.uuid},
                             {"profile", m.profile},
                             {"gpu_instance_id", std::to_string(m.gpu_instance_id)},
                             {"compute_instance_id", std::to_string(m.compute_instance_id)}},
                            1});
  };
  // HAMi's device plugin records its MIG devices on the pod; HAMi's monitor reads only that.
  if (pods_ != nullptr) {
    for (const auto& a : pods_->MigAllocations()) {
      add(a.ns, a.pod, a.container, a.device_index,
          {a.mig_uuid, a.gpu_uuid, a.profile, a.gpu_instance_id, a.compute_instance_id});
    }
  }
  // A container whose slice is a MIG device (its allocation or accounting file names the
  // "MIG-..." UUID): NVML knows the device's GPU, profile and instances.
  if (gpus_ == nullptr) return info;
  std::vector<std::vector<std::string>> orders;
  orders.reserve(views.size());
  bool any = false;
  for (const auto& v : views) {
    orders.push_back(DeviceOrder(v));
    for (const auto& uuid : orders.back()) any = any || uuid.starts_with("MIG-");
  }
  if (!any) return info;  // no NVML walk over every GPU's MIG slots on every scrape
  auto migs = gpus_->MigDevices();
  if (!migs.ok()) return info;
  for (std::size_t k = 0; k < views.size(); ++k) {
    const ContainerView& v = views[k];
    for (std::size_t i = 0; i < orders[k].size(); ++i) {
      for (const auto& m : *migs) {
        if (m.uuid == orders[k][i]) add(v.ns, v.pod, v.container, static_cast<int>(i), m);
      }
    }
  }
  return info;
}

Collector::DeviceSample Collector::Sample(const ContainerView& v, std::size_t i,
                                          const std::string& uuid, uint64_t now_ns,
                                          std::chrono::steady_clock::time_point now) {
  DeviceSample out;
  uint64_t last_ns = 0, busy = 0, sm_util = 0;
  for (const auto& snap : v.accounting) {
    for (const auto& d : snap.devices) {
      if (d.uuid != uuid) continue;
      out.used_bytes += d.used_bytes;
      if (d.limit_bytes != 0) out.limit_bytes = d.limit_bytes;
      last_ns = std::max(last_ns, d.last_kernel_ns);
      busy += d.busy_ns_total;
      if (d.has_memory_split) {
        out.has_split = true;
        out.context_bytes += d.context_bytes;
        out.module_bytes += d.module_bytes;
        out.buffer_bytes += d.buffer_bytes;
        sm_util += d.sm_util_percent;
      }
    }
  }
  // The allocation is authoritative for the limit (the file may not exist yet).
  if (i < v.allocated.size() && v.allocated[i].uuid == uuid && v.allocated[i].memory_mib > 0) {
    out.limit_bytes = static_cast<uint64_t>(v.allocated[i].memory_mib) * 1024 * 1024;
  }
  const std::string bkey = v.key + "/" + uuid;
  auto it = busy_.find(bkey);
  if (it != busy_.end()) {
    const double wall = std::chrono::duration<double, std::nano>(now - it->second.at).count();
    out.ratio = it->second.ratio;
    if (wall >= 1e8) {  // recompute at most every 100 ms so back-to-back scrapes agree
      out.ratio = busy >= it->second.busy_ns && wall > 0
                      ? std::min(1.0, static_cast<double>(busy - it->second.busy_ns) / wall)
                      : 0;
      it->second = {busy, now, out.ratio};
    }
  } else {
    busy_[bkey] = {busy, now, 0};
  }
  // HAMi-core keeps no busy time; HAMi's monitor exports the processes' summed sm_util (which
  // HAMi-core's utilisation watcher writes), bounded here to the metric's 0..100.
  if (out.has_split && busy == 0)
    out.ratio = static_cast<double>(std::min<uint64_t>(sm_util, 100)) / 100;
  if (last_ns != 0) {
    out.last_kernel_s = now_ns > last_ns ? static_cast<double>(now_ns - last_ns) / 1e9 : 0.0;
  }
  return out;
}

std::vector<Family> Collector::ContainerFamilies(const std::vector<ContainerView>& views) {
  Family used{"hami_vgpu_memory_used_bytes", "vGPU device memory usage in bytes.", "gauge", {}};
  Family limit{"hami_vgpu_memory_limit_bytes", "vGPU device memory limit in bytes.", "gauge", {}};
  Family mem{
      "hami_container_device_memory_bytes", "Container device memory usage in bytes.", "gauge", {}};
  Family util{"hami_container_device_utilization_ratio",
              "Container device SM utilization (0-100) since the last scrape.",
              "gauge",
              {}};
  Family last{"hami_container_last_kernel_elapsed_seconds",
              "Seconds since last kernel execution in container.",
              "gauge",
              {}};
  // HAMi-core's per-kind split; only HAMi-core regions have one (our file keeps one total).
  Family ctx{"hami_vgpu_memory_context_bytes",
             "Container device memory context size in bytes.",
             "gauge",
             {}};
  Family mod{"hami_vgpu_memory_module_bytes",
             "Container device memory module size in bytes.",
             "gauge",
             {}};
  Family buf{"hami_vgpu_memory_buffer_bytes",
             "Container device memory buffer size in bytes.",
             "gauge",
             {}};
  const uint64_t now_ns = RealtimeNs();
  const auto now = std::chrono::steady_clock::now();
  std::set<std::string> seen_keys;
  std::lock_guard lock(mu_);
  for (const auto& v : views) {
    std::vector<std::string> order = DeviceOrder(v);
    for (std::size_t i = 0; i < order.size(); ++i) {
      Labels l = {{"namespace", v.ns},
                  {"pod", v.pod},
                  {"container", v.container},
                  {"vdevice_index", std::to_string(i)},
                  {"device_uuid", order[i]}};
      seen_keys.insert(v.key + "/" + order[i]);
      const DeviceSample d = Sample(v, i, order[i], now_ns, now);
      used.samples.push_back({l, static_cast<double>(d.used_bytes)});
      mem.samples.push_back({l, static_cast<double>(d.used_bytes)});
      limit.samples.push_back({l, static_cast<double>(d.limit_bytes)});
      util.samples.push_back({l, 100 * d.ratio});
      if (d.last_kernel_s) last.samples.push_back({l, *d.last_kernel_s});
      if (d.has_split) {
        ctx.samples.push_back({l, static_cast<double>(d.context_bytes)});
        mod.samples.push_back({l, static_cast<double>(d.module_bytes)});
        buf.samples.push_back({l, static_cast<double>(d.buffer_bytes)});
      }
    }
  }
  for (auto it = busy_.begin(); it != busy_.end();) {
    it = seen_keys.count(it->first) ? std::next(it) : busy_.erase(it);
  }
  std::vector<Family> out;
  for (Family* f : {&used, &limit, &mem, &util, &last}) out.push_back(std::move(*f));
  // The split families only when some container has a HAMi-core region: no empty families
  // (and no HELP lines) on a node of our own libvgpu.so.
  for (Family* f : {&ctx, &mod, &buf}) {
    if (!f->samples.empty()) out.push_back(std::move(*f));
  }
  return out;
}

std::vector<Family> Collector::Collect() {
  std::vector<ContainerView> views = Scan();
  std::vector<Family> out;
  Family build{"hami_build_info", "Build information of the HAMi component.", "gauge", {}};
  build.samples.push_back({{{"component", "vgpu-monitor"}, {"version", opts_.version}}, 1});
  out.push_back(std::move(build));
  std::vector<Family> hami = HostFamilies(views);
  for (auto& f : ContainerFamilies(views)) hami.push_back(std::move(f));
  hami.push_back(MigFamily(views));
  // HAMi registers its collector through a registerer that adds zone="vGPU" to every series.
  for (auto& f : hami) {
    if (!opts_.zone.empty()) {
      for (auto& smp : f.samples) smp.labels.emplace_back("zone", opts_.zone);
    }
    out.push_back(std::move(f));
  }

  Family corrupt{"hami_monitor_corrupt_accounting_files",
                 "Accounting or allocation files skipped as corrupt in the last scan.",
                 "gauge",
                 {}};
  Family corrupt_total{"hami_monitor_corrupt_accounting_files_total",
                       "Corrupt accounting or allocation files seen since start.",
                       "counter",
                       {}};
  {
    std::lock_guard lock(mu_);
    corrupt.samples.push_back({{}, static_cast<double>(corrupt_last_scan_)});
    corrupt_total.samples.push_back({{}, static_cast<double>(corrupt_total_)});
  }
  out.push_back(std::move(corrupt));
  out.push_back(std::move(corrupt_total));

  Family active{"hami_gpu_active_containers",
                "Containers that launched a kernel on the GPU within the active window.",
                "gauge",
                {}};
  for (const auto& [uuid, c] : Contention(views)) {
    active.samples.push_back({{{"device_uuid", uuid}}, static_cast<double>(c.active)});
  }
  out.push_back(std::move(active));
  if (opts_.legacy_metrics) AppendLegacyFamilies(out);
  return out;
}

}  // namespace hami::monitor
