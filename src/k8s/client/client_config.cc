#include "k8s/client/client_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/file_reader.h"
#include "k8s/client/base64.h"

namespace hami::k8s {

StatusOr<std::string> ReadFile(const std::string& path) {
  // kubeconfig, token, CA and device config: small files placed by the administrator or
  // kubelet (as links into ..data/), so links are followed; never block, bounded.
  common::ReadFileOptions o;
  o.follow_links = true;
  return common::ReadFileBounded(path, 4 << 20, o);
}

static std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

namespace {

// Finds the entry named `name` in a kubeconfig list (clusters/contexts/users) and returns its
// `field` map.
StatusOr<YAML::Node> Named(const YAML::Node& root, const char* list, const char* field,
                           const std::string& name) {
  YAML::Node l = root[list];
  if (l && l.IsSequence()) {
    for (const auto& item : l) {
      if (item["name"] && item["name"].as<std::string>() == name) {
        YAML::Node f = item[field];
        if (!f || !f.IsMap()) {
          return InvalidArgument(std::string("kubeconfig: ") + list + " entry \"" + name +
                                 "\" has no " + field + " map");
        }
        return f;
      }
    }
  }
  return NotFound(std::string("kubeconfig: no ") + field + " named \"" + name + "\" in " + list);
}

std::string Str(const YAML::Node& m, const char* key) {
  YAML::Node v = m[key];
  if (!v || !v.IsScalar()) return {};
  return v.as<std::string>();
}

// Inline `<key>-data` (base64) or the file named by `<key>`.
StatusOr<std::string> DataOrFile(const YAML::Node& m, const std::string& key,
                                 const std::string& base_dir) {
  std::string data = Str(m, (key + "-data").c_str());
  if (!data.empty()) {
    auto d = Base64Decode(data);
    if (!d.ok()) return InvalidArgument("kubeconfig: " + key + "-data: " + d.status().message());
    return d;
  }
  std::string path = Str(m, key.c_str());
  if (path.empty()) return std::string();
  if (path[0] != '/' && !base_dir.empty()) path = base_dir + "/" + path;
  auto f = ReadFile(path);
  if (!f.ok()) return NotFound("kubeconfig: " + key + ": " + f.status().message());
  return f;
}

}  // namespace

StatusOr<ClientConfig> ParseKubeconfig(const std::string& yaml, const std::string& base_dir,
                                       const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("kubeconfig: not YAML: ") + e.what());
  }
  if (!root.IsMap()) return InvalidArgument("kubeconfig: not a YAML map");
  try {
    std::string ctx_name = context.empty() ? Str(root, "current-context") : context;
    if (ctx_name.empty()) return InvalidArgument("kubeconfig: no current-context and none given");
    auto ctx = Named(root, "contexts", "context", ctx_name);
    if (!ctx.ok()) return ctx.status();
    auto cluster = Named(root, "clusters", "cluster", Str(*ctx, "cluster"));
    if (!cluster.ok()) return cluster.status();
    ClientConfig cfg;
    cfg.server = Str(*cluster, "server");
    if (cfg.server.empty()) return InvalidArgument("kubeconfig: cluster has no server");
    while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
    cfg.insecure_skip_tls_verify = Str(*cluster, "insecure-skip-tls-verify") == "true";
    auto ca = DataOrFile(*cluster, "certificate-authority", base_dir);
    if (!ca.ok()) return ca.status();
    cfg.ca_pem = *ca;
    if (std::string ns = Str(*ctx, "namespace"); !ns.empty()) cfg.default_namespace = ns;
    std::string user_name = Str(*ctx, "user");
    if (!user_name.empty()) {
      auto user = Named(root, "users", "user", user_name);
      if (!user.ok()) return user.status();
      auto cert = DataOrFile(*user, "client-certificate", base_dir);
      if (!cert.ok()) return cert.status();
      auto key = DataOrFile(*user, "client-key", base_dir);
      if (!key.ok()) return key.status();
      cfg.client_cert_pem = *cert;
      cfg.client_key_pem = *key;
      if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
        return InvalidArgument("kubeconfig: user \"" + user_name +
                               "\" has a client certificate without key or the reverse");
      }
      cfg.token = Str(*user, "token");
      cfg.token_file = Str(*user, "tokenFile");
      if (!cfg.token_file.empty() && cfg.token_file[0] != '/' && !base_dir.empty()) {
        cfg.token_file = base_dir + "/" + cfg.token_file;
      }
      if ((*user)["exec"] || (*user)["auth-provider"]) {
        if (cfg.token.empty() && cfg.token_file.empty() && cfg.client_cert_pem.empty()) {
          return InvalidArgument("kubeconfig: user \"" + user_name +
                                 "\" uses exec/auth-provider, which is not supported; use a "
                                 "token or client certificate");
        }
      }
    }
    return cfg;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

StatusOr<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  return ParseKubeconfig(*text, dir, context);
}

StatusOr<ClientConfig> InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return FailedPrecondition("not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset");
  }
  ClientConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  cfg.server = "https://" + h + ":" + port;
  cfg.token_file = sa_dir + "/token";
  auto token = ReadFile(cfg.token_file);
  if (!token.ok()) return FailedPrecondition("in-cluster: " + token.status().message());
  cfg.token = Trim(*token);
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) return FailedPrecondition("in-cluster: " + ca.status().message());
  cfg.ca_pem = *ca;
  if (auto ns = ReadFile(sa_dir + "/namespace"); ns.ok()) cfg.default_namespace = Trim(*ns);
  return cfg;
}

StatusOr<ClientConfig> ResolveClientConfig(const std::string& kubeconfig_path) {
  if (!kubeconfig_path.empty()) return LoadKubeconfig(kubeconfig_path);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first);
  }
  auto in_cluster = InClusterConfig();
  if (in_cluster.ok()) return in_cluster;
  if (const char* home = std::getenv("HOME"); home && *home) {
    auto c = LoadKubeconfig(std::string(home) + "/.kube/config");
    if (c.ok() || c.status().code() != StatusCode::kNotFound) return c;
  }
  return FailedPrecondition("no kubeconfig given, $KUBECONFIG unset, not in a cluster (" +
                            in_cluster.status().message() + ") and no ~/.kube/config");
}

}  // namespace hami::k8s
