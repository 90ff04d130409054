// Extender (extender.h): construction, start and stop, introspection. The verbs, the cluster
// events, the node turns and the metrics each have their own file (extender_*.cc).
#include "k8s/extender/extender.h"

#include <algorithm>
#include <cctype>

#include "k8s/extender/extender_internal.h"

namespace hami::k8s {

namespace {

using extender_internal::Clock;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

const Json* FindField(const Json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto exact = obj.find(std::string(name));
  if (exact != obj.end()) return &*exact;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), name)) return &it.value();
  }
  return nullptr;
}

Extender::Extender(ExtenderOptions options, KubeClient* client)
    : opts_(std::move(options)), client_(client), engine_(opts_.sched) {}

Extender::~Extender() { Stop(); }

void Extender::Start() {
  ReflectorHandlers nh;
  nh.on_add = [this](const Json& n) { UpsertNode(n); };
  nh.on_update = [this](const Json&, const Json& n) { UpsertNode(n); };
  nh.on_delete = [this](const Json& n) { DeleteNode(n); };
  node_reflector_ = std::make_unique<Reflector>(client_, Resource::Nodes(), ListOptions{}, nh);
  ReflectorHandlers ph;
  ph.on_add = [this](const Json& p) { UpsertPod(p); };
  ph.on_update = [this](const Json&, const Json& p) { UpsertPod(p); };
  ph.on_delete = [this](const Json& p) { DeletePod(p); };
  pod_reflector_ = std::make_unique<Reflector>(client_, Resource::Pods(), ListOptions{}, ph);
  if (opts_.quotas) {
    ReflectorHandlers qh;
    qh.on_add = [this](const Json& q) { UpsertQuota(q); };
    qh.on_update = [this](const Json&, const Json& q) { UpsertQuota(q); };
    qh.on_delete = [this](const Json& q) { DeleteQuota(q); };
    quota_reflector_ =
        std::make_unique<Reflector>(client_, Resource::ResourceQuotas(), ListOptions{}, qh);
    quota_reflector_->Start();
  }
  node_reflector_->Start();
  pod_reflector_->Start();
  {
    std::lock_guard<std::mutex> lock(reaper_mu_);
    stopping_ = false;
  }
  reaper_ = std::thread([this] { ReaperLoop(); });
}

void Extender::Stop() {
  {
    std::lock_guard<std::mutex> lock(reaper_mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  ReleaseQueuedHamiLocks();  // what the reaper had not got to yet
  if (node_reflector_) node_reflector_->Stop();
  if (pod_reflector_) pod_reflector_->Stop();
  if (quota_reflector_) quota_reflector_->Stop();
  turn_cv_.notify_all();
}

bool Extender::Ready() const {
  return node_reflector_ && pod_reflector_ && node_reflector_->synced() &&
         pod_reflector_->synced() && (!quota_reflector_ || quota_reflector_->synced());
}

bool Extender::WaitReady(std::chrono::milliseconds timeout) const {
  if (!node_reflector_ || !pod_reflector_) return false;
  auto deadline = Clock::now() + timeout;
  if (!node_reflector_->WaitForSync(timeout)) return false;
  auto left = [&] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                    std::chrono::milliseconds(1));
  };
  if (!pod_reflector_->WaitForSync(left())) return false;
  return !quota_reflector_ || quota_reflector_->WaitForSync(left());
}

void Extender::Event(const Json& pod, const std::string& type, const std::string& reason,
                     const std::string& message) {
  if (!opts_.record_events) return;
  (void)RecordEvent(*client_, pod, type, reason, message, opts_.component);
}

std::map<std::string, std::vector<sched::GpuUsage>> Extender::UsageSnapshot() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return state_.UsageSnapshot();
}

std::size_t Extender::node_count() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return state_.node_count();
}

std::size_t Extender::placement_count() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return state_.placement_count();
}

ExtenderCounters Extender::counters() const {
  std::lock_guard<std::mutex> c(counters_mu_);
  return counters_;
}

}  // namespace hami::k8s
