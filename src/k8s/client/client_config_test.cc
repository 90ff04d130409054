#include "k8s/client/client_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "k8s/client/base64.h"

namespace hami::k8s {
namespace {

namespace fs = std::filesystem;

fs::path TempDir() {
  char tmpl[] = "/tmp/k8s_cfg_XXXXXX";
  return mkdtemp(tmpl);
}

void Write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

TEST(KubeconfigTest, InlineDataAndCurrentContext) {
  std::string yaml = R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )" +
                     Base64Encode("CA PEM") + R"(
contexts:
- name: prod
  context: {cluster: c1, user: u1, namespace: gpu}
- name: other
  context: {cluster: c1, user: u2}
users:
- name: u1
  user:
    client-certificate-data: )" +
                     Base64Encode("CERT") + R"(
    client-key-data: )" +
                     Base64Encode("KEY") + R"(
- name: u2
  user:
    token: abc
)";
  auto c = ParseKubeconfig(yaml, "/nowhere");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->default_namespace, "gpu");
  auto o = ParseKubeconfig(yaml, "/nowhere", "other");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->token, "abc");
  EXPECT_EQ(ParseKubeconfig(yaml, "/nowhere", "missing").status().code(), StatusCode::kNotFound);
}

TEST(KubeconfigTest, FilePathsRelativeToTheKubeconfig) {
  fs::path dir = TempDir();
  Write(dir / "ca.crt", "CA");
  Write(dir / "tok", "t0k\n");
  Write(dir / "config", R"(current-context: x
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080", certificate-authority: ca.crt}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {tokenFile: tok}}]
)");
  auto c = LoadKubeconfig((dir / "config").string());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->token_file, (dir / "tok").string());
  fs::remove_all(dir);
}

TEST(KubeconfigTest, ErrorsNameTheProblem) {
  EXPECT_EQ(LoadKubeconfig("/does/not/exist").status().code(), StatusCode::kNotFound);
  auto s = ParseKubeconfig("clusters: [", "/");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  auto nocur = ParseKubeconfig("clusters: []\n", "/");
  EXPECT_NE(nocur.status().message().find("current-context"), std::string::npos);
  auto half = ParseKubeconfig(R"(current-context: x
clusters: [{name: c, cluster: {server: "https://a"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {client-certificate-data: Q0VSVA==}}]
)",
                              "/");
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  auto badb64 = ParseKubeconfig(R"(current-context: x
clusters: [{name: c, cluster: {server: "https://a", certificate-authority-data: "!!"}}]
contexts: [{name: x, context: {cluster: c}}]
)",
                                "/");
  EXPECT_NE(badb64.status().message().find("certificate-authority-data"), std::string::npos);
}

TEST(InClusterTest, ReadsServiceAccount) {
  fs::path dir = TempDir();
  Write(dir / "token", "sa-token\n");
  Write(dir / "ca.crt", "CA");
  Write(dir / "namespace", "kube-system");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = InClusterConfig(dir.string());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->default_namespace, "kube-system");
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConfig(dir.string()).status().code(), StatusCode::kFailedPrecondition);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hami::k8s
