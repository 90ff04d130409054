#include "deviceplugin/kube_adapter.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "deviceplugin/allocator.h"
#include "deviceplugin/config.h"
#include "k8s/client/http_kube_client.h"

namespace hami::deviceplugin {
namespace {

using nlohmann::json;

json PatchBody(const std::string& resource_version, const AnnotationPatch& patch) {
  json annos = json::object();
  for (const auto& [k, v] : patch) annos[k] = v ? json(*v) : json(nullptr);
  json meta = {{"annotations", annos}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return {{"metadata", meta}};
}

std::map<std::string, std::string> StringMap(const json& j);

class ClientKubeApi final : public KubeApi {
 public:
  explicit ClientKubeApi(std::unique_ptr<k8s::KubeClient> c) : client_(std::move(c)) {}

  StatusOr<std::vector<PodInfo>> ListPodsOnNode(const std::string& node) override {
    k8s::ListOptions opts;
    opts.field_selector = "spec.nodeName=" + node;
    auto list = client_->List(k8s::Resource::Pods(), opts);
    if (!list.ok()) return list.status();
    std::vector<PodInfo> out;
    for (const auto& item : list->items) {
      auto p = PodFromJson(item);
      if (!p.ok()) return p.status();
      out.push_back(std::move(*p));
    }
    return out;
  }
  Status PatchPodAnnotations(const std::string& ns, const std::string& name,
                             const std::string& resource_version,
                             const AnnotationPatch& patch) override {
    auto r = client_->Patch(k8s::Resource::Pods(), ns, name, k8s::PatchType::kMerge,
                            PatchBody(resource_version, patch));
    return r.ok() ? Status::Ok() : r.status();
  }
  Status PatchNodeAnnotations(const std::string& node, const AnnotationPatch& patch) override {
    return PatchNodeAnnotationsAt(node, "", patch);
  }
  StatusOr<NodeMeta> GetNode(const std::string& node) override {
    auto r = client_->Get(k8s::Resource::Nodes(), "", node);
    if (!r.ok()) return r.status();
    NodeMeta m;
    const json& meta = r->contains("metadata") ? (*r)["metadata"] : json::object();
    if (meta.is_object()) {
      if (auto it = meta.find("annotations"); it != meta.end()) m.annotations = StringMap(*it);
      m.resource_version = meta.value("resourceVersion", "");
    }
    return m;
  }
  Status PatchNodeAnnotationsAt(const std::string& node, const std::string& resource_version,
                                const AnnotationPatch& patch) override {
    auto r = client_->Patch(k8s::Resource::Nodes(), "", node, k8s::PatchType::kMerge,
                            PatchBody(resource_version, patch));
    return r.ok() ? Status::Ok() : r.status();
  }

 private:
  std::unique_ptr<k8s::KubeClient> client_;
};

std::map<std::string, std::string> StringMap(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

}  // namespace

std::unique_ptr<KubeApi> AdaptKubeClient(std::unique_ptr<k8s::KubeClient> client) {
  return std::make_unique<ClientKubeApi>(std::move(client));
}

StatusOr<std::unique_ptr<KubeApi>> ConnectKube(const std::string& kubeconfig) {
  auto cfg = k8s::ResolveClientConfig(kubeconfig);
  if (!cfg.ok()) return cfg.status();
  cfg->user_agent = "hami-device-plugin";
  auto client = k8s::HttpKubeClient::Create(*cfg);
  if (!client.ok()) return client.status();
  return AdaptKubeClient(std::move(*client));
}

StatusOr<PodInfo> PodFromJson(const json& item) {
  try {
    PodInfo p;
    const json& meta = item.at("metadata");
    p.ns = meta.value("namespace", "");
    p.name = meta.value("name", "");
    p.uid = meta.value("uid", "");
    p.resource_version = meta.value("resourceVersion", "");
    p.deleting = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
    p.annotations = StringMap(meta.value("annotations", json::object()));
    const json spec = item.value("spec", json::object());
    p.node_name = spec.value("nodeName", "");
    for (const char* key : {"initContainers", "containers"}) {
      for (const auto& c : spec.value(key, json::array())) {
        ContainerInfo ci;
        ci.name = c.value("name", "");
        for (const auto& e : c.value("env", json::array())) {
          if (e.contains("value") && e["value"].is_string()) {
            ci.env[e.value("name", "")] = e["value"].get<std::string>();
          }
        }
        const json res = c.value("resources", json::object());
        ci.limits = StringMap(res.value("requests", json::object()));
        for (const auto& [k, v] : StringMap(res.value("limits", json::object()))) {
          ci.limits[k] = v;
        }
        p.containers.push_back(std::move(ci));
      }
    }
    return p;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("pod: ") + e.what());
  }
}

StatusOr<std::vector<PodInfo>> ParsePodList(const std::string& body) {
  json list = json::parse(body, nullptr, false);
  if (list.is_discarded() || !list.is_object()) return InvalidArgument("pod list: not JSON");
  std::vector<PodInfo> out;
  for (const auto& item : list.value("items", json::array())) {
    auto p = PodFromJson(item);
    if (!p.ok()) return p.status();
    out.push_back(std::move(*p));
  }
  return out;
}

Status PrepareHookDir(const std::string& hook_path, const std::string& lib_source) {
  namespace fs = std::filesystem;
  const HookLayout layout = LayoutFor(hook_path);
  std::error_code ec;
  for (const std::string& d :
       {layout.root, layout.root + "/containers", layout.root + "/allocations",
        layout.ContentionDir(), layout.BoardDir()}) {
    fs::create_directories(d, ec);
    if (ec) return Internal("cannot create " + d + ": " + ec.message());
  }
  fs::permissions(layout.BoardDir(), fs::perms::all | fs::perms::sticky_bit, ec);
  if (ec) return Internal("cannot chmod " + layout.BoardDir() + ": " + ec.message());
  if (!lib_source.empty()) {
    const std::string tmp = layout.Library() + ".tmp";
    fs::copy_file(lib_source, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) return Internal("cannot copy " + lib_source + " to " + tmp + ": " + ec.message());
    fs::permissions(tmp,
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read,
                    ec);
    fs::rename(tmp, layout.Library(), ec);
    if (ec) return Internal("cannot install " + layout.Library() + ": " + ec.message());
  }
  std::ofstream out(layout.Preload() + ".tmp", std::ios::trunc);
  out << layout.Library() << "\n";
  out.close();
  if (!out) return Internal("cannot write " + layout.Preload());
  fs::rename(layout.Preload() + ".tmp", layout.Preload(), ec);
  if (ec) return Internal("cannot install " + layout.Preload() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace hami::deviceplugin
