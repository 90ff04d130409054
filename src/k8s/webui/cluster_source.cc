#include "k8s/webui/cluster_source.h"

#include <cmath>
#include <ctime>

#include "k8s/extender/quotas.h"
#include "sched/node_codec.h"
#include "sched/quota_filter.h"

namespace hami::k8s {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// metadata.creationTimestamp "2026-12-06T02:00:00Z" -> unix seconds; 0 when absent or odd.
int64_t CreatedUnix(const Json& obj) {
  std::string ts = MetaString(obj, "creationTimestamp");
  std::tm tm{};
  if (ts.size() < 19 || strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string InternalIp(const Json& node) {
  const Json* addrs = nullptr;
  if (node.contains("status") && node["status"].is_object() &&
      node["status"].contains("addresses") && node["status"]["addresses"].is_array()) {
    addrs = &node["status"]["addresses"];
  }
  if (addrs == nullptr) return "";
  for (const auto& a : *addrs) {
    if (a.is_object() && a.value("type", "") == "InternalIP" && a.contains("address") &&
        a["address"].is_string()) {
      return a["address"].get<std::string>();
    }
  }
  return "";
}

std::string SchedulerName(const Json& pod) {
  if (!pod.contains("spec") || !pod["spec"].is_object()) return "";
  const Json& s = pod["spec"];
  return s.contains("schedulerName") && s["schedulerName"].is_string()
             ? s["schedulerName"].get<std::string>()
             : "";
}

// What a pending pod asks for, summed for display: GPUs of its largest container, memory and
// cores per GPU of that container.
void Summarise(const sched::PodRequest& r, webui::PendingRow& p) {
  for (const auto& c : r.containers) {
    const int32_t n = c.gpu_count.value_or(c.memory_mib || c.cores ? 1 : 0);
    if (n < p.gpus && p.memory_mib > 0) continue;
    p.gpus = n;
    p.memory_mib = c.memory_mib.value_or(0);
    p.memory_percent = c.memory_percent.value_or(0);
    p.cores = c.cores.value_or(0);
  }
}

}  // namespace

ClusterWebUiSource::ClusterWebUiSource(ClusterSourceOptions options, KubeClient* client)
    : opts_(std::move(options)), client_(client), engine_(opts_.sched) {}

ClusterWebUiSource::~ClusterWebUiSource() { Stop(); }

void ClusterWebUiSource::Start() {
  ReflectorHandlers nh;
  nh.on_add = [this](const Json& n) { UpsertNode(n); };
  nh.on_update = [this](const Json&, const Json& n) { UpsertNode(n); };
  nh.on_delete = [this](const Json& n) { DeleteNode(n); };
  nodes_ = std::make_unique<Reflector>(client_, Resource::Nodes(), ListOptions{}, nh);
  ReflectorHandlers ph;
  ph.on_add = [this](const Json& p) { UpsertPod(p); };
  ph.on_update = [this](const Json&, const Json& p) { UpsertPod(p); };
  ph.on_delete = [this](const Json& p) { DeletePod(p); };
  pods_ = std::make_unique<Reflector>(client_, Resource::Pods(), ListOptions{}, ph);
  if (opts_.quotas) {
    ReflectorHandlers qh;
    qh.on_add = [this](const Json& q) { UpsertQuota(q); };
    qh.on_update = [this](const Json&, const Json& q) { UpsertQuota(q); };
    qh.on_delete = [this](const Json& q) { DeleteQuota(q); };
    quota_objects_ =
        std::make_unique<Reflector>(client_, Resource::ResourceQuotas(), ListOptions{}, qh);
    quota_objects_->Start();
  }
  nodes_->Start();
  pods_->Start();
  {
    std::lock_guard<std::mutex> lock(scrape_mu_);
    stop_ = false;
  }
  if (opts_.monitor_port > 0 || !opts_.monitor_urls.empty()) {
    scraper_ = std::thread([this] { ScrapeLoop(); });
  }
}

void ClusterWebUiSource::Stop() {
  {
    std::lock_guard<std::mutex> lock(scrape_mu_);
    stop_ = true;
  }
  scrape_cv_.notify_all();
  if (scraper_.joinable()) scraper_.join();
  if (nodes_) nodes_->Stop();
  if (pods_) pods_->Stop();
  if (quota_objects_) quota_objects_->Stop();
}

bool ClusterWebUiSource::WaitReady(std::chrono::milliseconds timeout) {
  return nodes_ && pods_ && nodes_->WaitForSync(timeout) && pods_->WaitForSync(timeout) &&
         (!quota_objects_ || quota_objects_->WaitForSync(timeout));
}

void ClusterWebUiSource::UpsertQuota(const Json& quota) {
  if (!opts_.quotas) return;  // not enforced: nothing to show or to wait for
  // Fail closed as the extender does: an unreadable value shows (and is enforced) as 0.
  sched::QuotaLimits limits = QuotaLimitsOrClosed(quota, opts_.names, opts_.memory_factor, nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  quotas_.SetLimits(QuotaNamespace(quota), QuotaName(quota), limits);
  for (auto& [uid, p] : pending_) p.reason_at = {};  // reasons may change now
}

void ClusterWebUiSource::DeleteQuota(const Json& quota) {
  std::lock_guard<std::mutex> lock(mu_);
  quotas_.RemoveLimits(QuotaNamespace(quota), QuotaName(quota));
  for (auto& [uid, p] : pending_) p.reason_at = {};
}

void ClusterWebUiSource::UpsertNode(const Json& node) {
  const std::string name = MetaString(node, "name");
  if (name.empty()) return;
  const std::string text = Annotation(node, sched::kNodeRegisterAnnotation);
  auto gpus = text.empty() ? StatusOr<std::vector<sched::GpuInfo>>(NotFound(""))
                           : sched::DecodeNodeRegister(text);
  std::lock_guard<std::mutex> lock(mu_);
  if (!gpus.ok()) {  // not a GPU node (or a broken annotation, which the extender counts)
    (void)state_.RemoveNode(name);
    node_address_.erase(name);
    return;
  }
  sched::NodeInfo info;
  info.name = name;
  info.gpus = std::move(*gpus);
  if (state_.UpsertNode(std::move(info)).ok()) node_address_[name] = InternalIp(node);
}

void ClusterWebUiSource::DeleteNode(const Json& node) {
  const std::string name = MetaString(node, "name");
  std::lock_guard<std::mutex> lock(mu_);
  (void)state_.RemoveNode(name);
  node_address_.erase(name);
}

void ClusterWebUiSource::UpsertPod(const Json& pod) {
  const std::string uid = MetaString(pod, "uid");
  if (uid.empty()) return;
  if (auto eq = opts_.monitor_pod_label.find('=');
      eq != std::string::npos &&
      Label(pod, opts_.monitor_pod_label.substr(0, eq)) == opts_.monitor_pod_label.substr(eq + 1)) {
    std::string ip;
    if (PodPhase(pod) == "Running" && pod.contains("status") && pod["status"].is_object() &&
        pod["status"].contains("podIP") && pod["status"]["podIP"].is_string()) {
      ip = pod["status"]["podIP"].get<std::string>();
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (ip.empty())
      monitor_pods_.erase(uid);
    else
      monitor_pods_[uid] = ip;
    return;
  }
  const std::string phase = PodPhase(pod);
  const std::string bind_phase = Annotation(pod, kBindPhaseAnnotation);
  std::string node = Annotation(pod, kVgpuNodeAnnotation);
  if (node.empty()) node = PodNodeName(pod);
  auto placement = PlacementFromPod(pod);
  const bool placed = placement.ok() && placement->has_value() && !node.empty() &&
                      !PodTerminated(pod) && !(bind_phase == "failed" && PodNodeName(pod).empty());
  const bool waiting = !placed && !PodTerminated(pod) && PodNodeName(pod).empty() &&
                       SchedulerName(pod) == opts_.scheduler_name &&
                       UsesManagedResources(pod, opts_.names);
  std::optional<sched::PodRequest> request;
  if (waiting) {
    auto r = PodRequestFromJson(pod, opts_.names, opts_.memory_factor);
    if (r.ok()) request = std::move(*r);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (placed) {
    if (state_.AddPlacement(uid, node, **placement).ok()) {
      quotas_.AddUsage(uid, MetaString(pod, "namespace"), sched::PlacementQuotaUsage(**placement));
      placed_[uid] = PlacedPod{MetaString(pod, "namespace"),
                               MetaString(pod, "name"),
                               node,
                               phase,
                               CreatedUnix(pod),
                               **placement};
    }
  } else if (placed_.erase(uid)) {
    (void)state_.RemovePlacement(uid);
    quotas_.RemoveUsage(uid);
  }
  if (waiting) {
    PendingPod& p = pending_[uid];
    p.ns = MetaString(pod, "namespace");
    p.name = MetaString(pod, "name");
    p.created_unix = CreatedUnix(pod);
    p.valid = request.has_value();
    if (request) {
      p.request = std::move(*request);
      p.reason.clear();
    } else {
      p.reason = "invalid GPU request (see the webhook's or scheduler's message)";
    }
    p.reason_at = {};
  } else {
    pending_.erase(uid);
  }
}

void ClusterWebUiSource::DeletePod(const Json& pod) {
  const std::string uid = MetaString(pod, "uid");
  std::lock_guard<std::mutex> lock(mu_);
  if (placed_.erase(uid)) (void)state_.RemovePlacement(uid);
  quotas_.RemoveUsage(uid);
  pending_.erase(uid);
  monitor_pods_.erase(uid);
}

void ClusterWebUiSource::SetUsage(webui::MonitorUsage usage) {
  std::lock_guard<std::mutex> lock(mu_);
  usage_ = std::move(usage);
}

std::vector<std::string> ClusterWebUiSource::MonitorUrls() const {
  std::vector<std::string> urls = opts_.monitor_urls;
  if (opts_.monitor_port > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& ips = opts_.monitor_pod_label.empty() ? node_address_ : monitor_pods_;
    for (const auto& [key, ip] : ips) {
      if (ip.empty()) continue;
      const bool v6 = ip.find(':') != std::string::npos;
      urls.push_back("http://" + (v6 ? "[" + ip + "]" : ip) + ":" +
                     std::to_string(opts_.monitor_port) + "/metrics");
    }
  }
  return urls;
}

void ClusterWebUiSource::ScrapeLoop() {
  std::unique_lock<std::mutex> lk(scrape_mu_);
  while (!stop_) {
    lk.unlock();
    SetUsage(webui::ScrapeMonitors(MonitorUrls(), opts_.scrape));
    lk.lock();
    scrape_cv_.wait_for(lk, opts_.scrape_interval, [this] { return stop_; });
  }
}

// Called with mu_ held. Reasons are the engine's filter summary over every node
// ("0/5000 nodes fit: 4990 insufficient GPU memory, 10 no GPU of type A100").
void ClusterWebUiSource::FillPending(webui::Snapshot& snap) {
  const auto now = std::chrono::steady_clock::now();
  size_t budget = opts_.reasons_per_collect;
  for (auto& [uid, p] : pending_) {
    {
      if (p.valid && budget > 0 && (p.reason.empty() || now - p.reason_at > opts_.reason_ttl)) {
        --budget;
        p.request.uid = uid;
        // Under the namespace's quota, as the extender filters: a pod that fits some node but
        // not its quota waits for the quota, and the reason names it.
        std::string quota_reason;
        auto fr = sched::FilterUnderQuota(engine_, state_, p.request, std::nullopt,
                                          {opts_.quotas ? &quotas_ : nullptr, p.ns}, &quota_reason);
        p.quota = fr.ok() && fr->summary.fitting == 0 && !quota_reason.empty();
        if (p.quota) {
          // The extender refuses a pod over its quota before looking at the cards; a pod that
          // fits no node even without it waits for GPUs (freeing quota would not help), and
          // the engine's reason says why.
          auto plain = engine_.Filter(state_, p.request);
          if (plain.ok() && plain->summary.fitting == 0) fr = std::move(plain), p.quota = false;
        }
        p.reason = !fr.ok()                  ? fr.status().message()
                   : p.quota                 ? quota_reason
                   : fr->summary.fitting > 0 ? "fits " + std::to_string(fr->summary.fitting) +
                                                   " node(s) now; waiting for kube-scheduler"
                                             : fr->summary.message;
        p.reason_at = now;
      }
    }
    webui::PendingRow r;
    r.id = uid;
    r.kind = "pod";
    r.ns = p.ns;
    r.name = p.name;
    r.since_unix = p.created_unix;
    r.reason = p.reason.empty() ? "not evaluated yet" : p.reason;
    r.quota = p.quota;
    Summarise(p.request, r);
    snap.pending.push_back(std::move(r));
  }
}

webui::Snapshot ClusterWebUiSource::Collect() {
  webui::Snapshot snap;
  snap.mode = "cluster";
  snap.source = "scheduler cluster state";
  snap.taken_unix_ms = NowUnixMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto usage = state_.UsageSnapshot();
  snap.gpus.reserve(state_.node_count() * 8);
  for (const auto& [name, per_gpu] : usage) {
    const sched::NodeInfo* n = state_.FindNode(name);
    if (n == nullptr) continue;
    for (size_t i = 0; i < n->gpus.size() && i < per_gpu.size(); ++i) {
      const sched::GpuInfo& g = n->gpus[i];
      webui::GpuRow r;
      r.node = name;
      r.uuid = g.uuid;
      r.index = g.index;
      r.type = g.type;
      r.healthy = g.healthy;
      r.memory_mib = g.memory_mib;
      r.split_count = g.split_count;
      r.allocated_mib = per_gpu[i].used_mem_mib;
      r.allocated_cores = g.cores > 0 ? per_gpu[i].used_cores * 100 / g.cores : 0;
      r.slices = per_gpu[i].used_slices;
      r.exclusive = per_gpu[i].exclusive > 0;
      if (auto u = usage_.gpus.find(g.uuid); u != usage_.gpus.end()) {
        if (u->second.used_bytes >= 0) r.used_mib = u->second.used_bytes >> 20;
        r.util = u->second.util;
      }
      snap.gpus.push_back(std::move(r));
    }
  }
  for (const auto& [uid, p] : placed_) {
    webui::WorkloadRow w;
    w.id = uid;
    w.kind = "pod";
    w.ns = p.ns;
    w.name = p.name;
    w.node = p.node;
    w.state = p.phase == "Running" ? "running" : p.phase == "Succeeded" ? "exited" : "allocated";
    w.created_unix = p.created_unix;
    // One slice per card the pod holds (containers on the same card added up).
    for (const auto& c : p.placement.containers) {
      for (const auto& d : c) {
        auto it = std::find_if(w.slices.begin(), w.slices.end(),
                               [&](const webui::SliceRow& s) { return s.uuid == d.uuid; });
        if (it == w.slices.end()) {
          webui::SliceRow s;
          s.uuid = d.uuid;
          s.node = p.node;
          if (auto u = usage_.pods.find({p.ns + "/" + p.name, d.uuid}); u != usage_.pods.end()) {
            if (u->second.used_bytes >= 0) s.used_mib = u->second.used_bytes >> 20;
            s.util = u->second.util;
          }
          w.slices.push_back(s);
          it = w.slices.end() - 1;
        }
        it->limit_mib += d.used_mem_mib;
        it->cores += d.used_cores;
      }
    }
    snap.workloads.push_back(std::move(w));
  }
  FillPending(snap);
  FillQuotas(snap);
  return snap;
}

// Called with mu_ held. QuotaBook rows (one per bounded dimension, by namespace) as one row
// per namespace, memory in the MiB the ResourceQuota gives (the book counts MiB x
// memoryFactor, as placements do).
void ClusterWebUiSource::FillQuotas(webui::Snapshot& snap) const {
  snap.quotas_enforced = opts_.quotas;
  snap.quota_names.memory = QuotaKey(opts_.names, sched::QuotaDim::kMemory);
  snap.quota_names.cores = QuotaKey(opts_.names, sched::QuotaDim::kCores);
  snap.quota_names.gpus = QuotaKey(opts_.names, sched::QuotaDim::kCards);
  const double factor = opts_.memory_factor > 0 ? opts_.memory_factor : 1;
  for (const auto& r : quotas_.Snapshot()) {
    if (snap.quotas.empty() || snap.quotas.back().owner != r.owner) {
      webui::QuotaRow q;
      q.kind = "namespace";
      q.owner = r.owner;
      q.ns = r.owner;
      snap.quotas.push_back(std::move(q));
    }
    webui::QuotaRow& q = snap.quotas.back();
    if (r.dim == sched::QuotaDim::kMemory) {
      q.memory_mib = {static_cast<int64_t>(std::llround(static_cast<double>(r.used) / factor)),
                      static_cast<int64_t>(std::llround(static_cast<double>(r.limit) / factor))};
    } else {
      (r.dim == sched::QuotaDim::kCores ? q.cores : q.gpus) = {r.used, r.limit};
    }
  }
}

}  // namespace hami::k8s
