#include "k8s/testing/sim_kubelet.h"

#include <chrono>

namespace hami::k8s::testing {

std::vector<std::string> Segments(const std::string& a) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : a) {
    if (c == ';') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

static int DeviceCount(const std::string& segment) {
  int n = 0;
  for (char c : segment) n += c == ':';
  return n;
}

static std::string Join(const std::vector<std::string>& segs) {
  std::string out;
  for (const auto& s : segs) out += s + ";";
  return out;
}

SimKubelet::SimKubelet(KubeClient* client, std::string resource_count)
    : client_(client), count_name_(std::move(resource_count)) {}

SimKubelet::~SimKubelet() { Stop(); }

void SimKubelet::Start() {
  pods_ =
      std::make_unique<Reflector>(client_, Resource::Pods(), ListOptions{}, ReflectorHandlers{});
  pods_->set_backoff(std::chrono::milliseconds(10), std::chrono::milliseconds(100));
  pods_->Start();
  thread_ = std::thread([this] { Loop(); });
}

void SimKubelet::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (pods_) pods_->Stop();
}

std::vector<SimKubelet::Served> SimKubelet::served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

std::vector<std::string> SimKubelet::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

void SimKubelet::Loop() {
  while (!stop_) {
    bool any = false;
    for (const auto& pod : pods_->ListCached()) {
      std::string uid = MetaString(pod, "uid");
      if (done_.count(uid)) continue;
      if (!pod.contains("spec") || pod["spec"].value("nodeName", "").empty()) continue;
      done_.insert(uid);
      Admit(pod);
      any = true;
    }
    if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void SimKubelet::Admit(const Json& pod) {
  admitted_++;
  std::string node = pod["spec"]["nodeName"];
  std::vector<int> counts;
  for (const char* which : {"initContainers", "containers"}) {
    if (!pod["spec"].contains(which)) continue;
    for (const auto& c : pod["spec"][which]) {
      int n = 0;
      if (c.contains("resources") && c["resources"].contains("limits") &&
          c["resources"]["limits"].contains(count_name_)) {
        n = std::stoi(c["resources"]["limits"][count_name_].get<std::string>());
      }
      counts.push_back(n);
    }
  }
  // What the scheduler chose, per container (for the swap check).
  auto expected = Segments(Annotation(pod, "hami.io/vgpu-devices-allocated"));
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    auto r = Allocate(node, counts[i]);
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.ok()) {
      failures_++;
      errors_.push_back(ObjectKey(pod) + ": " + r.status().message());
      return;
    }
    served_.push_back({MetaString(pod, "uid"), r->first, r->second,
                       i < expected.size() ? expected[i] : std::string()});
  }
}

StatusOr<std::pair<std::string, std::string>> SimKubelet::Allocate(const std::string& node,
                                                                   int count) {
  // Retry on conflicts and on a not-yet-visible annotation (the pod may be bound before the
  // informer of a real device plugin sees its latest version).
  Status last;
  for (int attempt = 0; attempt < 200 && !stop_; ++attempt) {
    ListOptions o;
    o.field_selector = "spec.nodeName=" + node;
    auto list = client_->List(Resource::Pods(), o);
    if (!list.ok()) return list.status();
    std::vector<const Json*> candidates;
    for (const auto& p : list->items) {
      if (Annotation(p, "hami.io/bind-phase") != "allocating") continue;
      for (const auto& seg : Segments(Annotation(p, "hami.io/vgpu-devices-to-allocate"))) {
        if (seg.empty()) continue;
        if (DeviceCount(seg) == count) candidates.push_back(&p);
        break;
      }
    }
    if (candidates.size() > 1) {
      return FailedPrecondition(std::to_string(candidates.size()) + " pods on " + node +
                                " wait for " + std::to_string(count) + " devices: ambiguous");
    }
    if (candidates.empty()) {
      last = FailedPrecondition(std::to_string(candidates.size()) + " pods on " + node +
                                " wait for " + std::to_string(count) + " devices");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    const Json& pod = *candidates[0];
    auto segs = Segments(Annotation(pod, "hami.io/vgpu-devices-to-allocate"));
    std::string served;
    bool all_done = true;
    bool taken = false;
    for (auto& s : segs) {
      if (!taken && !s.empty()) {
        served = s;
        s.clear();
        taken = true;
      } else if (!s.empty()) {
        all_done = false;
      }
    }
    Json ann = {{"hami.io/vgpu-devices-to-allocate", Join(segs)}};
    if (all_done) ann["hami.io/bind-phase"] = "success";
    auto r = client_->Patch(
        Resource::Pods(), MetaString(pod, "namespace"), MetaString(pod, "name"), PatchType::kMerge,
        {{"metadata",
          {{"resourceVersion", MetaString(pod, "resourceVersion")}, {"annotations", ann}}}});
    if (r.ok()) return std::make_pair(MetaString(pod, "uid"), served);
    last = r.status();
    if (r.status().code() != StatusCode::kAborted) return r.status();
  }
  return last;
}

}  // namespace hami::k8s::testing
