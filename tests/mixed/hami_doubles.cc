// HAMi's components as test doubles (hami_doubles.h).
#include "hami_doubles.h"

#include "common/time_format.h"

namespace hami::mixed {

using k8s::Annotation;
using k8s::MetaString;
using k8s::PatchType;
using k8s::Resource;
using namespace std::chrono_literals;

static std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

HamiLock ParseHamiLock(const std::string& value) {
  HamiLock l;
  auto parts = Split(value, ',');
  if (parts.size() != 1 && parts.size() != 3) return l;
  auto t = common::ParseRfc3339(parts[0]);
  if (!t.ok()) return l;
  l.ok = true;
  l.time = *t;
  if (parts.size() == 3) {
    l.ns = parts[1];
    l.name = parts[2];
  }
  return l;
}

Status HamiReleaseNodeLock(KubeClient& c, const std::string& node, const std::string& ns,
                           const std::string& name, bool skip_owner_check) {
  std::string suffix = "," + ns + "," + name;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto n = c.Get(Resource::Nodes(), "", node);
    if (!n.ok()) return n.status();
    std::string v = Annotation(*n, kLockKey);
    if (v.empty()) return Status::Ok();
    bool owner = v.size() >= suffix.size() &&
                 v.compare(v.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!skip_owner_check && !owner) return Status::Ok();
    auto p = c.Patch(Resource::Nodes(), "", node, PatchType::kMerge,
                     {{"metadata",
                       {{"resourceVersion", MetaString(*n, "resourceVersion")},
                        {"annotations", {{kLockKey, nullptr}}}}}});
    if (p.ok()) return Status::Ok();
    std::this_thread::sleep_for(2ms);
  }
  return Aborted("release of " + std::string(kLockKey) + " on " + node + " kept conflicting");
}

// ---- SimHamiPlugin ----

SimHamiPlugin::SimHamiPlugin(KubeClient* client) : client_(client) {}
SimHamiPlugin::~SimHamiPlugin() { Stop(); }

void SimHamiPlugin::Start() {
  pods_ = std::make_unique<k8s::Reflector>(client_, Resource::Pods(), k8s::ListOptions{},
                                           k8s::ReflectorHandlers{});
  pods_->set_backoff(10ms, 100ms);
  pods_->Start();
  thread_ = std::thread([this] { Loop(); });
}

void SimHamiPlugin::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (pods_) pods_->Stop();
}

std::vector<Served> SimHamiPlugin::served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

std::vector<std::string> SimHamiPlugin::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

void SimHamiPlugin::Loop() {
  while (!stop_) {
    bool any = false;
    for (const auto& pod : pods_->ListCached()) {
      std::string uid = MetaString(pod, "uid");
      if (done_.count(uid) || !pod.contains("spec")) continue;
      if (pod["spec"].value("nodeName", "").empty()) continue;
      done_.insert(uid);
      Admit(pod);
      any = true;
    }
    if (!any) std::this_thread::sleep_for(2ms);
  }
}

void SimHamiPlugin::Admit(const Json& pod) {
  std::string node = pod["spec"]["nodeName"];
  auto expected = k8s::testing::Segments(Annotation(pod, kAllocated));
  std::vector<bool> gpu;
  for (const char* which : {"initContainers", "containers"}) {
    if (!pod["spec"].contains(which)) continue;
    for (const auto& c : pod["spec"][which]) {
      gpu.push_back(c.contains("resources") && c["resources"].contains("limits") &&
                    c["resources"]["limits"].contains("nvidia.com/gpu"));
    }
  }
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    if (!gpu[i]) continue;
    auto r = Allocate(node);
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.ok()) {
      failures_++;
      errors_.push_back(k8s::ObjectKey(pod) + ": " + r.status().message());
      return;
    }
    served_.push_back({MetaString(pod, "uid"), r->first, r->second,
                       i < expected.size() ? expected[i] : std::string()});
  }
}

// GetPendingPod: the lock's pod (whatever its phase), else the pod list.
StatusOr<Json> SimHamiPlugin::PendingPod(const std::string& node) {
  auto n = client_->Get(Resource::Nodes(), "", node);
  if (!n.ok()) return n.status();
  std::string v = Annotation(*n, kLockKey);
  if (!v.empty()) {
    HamiLock l = ParseHamiLock(v);
    if (!l.ok) return InvalidArgument("malformed lock " + v);
    if (!l.name.empty() && !l.ns.empty()) return client_->Get(Resource::Pods(), l.ns, l.name);
  }
  lock_misses_++;
  k8s::ListOptions o;
  o.field_selector = "spec.nodeName=" + node;
  auto list = client_->List(Resource::Pods(), o);
  if (!list.ok()) return list.status();
  for (const auto& p : list->items) {
    if (Annotation(p, "hami.io/bind-time").empty()) continue;
    if (Annotation(p, "hami.io/bind-phase") != "allocating") continue;
    if (Annotation(p, "hami.io/vgpu-node") == node) return p;
  }
  return NotFound("no binding pod found on node " + node);
}

StatusOr<std::pair<std::string, std::string>> SimHamiPlugin::Allocate(const std::string& node) {
  auto pod = PendingPod(node);
  if (!pod.ok()) return pod.status();
  std::string ns = MetaString(*pod, "namespace"), name = MetaString(*pod, "name");
  auto segs = k8s::testing::Segments(Annotation(*pod, kToAllocate));
  std::string served;
  bool left = false;
  for (auto& s : segs) {
    if (served.empty() && !s.empty()) {
      served.swap(s);
    } else if (!s.empty()) {
      left = true;
    }
  }
  if (served.empty()) {
    // PodAllocationFailed.
    (void)client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                         {{"metadata", {{"annotations", {{"hami.io/bind-phase", "failed"}}}}}});
    (void)HamiReleaseNodeLock(*client_, node, ns, name, false);
    return FailedPrecondition("device request not found in " + ns + "/" + name);
  }
  std::string rest;
  for (const auto& s : segs) rest += s + ";";
  auto p = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                          {{"metadata", {{"annotations", {{kToAllocate, rest}}}}}});
  if (!p.ok()) return p.status();
  if (!left) {
    // PodAllocationTrySuccess: every request served.
    auto s = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                            {{"metadata", {{"annotations", {{"hami.io/bind-phase", "success"}}}}}});
    if (!s.ok()) return s.status();
    if (Status r = HamiReleaseNodeLock(*client_, node, ns, name, false); !r.ok()) return r;
  }
  return std::make_pair(MetaString(*pod, "uid"), served);
}

// ---- SimHamiScheduler ----

Status SimHamiScheduler::LockNode(const std::string& node, const std::string& ns,
                                  const std::string& name) {
  std::mutex* per_node = nullptr;
  {
    std::lock_guard<std::mutex> l(nodes_mu_);
    auto& m = node_mu_[node];
    if (!m) m = std::make_unique<std::mutex>();
    per_node = m.get();
  }
  std::lock_guard<std::mutex> serial(*per_node);
  auto n = client_->Get(Resource::Nodes(), "", node);
  if (!n.ok()) return n.status();
  std::string v = Annotation(*n, kLockKey);
  if (!v.empty()) {
    HamiLock l = ParseHamiLock(v);
    if (!l.ok) return InvalidArgument("malformed lock annotation " + v);
    bool skip = std::chrono::system_clock::now() - l.time > expire_;
    if (!skip && !l.ns.empty() && !l.name.empty() && (l.ns != ns || l.name != name)) {
      auto holder = client_->Get(Resource::Pods(), l.ns, l.name);
      if (!holder.ok() && holder.status().code() != StatusCode::kNotFound) {
        return holder.status();
      }
      skip = !holder.ok();  // dangling
    }
    if (!skip) {
      refusals_++;
      return Unavailable("node " + node + " has been locked within the expiry");
    }
    broken_++;
    if (Status s = HamiReleaseNodeLock(*client_, node, ns, name, true); !s.ok()) return s;
  }
  // SetNodeLock: refuse when locked meanwhile, then a version-conditional patch.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = client_->Get(Resource::Nodes(), "", node);
    if (!cur.ok()) return cur.status();
    if (!Annotation(*cur, kLockKey).empty()) {
      refusals_++;
      return Unavailable("node " + node + " is locked");
    }
    std::string value = common::NowRfc3339() + "," + ns + "," + name;
    auto p = client_->Patch(Resource::Nodes(), "", node, PatchType::kMerge,
                            {{"metadata",
                              {{"resourceVersion", MetaString(*cur, "resourceVersion")},
                               {"annotations", {{kLockKey, value}}}}}});
    if (p.ok()) return Status::Ok();
  }
  return Aborted("failed to set node lock on " + node);
}

Status SimHamiScheduler::Bind(const Json& pod, const std::string& node,
                              const std::string& devices) {
  std::string ns = MetaString(pod, "namespace"), name = MetaString(pod, "name");
  if (Status s = LockNode(node, ns, name); !s.ok()) return s;
  std::string now = std::to_string(std::time(nullptr));
  auto p = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                          {{"metadata",
                            {{"annotations",
                              {{kToAllocate, devices},
                               {kAllocated, devices},
                               {"hami.io/vgpu-node", node},
                               {"hami.io/vgpu-time", now},
                               {"hami.io/bind-time", now},
                               {"hami.io/bind-phase", "allocating"}}}}}});
  Status s = p.ok() ? client_->Bind(ns, name, MetaString(pod, "uid"), node) : p.status();
  if (!s.ok()) (void)HamiReleaseNodeLock(*client_, node, ns, name, false);
  return s;
}

}  // namespace hami::mixed
