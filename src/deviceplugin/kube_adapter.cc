#include "deviceplugin/kube_adapter.h"

#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "deviceplugin/allocator.h"
#include "deviceplugin/config.h"

namespace hami::deviceplugin {
namespace {

using nlohmann::json;

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Status FromHttp(const httplib::Result& res, const std::string& what) {
  if (!res) return Unavailable(what + ": " + httplib::to_string(res.error()));
  if (res->status >= 200 && res->status < 300) return Status::Ok();
  std::string msg = what + ": HTTP " + std::to_string(res->status);
  try {
    msg += ": " + json::parse(res->body).value("message", "");
  } catch (const json::exception&) {
  }
  if (res->status == 409) return Aborted(msg);
  if (res->status == 404) return NotFound(msg);
  if (res->status == 422 || res->status == 400) return InvalidArgument(msg);
  return Unavailable(msg);
}

json PatchBody(const std::string& resource_version, const AnnotationPatch& patch) {
  json annos = json::object();
  for (const auto& [k, v] : patch) annos[k] = v ? json(*v) : json(nullptr);
  json meta = {{"annotations", annos}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return {{"metadata", meta}};
}

class RestKubeApi final : public KubeApi {
 public:
  explicit RestKubeApi(KubeConnection conn) : conn_(std::move(conn)) {}

  StatusOr<std::vector<PodInfo>> ListPodsOnNode(const std::string& node) override {
    auto cli = Client();
    auto res =
        cli->Get("/api/v1/pods?fieldSelector=" + UrlEncode("spec.nodeName=" + node), Headers());
    HAMI_RETURN_IF_ERROR(FromHttp(res, "list pods on " + node));
    return ParsePodList(res->body);
  }
  Status PatchPodAnnotations(const std::string& ns, const std::string& name,
                             const std::string& resource_version,
                             const AnnotationPatch& patch) override {
    auto cli = Client();
    auto res =
        cli->Patch("/api/v1/namespaces/" + ns + "/pods/" + name, Headers(),
                   PatchBody(resource_version, patch).dump(), "application/merge-patch+json");
    return FromHttp(res, "patch pod " + ns + "/" + name);
  }
  Status PatchNodeAnnotations(const std::string& node, const AnnotationPatch& patch) override {
    auto cli = Client();
    auto res = cli->Patch("/api/v1/nodes/" + node, Headers(), PatchBody("", patch).dump(),
                          "application/merge-patch+json");
    return FromHttp(res, "patch node " + node);
  }

 private:
  std::unique_ptr<httplib::Client> Client() {
    auto cli = std::make_unique<httplib::Client>(conn_.server);
    cli->set_connection_timeout(5, 0);
    cli->set_read_timeout(15, 0);
    if (conn_.server.rfind("https://", 0) == 0 && std::filesystem::exists(conn_.ca_file)) {
      cli->set_ca_cert_path(conn_.ca_file.c_str());
      cli->enable_server_certificate_verification(true);
    }
    return cli;
  }
  httplib::Headers Headers() {
    httplib::Headers h = {{"Accept", "application/json"}};
    // Projected tokens rotate, so the file is read for every request.
    auto token = ReadFile(conn_.token_file);
    if (token.ok()) {
      std::string t = *token;
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
      if (!t.empty()) h.emplace("Authorization", "Bearer " + t);
    }
    return h;
  }
  KubeConnection conn_;
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

StatusOr<std::vector<PodInfo>> ParsePodList(const std::string& body) {
  std::vector<PodInfo> out;
  try {
    json list = json::parse(body);
    for (const auto& item : list.value("items", json::array())) {
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
      out.push_back(std::move(p));
    }
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("pod list: ") + e.what());
  }
  return out;
}

StatusOr<std::unique_ptr<KubeApi>> ConnectKube(const KubeConnection& conn) {
  KubeConnection c = conn;
  if (c.server.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || port == nullptr) {
      return FailedPrecondition(
          "no --kube-api given and KUBERNETES_SERVICE_HOST/PORT are not set (not in a cluster)");
    }
    std::string h = host;
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    c.server = "https://" + h + ":" + port;
  }
  return std::unique_ptr<KubeApi>(new RestKubeApi(std::move(c)));
}

Status PrepareHookDir(const std::string& hook_path, const std::string& lib_source) {
  namespace fs = std::filesystem;
  const HookLayout layout = LayoutFor(hook_path);
  std::error_code ec;
  for (const std::string& d : {layout.root, layout.root + "/containers",
                               layout.root + "/allocations", layout.ContentionDir()}) {
    fs::create_directories(d, ec);
    if (ec) return Internal("cannot create " + d + ": " + ec.message());
  }
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
