// The mutating webhook (webhook.h): which pods are ours (HAMi's rules: our scheduler name, an
// empty one, or default-scheduler when overwriting it), what is refused (node preset,
// privileged GPU containers, values the scheduler would refuse) and the JSON patch: scheduler
// name, HAMi's defaults (gpu count, memory, cores=100 for a whole card) and environment
// (CUDA_TASK_PRIORITY, GPU_CORE_UTILIZATION_POLICY).
#include "k8s/extender/webhook.h"

#include "k8s/client/base64.h"
#include "k8s/client/kube_client.h"

namespace hami::k8s {

std::string JsonPointerEscape(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

Json Response(const std::string& uid, bool allowed, const std::string& message, int code,
              const Json& patch) {
  Json resp = {{"uid", uid}, {"allowed", allowed}};
  if (!allowed) {
    resp["status"] = {{"metadata", Json::object()},
                      {"status", "Failure"},
                      {"message", message},
                      {"reason", code == 403 ? "Forbidden" : "BadRequest"},
                      {"code", code}};
  }
  if (allowed && patch.is_array() && !patch.empty()) {
    resp["patchType"] = "JSONPatch";
    resp["patch"] = Base64Encode(patch.dump());
  }
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", resp}};
}

bool HasResource(const Json& container, const ResourceNames& n) {
  if (!container.is_object() || !container.contains("resources")) return false;
  const Json& res = container["resources"];
  if (!res.is_object()) return false;
  for (const char* section : {"limits", "requests"}) {
    if (!res.contains(section) || !res[section].is_object()) continue;
    for (const auto* name : {&n.count, &n.memory, &n.memory_percentage, &n.cores, &n.priority}) {
      if (res[section].contains(*name)) return true;
    }
  }
  return false;
}

bool Privileged(const Json& container) {
  if (!container.is_object() || !container.contains("securityContext")) return false;
  const Json& sc = container["securityContext"];
  return sc.is_object() && sc.contains("privileged") && sc["privileged"].is_boolean() &&
         sc["privileged"].get<bool>();
}

// Adds limits[name] = value (and requests[name] when requests carries other managed values,
// so requests and limits of an extended resource stay equal).
void AddLimit(Json& patch, const Json& container, const std::string& base, const std::string& name,
              const std::string& value, bool& has_resources, bool& has_limits) {
  if (!has_resources) {
    patch.push_back({{"op", "add"}, {"path", base + "/resources"}, {"value", Json::object()}});
    has_resources = true;
  }
  if (!has_limits) {
    patch.push_back(
        {{"op", "add"}, {"path", base + "/resources/limits"}, {"value", Json::object()}});
    has_limits = true;
  }
  patch.push_back({{"op", "add"},
                   {"path", base + "/resources/limits/" + JsonPointerEscape(name)},
                   {"value", value}});
  const Json* req = nullptr;
  if (container.contains("resources") && container["resources"].is_object() &&
      container["resources"].contains("requests") &&
      container["resources"]["requests"].is_object()) {
    req = &container["resources"]["requests"];
  }
  if (req && !req->contains(name) && !req->empty()) {
    // Only mirror when the user wrote requests for managed resources.
    patch.push_back({{"op", "add"},
                     {"path", base + "/resources/requests/" + JsonPointerEscape(name)},
                     {"value", value}});
  }
}

bool HasValue(const Json& c, const std::string& name) {
  if (!c.contains("resources") || !c["resources"].is_object()) return false;
  for (const char* s : {"limits", "requests"}) {
    if (c["resources"].contains(s) && c["resources"][s].is_object() &&
        c["resources"][s].contains(name)) {
      return true;
    }
  }
  return false;
}

// HAMi's scheduler-name rule: a pod naming another scheduler (volcano, default-scheduler unless
// overwriting it) is not ours.
bool OtherScheduler(const std::string& name, const WebhookOptions& o) {
  if (name.empty() || name == o.scheduler_name) return false;
  return !(name == "default-scheduler" && o.force_overwrite_default_scheduler);
}

// Appends env entries (name, value) to the container at `base`.
void AddEnv(Json& patch, const Json& c, const std::string& base,
            const std::vector<std::pair<std::string, std::string>>& vars) {
  if (vars.empty()) return;
  bool has_env = c.contains("env") && c["env"].is_array();
  for (const auto& [name, value] : vars) {
    Json var = {{"name", name}, {"value", value}};
    if (!has_env) {
      patch.push_back({{"op", "add"}, {"path", base + "/env"}, {"value", Json::array({var})}});
      has_env = true;
    } else {
      patch.push_back({{"op", "add"}, {"path", base + "/env/-"}, {"value", var}});
    }
  }
}

// The defaults and environment of one GPU container (`r`: its parsed request).
void PatchContainer(Json& patch, const Json& c, const std::string& base,
                    const sched::ContainerRequest& r, const WebhookOptions& o) {
  auto has = [&](const std::string& name) { return HasValue(c, name); };
  bool has_resources = c.contains("resources") && c["resources"].is_object();
  bool has_limits =
      has_resources && c["resources"].contains("limits") && c["resources"]["limits"].is_object();
  bool asks_gpu = has(o.names.memory) || has(o.names.memory_percentage) || has(o.names.cores);
  if (!has(o.names.count) && asks_gpu) {
    AddLimit(patch, c, base, o.names.count, std::to_string(o.sched.default_gpu_num), has_resources,
             has_limits);
  }
  // HAMi: a count without cores and without a memory share (or with 100 %) is a whole card,
  // held exclusively: gpucores=100.
  const bool whole_card = has(o.names.count) && !has(o.names.cores) &&
                          (r.memory_percent ? *r.memory_percent == 100 : !has(o.names.memory));
  // With memoryFactor != 1 a written value would be scaled twice; the scheduler applies
  // defaultMemory itself in that case.
  if (!has(o.names.memory) && !has(o.names.memory_percentage) && o.sched.default_memory_mib > 0 &&
      o.memory_factor == 1) {
    AddLimit(patch, c, base, o.names.memory, std::to_string(o.sched.default_memory_mib),
             has_resources, has_limits);
  }
  if (!has(o.names.cores) && (whole_card || o.sched.default_cores > 0)) {
    AddLimit(patch, c, base, o.names.cores,
             std::to_string(whole_card ? 100 : o.sched.default_cores), has_resources, has_limits);
  }
  std::vector<std::pair<std::string, std::string>> env;
  if (r.priority) env.emplace_back("CUDA_TASK_PRIORITY", std::to_string(*r.priority));
  if (!o.gpu_core_policy.empty() && o.gpu_core_policy != "default") {
    env.emplace_back("GPU_CORE_UTILIZATION_POLICY", o.gpu_core_policy);
  }
  AddEnv(patch, c, base, env);
}

struct Review {
  std::string uid;
  const Json* pod = nullptr;  // null: not a pod being created (passes untouched)
  std::string ns;
};

// Errors: kInvalidArgument (HTTP 400) when the body is not an AdmissionReview with a request.
StatusOr<Review> ReadReview(const Json& review) {
  if (!review.is_object()) return InvalidArgument("AdmissionReview: body is not a JSON object");
  if (review.value("kind", "") != "AdmissionReview") {
    return InvalidArgument("AdmissionReview: kind is not AdmissionReview");
  }
  auto rit = review.find("request");
  if (rit == review.end() || !rit->is_object()) {
    return InvalidArgument("AdmissionReview: no request object");
  }
  const Json& req = *rit;
  auto uid_it = req.find("uid");
  if (uid_it == req.end() || !uid_it->is_string() || uid_it->get<std::string>().empty()) {
    return InvalidArgument("AdmissionReview: request.uid missing");
  }
  Review r;
  r.uid = uid_it->get<std::string>();
  // Only pods being created are ours; anything else passes untouched.
  std::string kind;
  if (req.contains("kind") && req["kind"].is_object()) kind = req["kind"].value("kind", "");
  if (kind != "Pod" || req.value("operation", "") != "CREATE") return r;
  auto obj_it = req.find("object");
  if (obj_it == req.end() || !obj_it->is_object()) {
    return InvalidArgument("AdmissionReview: request.object is not a Pod object");
  }
  const Json& pod = *obj_it;
  if (pod.contains("spec") && !pod["spec"].is_object()) {
    return InvalidArgument("AdmissionReview: pod spec is not an object");
  }
  for (const char* which : {"initContainers", "containers"}) {
    if (pod.contains("spec") && pod["spec"].contains(which) && !pod["spec"][which].is_array() &&
        !pod["spec"][which].is_null()) {
      return InvalidArgument(std::string("AdmissionReview: spec.") + which + " is not a list");
    }
  }
  r.pod = &pod;
  r.ns = MetaString(pod, "namespace");
  if (r.ns.empty() && req.contains("namespace") && req["namespace"].is_string()) {
    r.ns = req["namespace"].get<std::string>();
  }
  return r;
}

// True when the pod or its namespace opts out, or another scheduler owns it.
bool NotOurs(const Review& r, const WebhookOptions& o, const NamespaceLabels& namespace_labels) {
  const Json& pod = *r.pod;
  if (Label(pod, kWebhookLabel) == "ignore") return true;
  if (namespace_labels && !r.ns.empty()) {
    if (auto labels = namespace_labels(r.ns)) {
      auto it = labels->find(kWebhookLabel);
      if (it != labels->end() && it->second == "ignore") return true;
    }
  }
  const Json* spec = pod.contains("spec") ? &pod["spec"] : nullptr;
  std::string sched_name;
  if (spec && spec->contains("schedulerName") && (*spec)["schedulerName"].is_string()) {
    sched_name = (*spec)["schedulerName"].get<std::string>();
  }
  return OtherScheduler(sched_name, o) || !UsesManagedResources(pod, o.names);
}

// A reason to refuse the pod ("" when none): a preset node or a privileged GPU container.
std::string Refusal(const Json& spec, const WebhookOptions& o) {
  std::string node_name = spec.value("nodeName", "");
  if (!node_name.empty()) {
    return "hami: pod asks for GPU resources but has spec.nodeName \"" + node_name +
           "\" preset; it must be placed by " + o.scheduler_name;
  }
  for (const char* which : {"initContainers", "containers"}) {
    if (!spec.contains(which) || !spec[which].is_array()) continue;
    for (const auto& c : spec[which]) {
      if (HasResource(c, o.names) && Privileged(c)) {
        return "hami: privileged container \"" + c.value("name", "") +
               "\" cannot use GPU resources (its memory could not be limited)";
      }
    }
  }
  return "";
}

}  // namespace

StatusOr<Json> ReviewAdmission(const Json& review, const WebhookOptions& o,
                               const NamespaceLabels& namespace_labels) {
  auto r = ReadReview(review);
  if (!r.ok()) return r.status();
  if (r->pod == nullptr || NotOurs(*r, o, namespace_labels)) {
    return Response(r->uid, true, "", 200, nullptr);
  }
  const Json& pod = *r->pod;
  const Json empty_spec = Json::object();
  const Json& spec = pod.contains("spec") ? pod["spec"] : empty_spec;
  if (std::string why = Refusal(spec, o); !why.empty()) {
    return Response(r->uid, false, why, 403, nullptr);
  }
  // Resource values and annotations: refuse what the scheduler would refuse, naming the value.
  auto parsed = PodRequestFromJson(pod, o.names, o.memory_factor);
  if (!parsed.ok()) {
    return Response(r->uid, false, "hami: " + parsed.status().message(), 400, nullptr);
  }
  auto resolved = sched::Resolve(*parsed, o.sched);
  if (!resolved.ok()) {
    return Response(r->uid, false, "hami: " + resolved.status().message(), 400, nullptr);
  }
  // Larger than the whole quota: it would stay pending forever (docs/quotas.md).
  if (o.quota_check && !r->ns.empty()) {
    if (Status q = o.quota_check(r->ns, *resolved); !q.ok()) {
      return Response(r->uid, false, "hami: " + q.message(), 403, nullptr);
    }
  }

  Json patch = Json::array();
  std::string sched_name = spec.value("schedulerName", "");
  if (sched_name != o.scheduler_name) {
    patch.push_back({{"op", sched_name.empty() ? "add" : "replace"},
                     {"path", "/spec/schedulerName"},
                     {"value", o.scheduler_name}});
  }
  // Defaults (SPEC 2.1), written into the spec so kubelet asks the device plugin for the GPUs.
  const std::pair<const char*, const std::vector<sched::ContainerRequest>*> lists[] = {
      {"initContainers", &parsed->init_containers}, {"containers", &parsed->containers}};
  for (const auto& [which, requests] : lists) {
    if (!spec.contains(which) || !spec[which].is_array()) continue;
    const Json& list = spec[which];
    for (std::size_t i = 0; i < list.size() && i < requests->size(); ++i) {
      if (!HasResource(list[i], o.names)) continue;
      PatchContainer(patch, list[i], std::string("/spec/") + which + "/" + std::to_string(i),
                     (*requests)[i], o);
    }
  }
  Json out = Response(r->uid, true, "", 200, patch);
  // Values accepted with HAMi's weaker meaning: shown to the user by kubectl (admission/v1).
  for (const auto& w : parsed->options.warnings)
    out["response"]["warnings"].push_back("hami: " + w);
  return out;
}

}  // namespace hami::k8s
