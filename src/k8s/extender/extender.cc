#include "k8s/extender/extender.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "k8s/extender/quotas.h"
#include "sched/annotation.h"
#include "sched/node_codec.h"
#include "sched/quota_filter.h"

namespace hami::k8s {

namespace {

using Clock = std::chrono::steady_clock;

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

uint64_t ParseRv(const std::string& s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Capacity problems that freeing GPU slices could fix go to FailedNodes; the others (wrong
// node, type or mode) to FailedAndUnresolvableNodes so kube-scheduler does not preempt for them.
bool Resolvable(sched::Reason r) {
  switch (r) {
    case sched::Reason::kCardExclusive:
    case sched::Reason::kCardInUse:
    case sched::Reason::kNoFreeSlot:
    case sched::Reason::kInsufficientMemory:
    case sched::Reason::kInsufficientCores:
    case sched::Reason::kNuma:
      return true;
    default:
      return false;
  }
}

std::string NowSeconds() { return std::to_string(static_cast<long long>(std::time(nullptr))); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

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

// ---------------------------------------------------------------------------------------------
// Cluster events

void Extender::UpsertNode(const Json& node) {
  std::string name = MetaString(node, "name");
  if (name.empty()) return;
  std::string text = Annotation(node, sched::kNodeRegisterAnnotation);
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  if (text.empty()) {
    (void)state_.RemoveNode(name);
    return;
  }
  auto gpus = sched::DecodeNodeRegister(text);
  if (!gpus.ok()) {
    (void)state_.RemoveNode(name);
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
    return;
  }
  sched::NodeInfo info;
  info.name = name;
  auto filter = opts_.device_filters.find(name);
  for (auto& g : *gpus) {
    if (filter != opts_.device_filters.end()) {
      const auto& f = filter->second;
      if (std::find(f.uuids.begin(), f.uuids.end(), g.uuid) != f.uuids.end()) continue;
      if (std::find(f.indexes.begin(), f.indexes.end(), g.index) != f.indexes.end()) continue;
    }
    info.gpus.push_back(std::move(g));
  }
  if (!state_.UpsertNode(std::move(info)).ok()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
  }
}

void Extender::DeleteNode(const Json& node) {
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  (void)state_.RemoveNode(MetaString(node, "name"));
}

void Extender::UpsertPod(const Json& pod) {
  std::string uid = MetaString(pod, "uid");
  if (uid.empty()) return;
  std::string phase = Annotation(pod, kBindPhaseAnnotation);
  bool terminated = PodTerminated(pod);
  if (terminated || phase == "success" || phase == "failed") ReleaseTurn(uid);
  uint64_t rv = ParseRv(MetaString(pod, "resourceVersion"));
  std::string node = Annotation(pod, kVgpuNodeAnnotation);
  if (node.empty()) node = PodNodeName(pod);
  auto placement = PlacementFromPod(pod);
  if (!placement.ok()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_annotations++;
  }
  bool claim = false;
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    auto rec = pods_.find(uid);
    if (rec != pods_.end() && rv != 0 && rv < rec->second.min_rv) return;  // stale event
    if (auto f = failed_rv_.find(uid); f != failed_rv_.end()) {
      if (rv != 0 && rv < f->second) return;  // from the failed bind attempt
      failed_rv_.erase(f);
    }
    if (binding_.count(uid)) return;  // our bind decides until it finishes
    bool keep = placement.ok() && placement->has_value() && !node.empty() && !terminated &&
                !(phase == "failed" && PodNodeName(pod).empty());
    if (keep) {
      if (state_.AddPlacement(uid, node, **placement).ok()) {
        PodRecord& r = pods_[uid];
        r.ns = MetaString(pod, "namespace");
        CountQuota(uid, r.ns, **placement);
        r.name = MetaString(pod, "name");
        r.node = node;
        r.placement = **placement;
        claim = phase == "allocating";
      } else {
        std::lock_guard<std::mutex> c(counters_mu_);
        counters_.bad_annotations++;
      }
    } else if (rec != pods_.end() &&
               (terminated || phase == "failed" ||
                (placement.ok() && !placement->has_value() && !PodNodeName(pod).empty()))) {
      (void)state_.RemovePlacement(uid);
      UncountQuota(uid);
      pods_.erase(rec);
    }
  }
  if (claim) {
    // Restart: a pod still allocating holds its node's turn from its bind time.
    auto since = Clock::now();
    std::string bt = Annotation(pod, kBindTimeAnnotation);
    if (long long t = std::atoll(bt.c_str()); t > 0) {
      long long age = static_cast<long long>(std::time(nullptr)) - t;
      if (age > 0) since -= std::chrono::seconds(age);
    }
    ClaimTurnIfFree(node, uid, since);
  }
}

void Extender::DeletePod(const Json& pod) {
  std::string uid = MetaString(pod, "uid");
  if (uid.empty()) return;
  ReleaseTurn(uid);
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  failed_rv_.erase(uid);
  if (binding_.count(uid)) return;
  if (pods_.erase(uid)) (void)state_.RemovePlacement(uid);
  UncountQuota(uid);
}

// ---------------------------------------------------------------------------------------------
// Node turns (docs/bind-allocate.md)

Status Extender::AcquireTurn(const std::string& node, const std::string& uid) {
  std::unique_lock<std::mutex> lock(turn_mu_);
  NodeTurn& t = turns_[node];
  if (t.holder == uid) return Status::Ok();
  uint64_t ticket = next_ticket_++;
  t.waiters.push_back(ticket);
  auto deadline = Clock::now() + opts_.bind_wait_timeout;
  bool got = turn_cv_.wait_until(lock, deadline, [&] {
    NodeTurn& tt = turns_[node];
    return tt.holder.empty() && !tt.waiters.empty() && tt.waiters.front() == ticket;
  });
  NodeTurn& tt = turns_[node];
  if (!got) {
    tt.waiters.erase(std::find(tt.waiters.begin(), tt.waiters.end(), ticket));
    std::string holder = tt.holder;
    turn_cv_.notify_all();
    return Unavailable("node " + node + " is busy: pod " + holder +
                       " is still being allocated by the device plugin");
  }
  tt.waiters.pop_front();
  tt.holder = uid;
  tt.since = Clock::now();
  holding_[uid] = node;
  return Status::Ok();
}

void Extender::ReleaseTurn(const std::string& uid) {
  std::lock_guard<std::mutex> lock(turn_mu_);
  auto h = holding_.find(uid);
  if (h == holding_.end()) return;
  auto t = turns_.find(h->second);
  if (t != turns_.end() && t->second.holder == uid) t->second.holder.clear();
  holding_.erase(h);
  turn_cv_.notify_all();
}

void Extender::ClaimTurnIfFree(const std::string& node, const std::string& uid,
                               Clock::time_point since) {
  std::lock_guard<std::mutex> lock(turn_mu_);
  NodeTurn& t = turns_[node];
  if (!t.holder.empty() || holding_.count(uid)) return;
  t.holder = uid;
  t.since = since;
  holding_[uid] = node;
}

std::string Extender::TurnHolder(const std::string& node) const {
  std::lock_guard<std::mutex> lock(turn_mu_);
  auto t = turns_.find(node);
  return t == turns_.end() ? std::string() : t->second.holder;
}

void Extender::ReaperLoop() {
  std::unique_lock<std::mutex> lock(reaper_mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, opts_.reaper_interval, [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    std::vector<std::pair<std::string, std::string>> expired;  // uid, node
    {
      std::lock_guard<std::mutex> tl(turn_mu_);
      auto now = Clock::now();
      for (const auto& [node, t] : turns_) {
        if (!t.holder.empty() && now - t.since > opts_.allocate_timeout) {
          expired.emplace_back(t.holder, node);
        }
      }
    }
    for (const auto& [uid, node] : expired) {
      {
        // Counted before the pod is patched, so whoever sees the patch sees the count.
        std::lock_guard<std::mutex> c(counters_mu_);
        counters_.allocate_timeouts++;
      }
      std::string ns, name;
      {
        std::shared_lock<std::shared_mutex> sl(state_mu_);
        auto rec = pods_.find(uid);
        if (rec != pods_.end()) {
          ns = rec->second.ns;
          name = rec->second.name;
        }
      }
      if (!name.empty()) {
        FailAllocation(ns, name, uid,
                       "device plugin did not allocate within " +
                           std::to_string(opts_.allocate_timeout.count()) + " ms");
      }
      ReleaseTurn(uid);
    }
    lock.lock();
  }
}

// Marks the pod's allocation failed unless it already finished (success or gone).
void Extender::FailAllocation(const std::string& ns, const std::string& name,
                              const std::string& uid, const std::string& why) {
  auto r = PatchWithRetry(*client_, Resource::Pods(), ns, name, [&](const Json& cur) {
    if (MetaString(cur, "uid") != uid) return StatusOr<Json>(Json::object());
    if (Annotation(cur, kBindPhaseAnnotation) != "allocating") {
      return StatusOr<Json>(Json::object());
    }
    return StatusOr<Json>(
        Json{{"metadata", {{"annotations", {{kBindPhaseAnnotation, "failed"}}}}}});
  });
  if (r.ok()) Event(*r, "Warning", "AllocateTimeout", why);
}

void Extender::Event(const Json& pod, const std::string& type, const std::string& reason,
                     const std::string& message) {
  if (!opts_.record_events) return;
  (void)RecordEvent(*client_, pod, type, reason, message, opts_.component);
}

// ---------------------------------------------------------------------------------------------
// Verbs

StatusOr<Json> Extender::Filter(const Json& args) { return FilterOrPrioritize(args, false); }
StatusOr<Json> Extender::Prioritize(const Json& args) { return FilterOrPrioritize(args, true); }

StatusOr<Json> Extender::FilterOrPrioritize(const Json& args, bool prioritize) {
  auto start = Clock::now();
  auto bad = [&](const std::string& m) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_requests++;
    return InvalidArgument(m);
  };
  if (!args.is_object()) return bad("ExtenderArgs must be a JSON object");
  const Json* pod = FindField(args, "pod");
  if (!pod || !pod->is_object()) return bad("ExtenderArgs.pod is missing or not an object");
  const Json* nodes = FindField(args, "nodes");
  const Json* names = FindField(args, "nodenames");
  std::vector<std::string> candidates;
  std::vector<const Json*> node_objects;
  bool cache_capable = false;
  if (names && names->is_array()) {
    cache_capable = true;
    candidates.reserve(names->size());
    for (const auto& n : *names) {
      if (!n.is_string()) return bad("ExtenderArgs.nodenames must be a list of strings");
      candidates.push_back(n.get<std::string>());
    }
  } else if (nodes && nodes->is_object()) {
    const Json* items = FindField(*nodes, "items");
    if (items && !items->is_array() && !items->is_null()) {
      return bad("ExtenderArgs.nodes.items must be a list");
    }
    if (items && items->is_array()) {
      for (const auto& n : *items) {
        std::string name = MetaString(n, "name");
        if (name.empty()) return bad("ExtenderArgs.nodes.items: a node has no metadata.name");
        candidates.push_back(name);
        node_objects.push_back(&n);
      }
    }
  } else if ((names && !names->is_null()) || (nodes && !nodes->is_null())) {
    return bad("ExtenderArgs.nodes must be a NodeList and nodenames a list");
  }

  Json out;
  auto req = PodRequestFromJson(*pod, opts_.names, opts_.memory_factor);
  if (!req.ok()) {
    if (prioritize) return bad(req.status().message());
    out = {{"error", req.status().message()}};
  } else {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    std::string ns = MetaString(*pod, "namespace"), quota_reason;
    auto fr =
        sched::FilterUnderQuota(engine_, state_, *req, std::span<const std::string>(candidates),
                                {opts_.quotas ? &quotas_ : nullptr, ns}, &quota_reason);
    if (!fr.ok()) {
      if (prioritize) return bad(fr.status().message());
      out = {{"error", fr.status().message()}};
    } else if (prioritize) {
      out = Json::array();
      for (const auto& v : fr->nodes) {
        out.push_back({{"host", std::string(v.node)}, {"score", v.fits() ? v.extender_score : 0}});
      }
    } else {
      Json failed = Json::object(), unresolvable = Json::object();
      std::vector<std::size_t> fit;
      for (std::size_t i = 0; i < fr->nodes.size(); ++i) {
        const auto& v = fr->nodes[i];
        if (v.fits()) {
          fit.push_back(i);
        } else {
          std::string msg = "hami: " + (v.reason == sched::Reason::kQuota
                                            ? quota_reason
                                            : std::string(sched::ReasonText(v.reason)));
          (Resolvable(v.reason) ? failed : unresolvable)[std::string(v.node)] = msg;
        }
      }
      if (opts_.single_node_filter && fit.size() > 1) {
        auto best = *std::max_element(fit.begin(), fit.end(), [&](std::size_t a, std::size_t b) {
          const auto& va = fr->nodes[a];
          const auto& vb = fr->nodes[b];
          if (va.score != vb.score) return va.score < vb.score;
          return va.node > vb.node;  // ties: smallest name wins
        });
        for (std::size_t i : fit) {
          if (i != best) failed[std::string(fr->nodes[i].node)] = "hami: another node fits better";
        }
        fit = {best};
      }
      if (cache_capable) {
        Json list = Json::array();
        for (std::size_t i : fit) list.push_back(std::string(fr->nodes[i].node));
        out["nodenames"] = std::move(list);
      } else {
        Json items = Json::array();
        for (std::size_t i : fit) items.push_back(*node_objects[i]);
        out["nodes"] = {{"apiVersion", "v1"},
                        {"kind", "NodeList"},
                        {"metadata", Json::object()},
                        {"items", std::move(items)}};
      }
      out["failedNodes"] = std::move(failed);
      out["failedAndUnresolvableNodes"] = std::move(unresolvable);
      out["error"] = "";
    }
  }
  std::lock_guard<std::mutex> c(counters_mu_);
  (prioritize ? counters_.prioritize_calls : counters_.filter_calls)++;
  (prioritize ? counters_.prioritize_seconds : counters_.filter_seconds) +=
      Seconds(Clock::now() - start);
  return out;
}

StatusOr<Json> Extender::LookupPod(const std::string& ns, const std::string& name,
                                   const std::string& uid) {
  if (pod_reflector_) {
    if (auto cached = pod_reflector_->GetCached(ns + "/" + name);
        cached && (uid.empty() || MetaString(*cached, "uid") == uid)) {
      return *cached;
    }
  }
  auto pod = client_->Get(Resource::Pods(), ns, name);
  if (!pod.ok()) return pod.status();
  if (!uid.empty() && MetaString(*pod, "uid") != uid) {
    return NotFound("pod " + ns + "/" + name + " has uid " + MetaString(*pod, "uid") + ", not " +
                    uid);
  }
  return pod;
}

StatusOr<Json> Extender::Bind(const Json& args) {
  auto start = Clock::now();
  auto str = [&](const char* f) {
    const Json* v = FindField(args, f);
    return (v && v->is_string()) ? v->get<std::string>() : std::string();
  };
  if (!args.is_object()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_requests++;
    return InvalidArgument("ExtenderBindingArgs must be a JSON object");
  }
  std::string ns = str("podNamespace"), name = str("podName"), uid = str("podUID"),
              node = str("node");
  if (ns.empty() || name.empty() || node.empty()) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bad_requests++;
    return InvalidArgument("ExtenderBindingArgs needs podName, podNamespace and node");
  }
  auto finish = [&](const Status& s) {
    std::lock_guard<std::mutex> c(counters_mu_);
    counters_.bind_calls++;
    (s.ok() ? counters_.bind_ok : counters_.bind_failed)++;
    counters_.bind_seconds += Seconds(Clock::now() - start);
    return Json{{"error", s.ok() ? "" : s.message()}};
  };

  auto pod = LookupPod(ns, name, uid);
  if (!pod.ok()) return finish(pod.status());
  if (uid.empty()) uid = MetaString(*pod, "uid");
  auto req = PodRequestFromJson(*pod, opts_.names, opts_.memory_factor);
  if (!req.ok()) return finish(req.status());
  bool gpu = false;
  for (const auto* list : {&req->init_containers, &req->containers}) {
    for (const auto& c : *list) {
      gpu = gpu || c.gpu_count.value_or(0) > 0 || c.memory_mib || c.memory_percent || c.cores;
    }
  }
  if (!gpu) return finish(client_->Bind(ns, name, uid, node));

  // One pod per node between binding and Allocate (docs/bind-allocate.md).
  if (Status s = AcquireTurn(node, uid); !s.ok()) {
    {
      std::lock_guard<std::mutex> c(counters_mu_);
      counters_.bind_turn_timeouts++;
    }
    return finish(s);
  }
  std::string encoded;
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    if (pods_.count(uid)) (void)state_.RemovePlacement(uid);  // re-bind replaces
    UncountQuota(uid);
    auto placement = engine_.Place(state_, *req, node);
    Status s = placement.ok() ? Status::Ok() : placement.status();
    // The quota re-check under the same lock that records the usage: of two pods racing for
    // the last of a quota, the second sees the first.
    if (s.ok() && opts_.quotas) s = QuotasSynced();
    if (s.ok() && opts_.quotas) s = sched::CheckPlacementQuota({&quotas_, ns}, *placement);
    StatusOr<std::string> enc = s.ok() ? sched::EncodePlacement(*placement) : s;
    if (s.ok() && !enc.ok()) s = enc.status();
    if (s.ok()) s = state_.AddPlacement(uid, node, *placement);
    if (!s.ok()) {
      pods_.erase(uid);
      lock.unlock();
      ReleaseTurn(uid);
      return finish(
          Status(s.code(), "cannot place " + ns + "/" + name + " on " + node + ": " + s.message()));
    }
    encoded = *enc;
    CountQuota(uid, ns, *placement);
    PodRecord& r = pods_[uid];
    r.ns = ns;
    r.name = name;
    r.node = node;
    r.placement = *placement;
    binding_.insert(uid);
  }
  std::string now = NowSeconds();
  Json patch = {{"metadata",
                 {{"uid", uid},
                  {"labels", {{kVgpuNodeAnnotation, node}}},
                  {"annotations",
                   {{sched::kDevicesToAllocateAnnotation, encoded},
                    {sched::kDevicesAllocatedAnnotation, encoded},
                    {kVgpuNodeAnnotation, node},
                    {kVgpuTimeAnnotation, now},
                    {kBindTimeAnnotation, now},
                    {kBindPhaseAnnotation, "allocating"}}}}}};
  Status s;
  uint64_t written_rv = 0;
  auto patched = client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge, patch);
  if (!patched.ok()) {
    s = patched.status();
  } else {
    written_rv = ParseRv(MetaString(*patched, "resourceVersion"));
    s = client_->Bind(ns, name, uid, node);
    if (!s.ok()) {
      // The pod carries annotations for a node it is not bound to: mark them failed so neither
      // the device plugin nor a restarted scheduler counts them.
      auto f =
          client_->Patch(Resource::Pods(), ns, name, PatchType::kMerge,
                         {{"metadata", {{"annotations", {{kBindPhaseAnnotation, "failed"}}}}}});
      // Ignore this attempt's own `allocating` version in any case (+1 when the failed mark
      // could not be written).
      written_rv = f.ok() ? ParseRv(MetaString(*f, "resourceVersion")) : written_rv + 1;
    }
  }
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    binding_.erase(uid);
    if (!s.ok()) {
      (void)state_.RemovePlacement(uid);
      UncountQuota(uid);
      pods_.erase(uid);
      if (written_rv != 0) failed_rv_[uid] = written_rv;
    } else if (auto rec = pods_.find(uid); rec != pods_.end()) {
      rec->second.min_rv = written_rv;
    }
  }
  if (!s.ok()) {
    ReleaseTurn(uid);
    Event(*pod, "Warning", "FailedBinding", "hami: binding to " + node + " failed: " + s.message());
  }
  return finish(s);
}

// ---------------------------------------------------------------------------------------------
// Introspection and metrics

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

namespace {

// Prometheus label value escaping: backslash, double quote and newline.
std::string Esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, const char* name, const std::string& labels, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += buf;
  out += '\n';
}

}  // namespace

std::string Extender::Metrics() const {
  struct GpuRow {
    std::string labels;
    sched::GpuInfo info;
    sched::GpuUsage usage;
  };
  // Copy what is needed under the lock and format without it: a scrape of a big cluster must
  // not hold up binds and watch updates.
  std::vector<std::pair<std::string, std::vector<std::pair<sched::GpuInfo, sched::GpuUsage>>>>
      nodes;
  std::vector<std::pair<std::string, PodRecord>> pods;
  std::vector<sched::QuotaBook::Row> quota_rows;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    quota_rows = quotas_.Snapshot();
    for (const auto& node : state_.NodeNames()) {
      const sched::NodeInfo* info = state_.FindNode(node);
      if (!info) continue;
      auto& entry =
          nodes.emplace_back(node, std::vector<std::pair<sched::GpuInfo, sched::GpuUsage>>{});
      entry.second.reserve(info->gpus.size());
      for (const auto& g : info->gpus) {
        entry.second.emplace_back(g, state_.Usage(node, g.uuid).value_or(sched::GpuUsage{}));
      }
    }
    pods.reserve(pods_.size());
    for (const auto& [uid, rec] : pods_) pods.emplace_back(uid, rec);
  }
  std::string out;
  std::vector<GpuRow> rows;
  for (auto& [node, gpus] : nodes) {
    for (auto& [g, usage] : gpus) {
      GpuRow r;
      r.labels = "node=\"" + Esc(node) + "\",device_uuid=\"" + Esc(g.uuid) + "\",device_index=\"" +
                 std::to_string(g.index) + "\",device_type=\"" + Esc(g.type) + "\"";
      r.info = std::move(g);
      r.usage = usage;
      rows.push_back(std::move(r));
    }
  }
  constexpr double kMiB = 1024.0 * 1024.0;
  Header(out, "hami_gpu_memory_limit_bytes", "gauge", "Schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_memory_limit_bytes", r.labels, double(r.info.memory_mib) * kMiB);
  }
  Header(out, "hami_gpu_core_limit_ratio", "gauge", "Schedulable compute of a GPU (1 = card).");
  for (const auto& r : rows)
    Sample(out, "hami_gpu_core_limit_ratio", r.labels, r.info.cores / 100.0);
  Header(out, "hami_gpu_memory_allocated_bytes", "gauge", "Device memory allocated to pods.");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_memory_allocated_bytes", r.labels, double(r.usage.used_mem_mib) * kMiB);
  }
  Header(out, "hami_gpu_core_allocated_ratio", "gauge", "Compute allocated to pods (1 = card).");
  for (const auto& r : rows) {
    Sample(out, "hami_gpu_core_allocated_ratio", r.labels, r.usage.used_cores / 100.0);
  }
  Header(out, "hami_gpu_shared_count", "gauge", "Containers sharing a GPU.");
  for (const auto& r : rows) Sample(out, "hami_gpu_shared_count", r.labels, r.usage.used_slices);
  Header(out, "hami_node_gpu_overview", "gauge",
         "Per GPU of a node: allocated memory in bytes; labels carry limits and sharing.");
  for (const auto& r : rows) {
    std::string l = r.labels + ",device_memory_limit_bytes=\"" +
                    std::to_string(r.info.memory_mib * 1024 * 1024) + "\",device_cores=\"" +
                    std::to_string(r.info.cores) + "\",shared_containers=\"" +
                    std::to_string(r.usage.used_slices) + "\"";
    Sample(out, "hami_node_gpu_overview", l, double(r.usage.used_mem_mib) * kMiB);
  }
  Header(out, "hami_node_gpu_memory_allocated_ratio", "gauge",
         "Allocated over schedulable device memory of a GPU.");
  for (const auto& r : rows) {
    double ratio = r.info.memory_mib > 0 ? double(r.usage.used_mem_mib) / r.info.memory_mib : 0;
    Sample(out, "hami_node_gpu_memory_allocated_ratio", r.labels, ratio);
  }
  Header(out, "hami_vgpu_memory_allocated_bytes", "gauge",
         "Device memory allocated to one container on one GPU.");
  std::string cores_out;
  Header(cores_out, "hami_vgpu_core_allocated_ratio", "gauge",
         "Compute allocated to one container on one GPU (1 = card).");
  std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.ns, a.second.name, a.first) <
           std::tie(b.second.ns, b.second.name, b.first);
  });
  for (const auto& [uid, rec] : pods) {
    for (std::size_t ci = 0; ci < rec.placement.containers.size(); ++ci) {
      for (const auto& d : rec.placement.containers[ci]) {
        std::string l = "namespace=\"" + Esc(rec.ns) + "\",pod=\"" + Esc(rec.name) +
                        "\",container_index=\"" + std::to_string(ci) + "\",device_uuid=\"" +
                        Esc(d.uuid) + "\",node=\"" + Esc(rec.node) + "\"";
        Sample(out, "hami_vgpu_memory_allocated_bytes", l, double(d.used_mem_mib) * kMiB);
        Sample(cores_out, "hami_vgpu_core_allocated_ratio", l, d.used_cores / 100.0);
      }
    }
  }
  out += cores_out;
  ExtenderCounters c = counters();
  Header(out, "hami_build_info", "gauge", "Build information.");
  Sample(out, "hami_build_info", "component=\"scheduler\",version=\"0.1.0\"", 1);
  Header(out, "hami_scheduler_requests_total", "counter", "Extender calls by verb.");
  Sample(out, "hami_scheduler_requests_total", "verb=\"filter\"", double(c.filter_calls));
  Sample(out, "hami_scheduler_requests_total", "verb=\"prioritize\"", double(c.prioritize_calls));
  Sample(out, "hami_scheduler_requests_total", "verb=\"bind\"", double(c.bind_calls));
  Header(out, "hami_scheduler_request_seconds_total", "counter", "Time spent per verb.");
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"filter\"", c.filter_seconds);
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"prioritize\"", c.prioritize_seconds);
  Sample(out, "hami_scheduler_request_seconds_total", "verb=\"bind\"", c.bind_seconds);
  Header(out, "hami_scheduler_bind_total", "counter", "Bind outcomes.");
  Sample(out, "hami_scheduler_bind_total", "result=\"ok\"", double(c.bind_ok));
  Sample(out, "hami_scheduler_bind_total", "result=\"failed\"", double(c.bind_failed));
  Sample(out, "hami_scheduler_bind_total", "result=\"node_busy\"", double(c.bind_turn_timeouts));
  Header(out, "hami_scheduler_allocate_timeouts_total", "counter",
         "Pods marked failed because the device plugin did not allocate in time.");
  Sample(out, "hami_scheduler_allocate_timeouts_total", "", double(c.allocate_timeouts));
  Header(out, "hami_scheduler_bad_annotations_total", "counter",
         "Node or pod annotations that could not be decoded.");
  Sample(out, "hami_scheduler_bad_annotations_total", "", double(c.bad_annotations));
  Header(out, "hami_scheduler_bad_quotas_total", "counter",
         "ResourceQuota values that could not be read (enforced as 0).");
  Sample(out, "hami_scheduler_bad_quotas_total", "", double(c.bad_quotas));
  out += QuotaMetricsText(quota_rows, opts_.names);
  return out;
}

}  // namespace hami::k8s
