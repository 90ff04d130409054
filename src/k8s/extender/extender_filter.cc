// Extender (extender.h): kube-scheduler's filter and prioritize verbs (extender v1 JSON). The
// candidates come as node names (nodeCacheCapable) or as a NodeList; the engine's reasons go to
// FailedNodes when freeing GPU slices could help and to FailedAndUnresolvableNodes otherwise.
#include "k8s/extender/extender.h"

#include <algorithm>

#include "k8s/extender/extender_internal.h"

namespace hami::k8s {

namespace {

using extender_internal::Clock;
using extender_internal::Seconds;

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

struct Candidates {
  std::vector<std::string> names;
  std::vector<const Json*> objects;  // parallel to names when they came as a NodeList
  bool cache_capable = false;        // names came as `nodenames`: answer with names
};

// Errors: kInvalidArgument naming the malformed field.
StatusOr<Candidates> ParseCandidates(const Json& args) {
  const Json* nodes = FindField(args, "nodes");
  const Json* names = FindField(args, "nodenames");
  Candidates c;
  if (names && names->is_array()) {
    c.cache_capable = true;
    c.names.reserve(names->size());
    for (const auto& n : *names) {
      if (!n.is_string())
        return InvalidArgument("ExtenderArgs.nodenames must be a list of strings");
      c.names.push_back(n.get<std::string>());
    }
  } else if (nodes && nodes->is_object()) {
    const Json* items = FindField(*nodes, "items");
    if (items && !items->is_array() && !items->is_null()) {
      return InvalidArgument("ExtenderArgs.nodes.items must be a list");
    }
    if (items && items->is_array()) {
      for (const auto& n : *items) {
        std::string name = MetaString(n, "name");
        if (name.empty()) {
          return InvalidArgument("ExtenderArgs.nodes.items: a node has no metadata.name");
        }
        c.names.push_back(name);
        c.objects.push_back(&n);
      }
    }
  } else if ((names && !names->is_null()) || (nodes && !nodes->is_null())) {
    return InvalidArgument("ExtenderArgs.nodes must be a NodeList and nodenames a list");
  }
  return c;
}

Json PrioritizeAnswer(const sched::FilterResult& fr) {
  Json out = Json::array();
  for (const auto& v : fr.nodes) {
    out.push_back({{"host", std::string(v.node)}, {"score", v.fits() ? v.extender_score : 0}});
  }
  return out;
}

// ExtenderFilterResult. With `single_node` (HAMi-compatible) only the best fitting node passes.
Json FilterAnswer(const sched::FilterResult& fr, const Candidates& c, bool single_node) {
  Json out;
  Json failed = Json::object(), unresolvable = Json::object();
  std::vector<std::size_t> fit;
  for (std::size_t i = 0; i < fr.nodes.size(); ++i) {
    const auto& v = fr.nodes[i];
    if (v.fits()) {
      fit.push_back(i);
    } else {
      std::string msg = std::string("hami: ") + sched::ReasonText(v.reason);
      (Resolvable(v.reason) ? failed : unresolvable)[std::string(v.node)] = msg;
    }
  }
  if (single_node && fit.size() > 1) {
    auto best = *std::max_element(fit.begin(), fit.end(), [&](std::size_t a, std::size_t b) {
      const auto& va = fr.nodes[a];
      const auto& vb = fr.nodes[b];
      if (va.score != vb.score) return va.score < vb.score;
      return va.node > vb.node;  // ties: smallest name wins
    });
    for (std::size_t i : fit) {
      if (i != best) failed[std::string(fr.nodes[i].node)] = "hami: another node fits better";
    }
    fit = {best};
  }
  if (c.cache_capable) {
    Json list = Json::array();
    for (std::size_t i : fit) list.push_back(std::string(fr.nodes[i].node));
    out["nodenames"] = std::move(list);
  } else {
    Json items = Json::array();
    for (std::size_t i : fit) items.push_back(*c.objects[i]);
    out["nodes"] = {{"apiVersion", "v1"},
                    {"kind", "NodeList"},
                    {"metadata", Json::object()},
                    {"items", std::move(items)}};
  }
  out["failedNodes"] = std::move(failed);
  out["failedAndUnresolvableNodes"] = std::move(unresolvable);
  out["error"] = "";
  return out;
}

}  // namespace

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
  auto candidates = ParseCandidates(args);
  if (!candidates.ok()) return bad(candidates.status().message());

  Json out;
  auto req = PodRequestFromJson(*pod, opts_.names, opts_.memory_factor);
  if (!req.ok()) {
    if (prioritize) return bad(req.status().message());
    out = {{"error", req.status().message()}};
  } else {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    auto fr = engine_.Filter(state_, *req, candidates->names);
    if (!fr.ok()) {
      if (prioritize) return bad(fr.status().message());
      out = {{"error", fr.status().message()}};
    } else {
      out = prioritize ? PrioritizeAnswer(*fr)
                       : FilterAnswer(*fr, *candidates, opts_.single_node_filter);
    }
  }
  std::lock_guard<std::mutex> c(counters_mu_);
  (prioritize ? counters_.prioritize_calls : counters_.filter_calls)++;
  (prioritize ? counters_.prioritize_seconds : counters_.filter_seconds) +=
      Seconds(Clock::now() - start);
  return out;
}

}  // namespace hami::k8s
