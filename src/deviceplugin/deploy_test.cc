// Checks of deploy/: every chart value is used by a template, the chart's templates and the
// plain manifests agree line by line on the defaults, and `kubectl kustomize` renders the
// manifests with the default values where components read them.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "deviceplugin/config.h"

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;
const std::string kDeploy = HAMI_DEPLOY_DIR;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Flatten(const YAML::Node& n, const std::string& prefix,
             std::map<std::string, YAML::Node>& out) {
  if (n.IsMap() && n.size() > 0) {
    for (const auto& kv : n) {
      Flatten(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
    }
    return;
  }
  out[prefix] = n;
}

std::string Templates() {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(kDeploy + "/helm/hami/templates")) {
    if (e.is_regular_file()) all += Slurp(e.path()) + "\n";
  }
  return all;
}

bool UsedWhole(const std::string& text, const std::string& expr) {
  for (std::size_t p = text.find(expr); p != std::string::npos; p = text.find(expr, p + 1)) {
    const char next = p + expr.size() < text.size() ? text[p + expr.size()] : ' ';
    if (!(std::isalnum(static_cast<unsigned char>(next)) || next == '_' || next == '.'))
      return true;
  }
  return false;
}

TEST(NodeDeploy, EveryChartValueIsUsedByATemplate) {
  YAML::Node values = YAML::LoadFile(kDeploy + "/helm/hami/values.yaml");
  std::map<std::string, YAML::Node> leaves;
  Flatten(values, "", leaves);
  ASSERT_GT(leaves.size(), 40u);
  const std::string text = Templates();
  for (const auto& [path, node] : leaves) {
    // A value counts as used when it, or a map above it, is referenced as a whole.
    bool used = false;
    std::string p = path;
    while (!used && !p.empty()) {
      used = UsedWhole(text, ".Values." + p);
      const std::size_t dot = p.rfind('.');
      p = dot == std::string::npos ? "" : p.substr(0, dot);
    }
    EXPECT_TRUE(used) << "values.yaml: " << path << " is not used by any template";
  }
  // SPEC 2.7 names must exist with their documented defaults.
  EXPECT_EQ(values["schedulerName"].as<std::string>(), "hami-scheduler");
  EXPECT_EQ(values["scheduler"]["defaultSchedulerPolicy"]["nodeSchedulerPolicy"].as<std::string>(),
            "binpack");
  EXPECT_EQ(values["scheduler"]["defaultSchedulerPolicy"]["gpuSchedulerPolicy"].as<std::string>(),
            "spread");
  EXPECT_EQ(values["devicePlugin"]["deviceSplitCount"].as<int>(), 10);
  EXPECT_EQ(values["devicePlugin"]["deviceMemoryScaling"].as<double>(), 1.0);
  EXPECT_EQ(values["global"]["gpuHookPath"].as<std::string>(), "/usr/local");
  EXPECT_EQ(values["devicePlugin"]["nvidiaNodeSelector"]["gpu"].as<std::string>(), "on");
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The chart rendered by hand for release "hami" in kube-system with default values, line by
// line: each template line whose only template actions are value references and the name
// helpers must appear in the plain manifests.
TEST(NodeDeploy, ChartTemplatesAndPlainManifestsAgreeOnDefaults) {
  YAML::Node values = YAML::LoadFile(kDeploy + "/helm/hami/values.yaml");
  std::map<std::string, YAML::Node> leaves;
  Flatten(values, "", leaves);
  std::set<std::string> manifest_lines;
  for (const auto& e : fs::directory_iterator(kDeploy + "/manifests")) {
    std::istringstream in(Slurp(e.path()));
    for (std::string line; std::getline(in, line);) manifest_lines.insert(Trim(line));
  }
  const std::map<std::string, std::string> helpers = {
      {R"(include "hami.fullname" .)", "hami"},
      {R"(include "hami.scheduler" .)", "hami-scheduler"},
      {R"(include "hami.device-plugin" .)", "hami-device-plugin"},
      {R"(include "hami.namespace" .)", "kube-system"},
      {R"(include "hami.kubeSchedulerTag" .)", "v1.29.0"},
      {R"(include "hami.schedulerConfigApi" .)", "kubescheduler.config.k8s.io/v1"},
      {".Release.Name", "hami"},
  };
  const std::regex action(R"(\{\{-?\s*([^{}]*?)\s*-?\}\})");
  int checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(kDeploy + "/helm/hami/templates")) {
    if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
    std::istringstream in(Slurp(e.path()));
    int lineno = 0;
    // Blocks under `if`/`with` on a value are rendered when the default is truthy; bodies of
    // `range` and of conditions on anything else are skipped (not literal lines).
    std::vector<int> blocks;  // 1 rendered, 0 skipped, -1 skipped with unknown condition
    std::string kind;
    const std::regex open(R"(\{\{-?\s*(if|with|range)\s+(\S+)?)");
    for (std::string line; std::getline(in, line);) {
      ++lineno;
      const std::string t = Trim(line);
      if (t == "---") kind.clear();
      if (t.rfind("kind:", 0) == 0) kind = Trim(t.substr(5));
      std::smatch m;
      if (std::regex_search(t, m, open)) {
        int state = -1;
        const std::string arg = m[2];
        if (m[1] != "range" && arg.rfind(".Values.", 0) == 0) {
          std::string path = arg.substr(8);
          while (!path.empty() && (path.back() == '}' || path.back() == '-')) path.pop_back();
          bool truthy = false;
          for (const auto& [k, v] : leaves) {
            if (k != path && k.rfind(path + ".", 0) != 0) continue;
            truthy =
                truthy ||
                (v.IsScalar() ? (v.Scalar() != "" && v.Scalar() != "false" && v.Scalar() != "0")
                              : v.size() > 0);
          }
          state = truthy ? 1 : 0;
        }
        blocks.push_back(state);
        continue;
      }
      if (t.find("{{- else") != std::string::npos || t.find("{{ else") != std::string::npos) {
        if (!blocks.empty() && blocks.back() >= 0) blocks.back() = 1 - blocks.back();
        continue;
      }
      if (t.find("{{- end") != std::string::npos || t.find("{{ end") != std::string::npos) {
        if (!blocks.empty()) blocks.pop_back();
        continue;
      }
      bool skipped = false;
      for (int b : blocks) skipped = skipped || b != 1;
      // The Helm chart generates the webhook certificate; the manifests use a Job instead.
      if (skipped || kind == "Secret") continue;
      if (t.empty() || t[0] == '#') continue;
      std::string out;
      bool renderable = true;
      std::size_t last = 0;
      for (auto it = std::sregex_iterator(t.begin(), t.end(), action); it != std::sregex_iterator();
           ++it) {
        out += t.substr(last, it->position() - last);
        last = it->position() + it->length();
        const std::string expr = (*it)[1];
        if (auto h = helpers.find(expr); h != helpers.end()) {
          out += h->second;
        } else if (expr.rfind(".Values.", 0) == 0 && leaves.count(expr.substr(8)) &&
                   leaves.at(expr.substr(8)).IsScalar()) {
          out += leaves.at(expr.substr(8)).Scalar();
        } else {
          renderable = false;
          break;
        }
      }
      if (!renderable) continue;
      out += t.substr(last);
      if (out.find("{{") != std::string::npos || Trim(out).empty()) continue;
      ++checked;
      EXPECT_TRUE(manifest_lines.count(Trim(out)))
          << e.path().filename() << ":" << lineno << " renders to '" << Trim(out)
          << "', which deploy/manifests does not contain";
    }
  }
  EXPECT_GT(checked, 200);
}

struct Rendered {
  std::vector<YAML::Node> docs;
  YAML::Node Find(const std::string& kind, const std::string& name) const {
    for (const auto& d : docs) {
      if (d["kind"].as<std::string>() == kind && d["metadata"]["name"].as<std::string>() == name) {
        return d;
      }
    }
    return YAML::Node();
  }
};

std::vector<std::string> Command(const YAML::Node& pod_spec, const std::string& container) {
  for (const auto& c : pod_spec["containers"]) {
    if (c["name"].as<std::string>() == container)
      return c["command"].as<std::vector<std::string>>();
  }
  return {};
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(NodeDeploy, KustomizeRendersManifestsWithDefaultsWhereComponentsReadThem) {
  if (std::system("kubectl version --client >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "kubectl not installed";
  }
  const std::string cmd = "kubectl kustomize " + kDeploy + "/manifests 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) text.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << text;
  Rendered r{YAML::LoadAll(text)};
  ASSERT_GE(r.docs.size(), 20u);
  for (const auto& d : r.docs) {
    if (d["metadata"]["namespace"]) {
      EXPECT_EQ(d["metadata"]["namespace"].as<std::string>(), "kube-system");
    }
  }
  YAML::Node values = YAML::LoadFile(kDeploy + "/helm/hami/values.yaml");
  const YAML::Node dpv = values["devicePlugin"];
  const std::string hook = values["global"]["gpuHookPath"].as<std::string>();

  // device-config.yaml parses with the plugin's own parser and carries the defaults.
  YAML::Node cm = r.Find("ConfigMap", "hami-device-config");
  ASSERT_TRUE(cm);
  auto cfg = ParsePluginConfig(cm["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.resource_count_name, values["resourceName"].as<std::string>());
  EXPECT_EQ(cfg->nvidia.resource_memory_name, values["resourceMem"].as<std::string>());
  EXPECT_EQ(cfg->nvidia.resource_core_name, values["resourceCores"].as<std::string>());
  EXPECT_EQ(cfg->nvidia.device_split_count, dpv["deviceSplitCount"].as<int>());
  EXPECT_EQ(cfg->nvidia.device_memory_scaling, dpv["deviceMemoryScaling"].as<double>());
  EXPECT_EQ(cfg->nvidia.device_core_scaling, dpv["deviceCoreScaling"].as<double>());
  // Empty in values.yaml: HAMi's devices.nvidia.gpuCorePolicy when given, else "default".
  EXPECT_EQ(dpv["gpuCorePolicy"].as<std::string>(), "");
  EXPECT_EQ(cfg->nvidia.gpu_core_policy, "default");
  EXPECT_EQ(cfg->nvidia.default_gpu_num, values["scheduler"]["defaultGPUNum"].as<int>());
  auto nodecfg = r.Find("ConfigMap", "hami-device-plugin-config");
  ASSERT_TRUE(nodecfg);
  EXPECT_TRUE(ParseNodeConfigs(nodecfg["data"]["config.json"].as<std::string>(), *cfg).ok());

  // Device plugin and monitor DaemonSet on gpu=on nodes with the hook path mounted.
  YAML::Node ds = r.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds);
  const YAML::Node spec = ds["spec"]["template"]["spec"];
  EXPECT_EQ(spec["nodeSelector"]["gpu"].as<std::string>(), "on");
  auto dp = Command(spec, "device-plugin");
  EXPECT_TRUE(Has(dp, "--hook-path=" + hook));
  EXPECT_TRUE(Has(dp, "--device-split-count=" + dpv["deviceSplitCount"].as<std::string>()));
  EXPECT_TRUE(Has(dp, "--device-memory-scaling=" + dpv["deviceMemoryScaling"].as<std::string>()));
  EXPECT_TRUE(Has(dp, "--socket-dir=" + dpv["pluginPath"].as<std::string>()));
  auto mon = Command(spec, "vgpu-monitor");
  EXPECT_TRUE(Has(mon, "--hook-path=" + hook));
  EXPECT_TRUE(Has(mon, "--port=" + dpv["monitor"]["port"].as<std::string>()));
  bool hook_volume = false;
  for (const auto& v : spec["volumes"]) {
    if (v["hostPath"] && v["hostPath"]["path"].as<std::string>() == hook + "/vgpu")
      hook_volume = true;
  }
  EXPECT_TRUE(hook_volume);
  YAML::Node msvc = r.Find("Service", "hami-device-plugin-monitor");
  ASSERT_TRUE(msvc);
  EXPECT_EQ(msvc["spec"]["ports"][0]["nodePort"].as<int>(), dpv["service"]["httpPort"].as<int>());

  // Scheduler: stock kube-scheduler + extender with the policies and scheduler name.
  YAML::Node dep = r.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep);
  auto ext = Command(dep["spec"]["template"]["spec"], "hami-scheduler");
  EXPECT_TRUE(Has(ext, "--scheduler-name=" + values["schedulerName"].as<std::string>()));
  const YAML::Node pol = values["scheduler"]["defaultSchedulerPolicy"];
  EXPECT_TRUE(Has(ext, "--node-scheduler-policy=" + pol["nodeSchedulerPolicy"].as<std::string>()));
  EXPECT_TRUE(Has(ext, "--gpu-scheduler-policy=" + pol["gpuSchedulerPolicy"].as<std::string>()));
  EXPECT_TRUE(Has(Command(dep["spec"]["template"]["spec"], "kube-scheduler"),
                  "--config=/config/config.yaml"));
  YAML::Node scm = r.Find("ConfigMap", "hami-scheduler-config");
  ASSERT_TRUE(scm);
  YAML::Node sc = YAML::Load(scm["data"]["config.yaml"].as<std::string>());
  EXPECT_EQ(sc["kind"].as<std::string>(), "KubeSchedulerConfiguration");
  EXPECT_EQ(sc["profiles"][0]["schedulerName"].as<std::string>(),
            values["schedulerName"].as<std::string>());
  const YAML::Node e = sc["extenders"][0];
  EXPECT_EQ(e["filterVerb"].as<std::string>(), "filter");
  EXPECT_EQ(e["prioritizeVerb"].as<std::string>(), "prioritize");
  EXPECT_EQ(e["bindVerb"].as<std::string>(), "bind");
  EXPECT_TRUE(e["nodeCacheCapable"].as<bool>());
  std::set<std::string> managed;
  for (const auto& m : e["managedResources"]) {
    EXPECT_TRUE(m["ignoredByScheduler"].as<bool>());
    managed.insert(m["name"].as<std::string>());
  }
  for (const char* k : {"resourceName", "resourceMem", "resourceMemPercentage", "resourceCores",
                        "resourcePriority"}) {
    EXPECT_TRUE(managed.count(values[k].as<std::string>())) << k;
  }

  YAML::Node wh = r.Find("MutatingWebhookConfiguration", "hami-webhook");
  ASSERT_TRUE(wh);
  EXPECT_EQ(wh["webhooks"][0]["clientConfig"]["service"]["path"].as<std::string>(), "/webhook");
  EXPECT_EQ(wh["webhooks"][0]["clientConfig"]["service"]["name"].as<std::string>(),
            "hami-scheduler");
  EXPECT_EQ(wh["webhooks"][0]["failurePolicy"].as<std::string>(),
            values["scheduler"]["admissionWebhook"]["failurePolicy"].as<std::string>());
}

TEST(NodeDeploy, GrafanaDashboardQueriesExportedMetrics) {
  const std::string text = Slurp(kDeploy + "/grafana/hami-dashboard.json");
  YAML::Node dash = YAML::Load(text);  // JSON is YAML
  ASSERT_TRUE(dash["panels"]);
  std::set<std::string> exprs;
  for (const auto& p : dash["panels"]) {
    if (!p["targets"]) continue;
    for (const auto& t : p["targets"]) exprs.insert(t["expr"].as<std::string>());
  }
  for (const char* m :
       {"hami_vgpu_memory_used_bytes", "hami_vgpu_memory_limit_bytes",
        "hami_container_device_utilization_ratio", "hami_host_gpu_memory_used_bytes",
        "hami_host_gpu_utilization_ratio", "hami_container_last_kernel_elapsed_seconds",
        "hami_host_gpu_memory_controller_utilization_ratio"}) {
    bool found = false;
    for (const auto& x : exprs) found = found || x.find(m) != std::string::npos;
    EXPECT_TRUE(found) << m << " not on the dashboard";
  }
}

}  // namespace
}  // namespace hami::deviceplugin
