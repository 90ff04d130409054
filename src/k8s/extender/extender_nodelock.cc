// Extender (extender.h): HAMi's node lock `hami.io/mutex.lock` at Bind, for nodes whose device
// plugin is HAMi's (docs/bind-allocate.md, "Next to HAMi's device plugin"). HAMi's plugin finds
// the pod to serve by the lock's <ns>,<pod>, so the lock is written before the pod is bound and
// names exactly the pod this Bind is for. The node turn still serialises this scheduler's own
// binds; the lock only has to wait for foreign holders (a HAMi scheduler, a previous life of
// this one) and is broken when stale, as HAMi's LockNode does.
#include <algorithm>
#include <thread>

#include "common/log.h"
#include "common/time_format.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/extender_internal.h"
#include "sched/node_lock.h"

namespace hami::k8s {

using extender_internal::Clock;
using sched::kNodeLockAnnotation;

namespace {
constexpr char kHandshakeAnnotation[] = "hami.io/node-handshake";

// A handshake of our plugin this recent (either way: clocks differ) says it serves the node.
bool HandshakeFresh(std::chrono::system_clock::time_point t,
                    std::chrono::system_clock::time_point now) {
  return now - t <= kOurHandshakeFresh && t - now <= kOurHandshakeFresh;
}
}  // namespace

StatusOr<NodeLockMode> ParseNodeLockMode(const std::string& text) {
  if (text == "auto") return NodeLockMode::kAuto;
  if (text == "hami") return NodeLockMode::kHami;
  if (text == "off") return NodeLockMode::kOff;
  return InvalidArgument("--node-lock: must be auto, hami or off, got \"" + text + "\"");
}

std::optional<std::chrono::system_clock::time_point> OurPluginHandshake(const Json& node) {
  // This project's plugin: "Reported_" + "YYYY-MM-DD HH:MM:SS" in UTC (plugin_server.cc).
  // HAMi's: "Reported " + Go's time.String(). Anything else (no plugin yet, HAMi's scheduler's
  // "Requesting_...", "Deleted_...") is not ours: taking the lock is safe with either plugin.
  std::string h = Annotation(node, kHandshakeAnnotation);
  constexpr std::string_view kPrefix = "Reported_";
  if (h.size() != kPrefix.size() + 19 || h.compare(0, kPrefix.size(), kPrefix) != 0) {
    return std::nullopt;
  }
  std::string t = h.substr(kPrefix.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    char want = i == 4 || i == 7 ? '-' : i == 10 ? ' ' : i == 13 || i == 16 ? ':' : '0';
    if (want == '0' ? (t[i] < '0' || t[i] > '9') : t[i] != want) return std::nullopt;
  }
  auto parsed = common::ParseRfc3339(t + "Z");
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

bool NodeRunsOurDevicePlugin(const Json& node, std::chrono::system_clock::time_point now) {
  auto t = OurPluginHandshake(node);
  return t && HandshakeFresh(*t, now);
}

bool Extender::WantsHamiLock(const std::string& node) {
  if (opts_.node_lock == NodeLockMode::kOff) return false;
  if (opts_.node_lock == NodeLockMode::kHami) return true;
  std::lock_guard<std::mutex> l(lock_mu_);
  auto it = node_ours_.find(node);
  if (it == node_ours_.end() || !it->second) return true;
  return !HandshakeFresh(*it->second, std::chrono::system_clock::now());
}

// Whether a lock found on the node may be replaced, and why (for the log). HAMi's LockNode
// breaks a lock that expired or whose pod is gone; a lock of this pod's own earlier bind, a
// holder that has finished (bind-phase success/failed, terminated) and a lock that is no lock
// at all (HAMi refuses such a node forever) are replaced as well.
bool Extender::HamiLockBreakable(const std::string& value, const std::string& ns,
                                 const std::string& name, std::string* why) {
  auto lock = sched::ParseNodeLock(value);
  if (!lock.ok()) {
    auto t = sched::ParseNodeLockTime(value);
    if (!t.ok()) {
      *why = "malformed (" + t.status().message() + ")";
      return true;
    }
    lock = sched::NodeLock{*t, "", ""};  // an owner HAMi cannot name either: wait for expiry
  }
  if (!lock->pod.empty() && lock->ns == ns && lock->pod == name) {
    *why = "taken by this pod's earlier bind";
    return true;
  }
  if (sched::NodeLockExpired(*lock, std::chrono::system_clock::now(), opts_.node_lock_expire)) {
    *why = "expired (older than " + std::to_string(opts_.node_lock_expire.count()) + " ms)";
    return true;
  }
  if (lock->pod.empty()) return false;
  auto holder = client_->Get(Resource::Pods(), lock->ns, lock->pod);
  if (!holder.ok()) {
    if (holder.status().code() != StatusCode::kNotFound) return false;  // cannot tell: wait
    *why = "its pod " + lock->ns + "/" + lock->pod + " is gone";
    return true;
  }
  std::string phase = Annotation(*holder, kBindPhaseAnnotation);
  if (PodTerminated(*holder) || phase == "success" || phase == "failed") {
    *why = "its pod " + lock->ns + "/" + lock->pod + " has finished allocating";
    return true;
  }
  return false;
}

StatusOr<std::string> Extender::TakeHamiLock(const std::string& node, const std::string& ns,
                                             const std::string& name, Clock::time_point deadline) {
  using namespace std::chrono_literals;
  auto pause = 5ms;
  for (;;) {
    auto n = client_->Get(Resource::Nodes(), "", node);
    if (!n.ok()) {
      return Status(n.status().code(), std::string("taking ") + kNodeLockAnnotation + " on " +
                                           node + ": " + n.status().message());
    }
    std::string seen = Annotation(*n, kNodeLockAnnotation), why;
    if (seen.empty() || HamiLockBreakable(seen, ns, name, &why)) {
      std::string value = sched::FormatNodeLock({std::chrono::system_clock::now(), ns, name});
      // Conditional on the version read, as HAMi's SetNodeLock: of two writers one wins.
      Json patch = {{"metadata",
                     {{"resourceVersion", MetaString(*n, "resourceVersion")},
                      {"annotations", {{kNodeLockAnnotation, value}}}}}};
      auto p = client_->Patch(Resource::Nodes(), "", node, PatchType::kMerge, patch);
      if (p.ok()) {
        if (!why.empty()) {
          log::Info("{} on {}: replaced \"{}\": {}", kNodeLockAnnotation, node, seen, why);
        }
        std::lock_guard<std::mutex> c(counters_mu_);
        counters_.node_locks_taken++;
        if (!why.empty()) counters_.node_locks_broken++;
        return value;
      }
      if (p.status().code() != StatusCode::kAborted) return p.status();
      if (Clock::now() < deadline) continue;  // the node changed under us: read it again
    } else if (Clock::now() + pause < deadline) {
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::milliseconds>(pause * 2, 200ms);
      continue;
    }
    {
      std::lock_guard<std::mutex> c(counters_mu_);
      counters_.node_locks_busy++;
    }
    if (seen.empty() || !why.empty()) {
      return Unavailable("node " + node + " kept changing while taking " + kNodeLockAnnotation +
                         "; retry later");
    }
    return Unavailable("node " + node + " is locked: " + kNodeLockAnnotation + "=\"" + seen +
                       "\" (another pod is between bind and allocation); retry later");
  }
}

void Extender::ReleaseHamiLock(const std::string& node, const std::string& value) {
  auto r = PatchWithRetry(*client_, Resource::Nodes(), "", node, [&](const Json& cur) {
    if (Annotation(cur, kNodeLockAnnotation) != value) return StatusOr<Json>(Json::object());
    return StatusOr<Json>(Json{{"metadata", {{"annotations", {{kNodeLockAnnotation, nullptr}}}}}});
  });
  if (!r.ok() && r.status().code() != StatusCode::kNotFound) {
    log::Warn("releasing {} on {}: {} (it expires by itself)", kNodeLockAnnotation, node,
              r.status().ToString());
  }
}

void Extender::ReleaseQueuedHamiLocks() {
  // One at a time, and Bind runs it before taking a lock: a lock value has whole seconds, so a
  // pod's next bind attempt within the second writes the very value a queued release of its
  // previous attempt removes, and that release must be done before the new lock is taken.
  std::lock_guard<std::mutex> one(release_mu_);
  std::vector<HeldLock> todo;
  {
    std::lock_guard<std::mutex> l(lock_mu_);
    todo.swap(lock_releases_);
    releases_pending_ = false;
  }
  for (const auto& h : todo) ReleaseHamiLock(h.node, h.value);
}

}  // namespace hami::k8s
