// deploy/helm/hami rendered as `helm template` would (tests/deploy/helm_render.h): with HAMi's
// own values file (tests/deploy/testdata/hami-v2.10-values.yaml, HAMi v2.10's keys and
// defaults) unchanged, and with HAMi's keys changed, each of which must carry HAMi's meaning into
// the objects (docs/hami-compatibility.md, "Helm values"); values of the wrong type fail by name.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "deploy/helm_render.h"
#include "deviceplugin/config.h"

namespace hami::deploytest {
namespace {

const std::string kChart = std::string(HAMI_DEPLOY_DIR) + "/helm/hami";

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string HamiValues() {
  return Slurp(std::string(HAMI_TESTDATA_DIR) + "/hami-v2.10-values.yaml");
}

struct Objects {
  std::vector<YAML::Node> docs;
  YAML::Node Find(const std::string& kind, const std::string& name) const {
    for (const auto& d : docs)
      if (d["kind"].as<std::string>() == kind && d["metadata"]["name"].as<std::string>() == name)
        return d;
    return YAML::Node();
  }
};

Objects Render(const std::vector<std::string>& values) {
  auto r = RenderChart(kChart, values);
  EXPECT_TRUE(r.ok()) << r.status().message();
  Objects o;
  if (!r.ok()) return o;
  for (const auto& [file, text] : *r) {
    if (file.size() < 5 || file.substr(file.size() - 5) != ".yaml") continue;
    for (const auto& d : YAML::LoadAll(text))
      if (d.IsMap()) o.docs.push_back(d);
  }
  return o;
}

YAML::Node Container(const YAML::Node& pod_spec, const std::string& name) {
  for (const auto& c : pod_spec["containers"])
    if (c["name"].as<std::string>() == name) return c;
  ADD_FAILURE() << "no container " << name;
  return YAML::Node(YAML::NodeType::Map);
}
std::vector<std::string> Args(const YAML::Node& c) {
  return c["command"] ? c["command"].as<std::vector<std::string>>() : std::vector<std::string>{};
}
bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
std::string Error(const std::vector<std::string>& values) {
  auto r = RenderChart(kChart, values);
  return r.ok() ? "" : r.status().message();
}

TEST(NodeChartRender, HamiValuesFileRendersAsIsWithHamiMeaning) {
  Objects o = Render({HamiValues()});
  ASSERT_GE(o.docs.size(), 15u);
  YAML::Node dep = o.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep.IsMap());
  const YAML::Node spec = dep["spec"]["template"]["spec"];
  // kube-scheduler: HAMi's image and extraNewArgs (its --config is the chart's own, once).
  YAML::Node ks = Container(spec, "kube-scheduler");
  EXPECT_EQ(ks["image"].as<std::string>(),
            "registry.cn-hangzhou.aliyuncs.com/google_containers/kube-scheduler:v1.29.0");
  auto ksa = Args(ks);
  EXPECT_EQ(std::count_if(ksa.begin(), ksa.end(),
                          [](const std::string& a) { return a.rfind("--config", 0) == 0; }),
            1);
  EXPECT_TRUE(Has(ksa, "-v=4"));
  EXPECT_TRUE(Has(ksa, "--leader-elect=true"));  // HAMi's leaderElect: true
  EXPECT_FALSE(Has(ksa, "--policy-config-file=/config/config.json"));
  // The extender: HAMi's image stands for this project's; HAMi's arguments and settings.
  YAML::Node ext = Container(spec, "hami-scheduler");
  EXPECT_EQ(ext["image"].as<std::string>(), "ghcr.io/hami-cpp/hami-scheduler:0.1.0");
  EXPECT_EQ(ext["imagePullPolicy"].as<std::string>(), "IfNotPresent");
  auto ea = Args(ext);
  for (const char* a : {"--metrics-bind-address=:9395", "--leader-elect", "--debug", "-v=4",
                        "--scheduler-name=hami-scheduler", "--node-scheduler-policy=binpack",
                        "--gpu-scheduler-policy=spread", "--node-lock=auto",
                        "--node-lock-expire=5m"})  // HAMi's nodeLockExpire
    EXPECT_TRUE(Has(ea, a)) << a;
  EXPECT_FALSE(Has(ea, "--force-overwrite-default-scheduler=false"));
  YAML::Node svc = o.Find("Service", "hami-scheduler");
  ASSERT_TRUE(svc.IsMap());
  EXPECT_EQ(svc["spec"]["ports"][1]["name"].as<std::string>(), "metrics");
  EXPECT_EQ(svc["spec"]["ports"][1]["port"].as<int>(), 9395);
  YAML::Node scm = o.Find("ConfigMap", "hami-scheduler-config");
  YAML::Node sc = YAML::Load(scm["data"]["config.yaml"].as<std::string>());
  EXPECT_TRUE(sc["leaderElection"]["leaderElect"].as<bool>());
  EXPECT_EQ(sc["extenders"][0]["httpTimeout"].as<std::string>(), "30s");

  // Device plugin and monitor.
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  const YAML::Node dspec = ds["spec"]["template"]["spec"];
  YAML::Node dp = Container(dspec, "device-plugin");
  EXPECT_EQ(dp["image"].as<std::string>(), "ghcr.io/hami-cpp/hami-device-plugin:0.1.0");
  auto da = Args(dp);
  for (const char* a : {"--gpu-core-policy=default", "--disable-core-limit=false",
                        "--mig-strategy=none", "--device-split-count=10",
                        "--device-memory-scaling=1", "--hook-path=/usr/local", "--log-level=debug"})
    EXPECT_TRUE(Has(da, a)) << a;
  EXPECT_FALSE(Has(da, "-v=4"));  // klog's flag, which the plugin does not take
  auto ma = Args(Container(dspec, "vgpu-monitor"));
  EXPECT_TRUE(Has(ma, "--log-level=debug"));
  EXPECT_FALSE(Has(ma, "--legacy-metrics=true"));
  EXPECT_EQ(dspec["tolerations"][0]["key"].as<std::string>(), "nvidia.com/gpu");
  EXPECT_EQ(ds["spec"]["updateStrategy"]["type"].as<std::string>(), "RollingUpdate");

  // device-config.yaml and HAMi's node configuration parse with the plugin's own parsers.
  YAML::Node cm = o.Find("ConfigMap", "hami-device-config");
  ASSERT_TRUE(cm.IsMap());
  auto cfg = deviceplugin::ParsePluginConfig(cm["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.resource_count_name, "nvidia.com/gpu");
  EXPECT_EQ(cfg->nvidia.resource_core_name, "nvidia.com/gpucores");
  EXPECT_EQ(cfg->nvidia.gpu_core_policy, "default");
  EXPECT_EQ(cfg->nvidia.lib_cuda_log_level, 1);
  EXPECT_FALSE(cfg->nvidia.disable_core_limit);
  YAML::Node ncm = o.Find("ConfigMap", "hami-device-plugin-config");
  ASSERT_TRUE(ncm.IsMap());
  auto s = deviceplugin::ParseNodeConfigs(ncm["data"]["config.json"].as<std::string>(), *cfg);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(cfg->nodes.size(), 1u);
  EXPECT_EQ(cfg->nodes[0].name, "your-node-name");
  EXPECT_EQ(cfg->nodes[0].device_split_count, 10);
}

TEST(NodeChartRender, HamiKeysChangedTakeEffect) {
  const std::string changes = R"(
global:
  imageRegistry: mirror.example.com
  imagePullSecrets: [regcred]
resourceName: example.com/vgpu
resourceMem: example.com/vgpu-memory
resourceCores: example.com/vgpu-cores
schedulerName: my-scheduler
legacyMetrics: true
devices:
  nvidia:
    gpuCorePolicy: force
    libCudaLogLevel: 3
scheduler:
  metricsBindAddress: "127.0.0.1:9500"
  leaderElect: false
  forceOverwriteDefaultScheduler: false
  nodeLock: hami
  nodeLockExpire: 90s
  kubeQPS: "50"
  defaultSchedulerPolicy:
    nodeSchedulerPolicy: spread
    gpuSchedulerPolicy: binpack
  service:
    type: NodePort
  extender:
    image:
      repository: myorg/hami-cpp-scheduler
      tag: v7
      pullPolicy: Always
devicePlugin:
  disablecorelimit: "true"
  deviceSplitCount: 4
  deviceMemoryScaling: 1.5
  nodeConfiguration:
    externalConfigName: site-node-config
)";
  Objects o = Render({HamiValues(), changes});
  YAML::Node dep = o.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep.IsMap());
  const YAML::Node spec = dep["spec"]["template"]["spec"];
  EXPECT_EQ(spec["imagePullSecrets"][0]["name"].as<std::string>(), "regcred");
  YAML::Node ext = Container(spec, "hami-scheduler");
  EXPECT_EQ(ext["image"].as<std::string>(), "mirror.example.com/myorg/hami-cpp-scheduler:v7");
  EXPECT_EQ(ext["imagePullPolicy"].as<std::string>(), "Always");
  EXPECT_EQ(Container(spec, "kube-scheduler")["image"].as<std::string>(),
            "mirror.example.com/google_containers/kube-scheduler:v1.29.0");
  auto ea = Args(ext);
  for (const char* a : {"--metrics-bind-address=127.0.0.1:9500", "--scheduler-name=my-scheduler",
                        "--node-scheduler-policy=spread", "--gpu-scheduler-policy=binpack",
                        "--force-overwrite-default-scheduler=false", "--kube-qps=50",
                        "--node-lock=hami", "--node-lock-expire=90s"})
    EXPECT_TRUE(Has(ea, a)) << a;
  EXPECT_FALSE(Has(ea, "--leader-elect"));
  EXPECT_TRUE(Has(Args(Container(spec, "kube-scheduler")), "--leader-elect=false"));
  YAML::Node svc = o.Find("Service", "hami-scheduler");
  EXPECT_EQ(svc["spec"]["ports"][0]["nodePort"].as<int>(), 31998);
  EXPECT_EQ(svc["spec"]["ports"][1]["port"].as<int>(), 9500);
  EXPECT_EQ(svc["spec"]["ports"][1]["nodePort"].as<int>(), 31993);
  YAML::Node sc = YAML::Load(
      o.Find("ConfigMap", "hami-scheduler-config")["data"]["config.yaml"].as<std::string>());
  EXPECT_EQ(sc["profiles"][0]["schedulerName"].as<std::string>(), "my-scheduler");
  std::vector<std::string> managed;
  for (const auto& m : sc["extenders"][0]["managedResources"])
    managed.push_back(m["name"].as<std::string>());
  EXPECT_TRUE(Has(managed, "example.com/vgpu"));
  EXPECT_TRUE(Has(managed, "example.com/vgpu-cores"));

  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  const YAML::Node dspec = ds["spec"]["template"]["spec"];
  YAML::Node dp = Container(dspec, "device-plugin");
  EXPECT_EQ(dp["image"].as<std::string>(), "mirror.example.com/hami-cpp/hami-device-plugin:0.1.0");
  auto da = Args(dp);
  for (const char* a : {"--gpu-core-policy=force", "--disable-core-limit=true",
                        "--device-split-count=4", "--device-memory-scaling=1.5"})
    EXPECT_TRUE(Has(da, a)) << a;
  EXPECT_TRUE(Has(Args(Container(dspec, "vgpu-monitor")), "--legacy-metrics=true"));
  // An existing ConfigMap of node configuration: mounted, not created.
  bool mounted = false;
  for (const auto& v : dspec["volumes"])
    mounted = mounted ||
              (v["configMap"] && v["configMap"]["name"].as<std::string>() == "site-node-config");
  EXPECT_TRUE(mounted);
  EXPECT_FALSE(o.Find("ConfigMap", "hami-device-plugin-config").IsMap());

  auto cfg = deviceplugin::ParsePluginConfig(
      o.Find("ConfigMap", "hami-device-config")["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.resource_count_name, "example.com/vgpu");
  EXPECT_EQ(cfg->nvidia.resource_memory_name, "example.com/vgpu-memory");
  EXPECT_EQ(cfg->nvidia.gpu_core_policy, "force");
  EXPECT_EQ(cfg->nvidia.lib_cuda_log_level, 3);
  EXPECT_TRUE(cfg->nvidia.disable_core_limit);
  EXPECT_EQ(cfg->nvidia.device_split_count, 4);
  EXPECT_DOUBLE_EQ(cfg->nvidia.device_memory_scaling, 1.5);
}

TEST(NodeChartRender, MoreHamiKeysTakeEffect) {
  Objects o = Render({HamiValues(), R"(
device-config:
  content: |
    nvidia:
      resourceCountName: nvidia.com/gpu
      resourceMemoryName: nvidia.com/gpumem
      resourceCoreName: nvidia.com/gpucores
      deviceSplitCount: 7
      defaultMemory: 2048
devicePlugin:
  extraEnvs:
    - name: SITE_ENV
      value: "1"
  monitor:
    extraEnvs: {MONITOR_ENV: 2}
  image:
    pullSecrets: [dp-secret]
scheduler:
  admissionWebhook:
    namespaceSelector:
      matchLabels: {team: ml}
      matchExpressions:
        - {key: environment, operator: NotIn, values: [staging]}
    objectSelector:
      matchExpressions:
        - {key: hami.io/enable, operator: In, values: ["true"]}
)"});
  // A whole device-config.yaml: it is the file, and no flag overrides it.
  YAML::Node cm = o.Find("ConfigMap", "hami-device-config");
  ASSERT_TRUE(cm.IsMap());
  auto cfg = deviceplugin::ParsePluginConfig(cm["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.device_split_count, 7);
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  const YAML::Node dspec = ds["spec"]["template"]["spec"];
  YAML::Node dp = Container(dspec, "device-plugin");
  for (const auto& a : Args(dp)) EXPECT_NE(a.rfind("--device-split-count", 0), 0u) << a;
  YAML::Node dep = o.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep.IsMap());
  for (const auto& a : Args(Container(dep["spec"]["template"]["spec"], "hami-scheduler")))
    EXPECT_NE(a.rfind("--default-mem", 0), 0u) << a;
  // extraEnvs, as HAMi's list and as a map.
  bool site = false, mon = false;
  for (const auto& e : dp["env"]) site = site || e["name"].as<std::string>() == "SITE_ENV";
  for (const auto& e : Container(dspec, "vgpu-monitor")["env"])
    mon = mon ||
          (e["name"].as<std::string>() == "MONITOR_ENV" && e["value"].as<std::string>() == "2");
  EXPECT_TRUE(site);
  EXPECT_TRUE(mon);
  EXPECT_EQ(dspec["imagePullSecrets"][0]["name"].as<std::string>(), "dp-secret");
  // The webhook's selectors keep the chart's own expressions and gain HAMi's.
  YAML::Node wh = o.Find("MutatingWebhookConfiguration", "hami-webhook");
  ASSERT_TRUE(wh.IsMap());
  const YAML::Node w = wh["webhooks"][0];
  EXPECT_EQ(w["namespaceSelector"]["matchLabels"]["team"].as<std::string>(), "ml");
  ASSERT_EQ(w["namespaceSelector"]["matchExpressions"].size(), 2u);
  EXPECT_EQ(w["namespaceSelector"]["matchExpressions"][1]["key"].as<std::string>(), "environment");
  ASSERT_EQ(w["objectSelector"]["matchExpressions"].size(), 2u);
  EXPECT_EQ(w["objectSelector"]["matchExpressions"][1]["key"].as<std::string>(), "hami.io/enable");
  EXPECT_EQ(w["failurePolicy"].as<std::string>(), "Ignore");
  EXPECT_EQ(w["clientConfig"]["service"]["name"].as<std::string>(), "hami-scheduler");

  // HAMi's customURL: the API server calls the NodePort URL instead of the Service.
  Objects cu = Render({HamiValues(),
                       "scheduler: {admissionWebhook: {customURL: {enabled: true, "
                       "host: 10.0.0.5}}, service: {type: NodePort}}"});
  YAML::Node cwh = cu.Find("MutatingWebhookConfiguration", "hami-webhook");
  ASSERT_TRUE(cwh.IsMap());
  EXPECT_EQ(cwh["webhooks"][0]["clientConfig"]["url"].as<std::string>(),
            "https://10.0.0.5:31998/webhook");
  EXPECT_FALSE(cwh["webhooks"][0]["clientConfig"]["service"].IsDefined());
  EXPECT_EQ(cu.Find("Service", "hami-scheduler")["spec"]["ports"][0]["nodePort"].as<int>(), 31998);

  // The scheduler pod's own HAMi keys.
  Objects sched = Render({HamiValues(),
                          "scheduler: {nodeName: cp-1, livenessProbe: true, "
                          "kubeScheduler: {enabled: false}}"});
  YAML::Node sdep = sched.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(sdep.IsMap());
  const YAML::Node sspec = sdep["spec"]["template"]["spec"];
  EXPECT_EQ(sspec["nodeName"].as<std::string>(), "cp-1");
  EXPECT_EQ(sspec["containers"].size(), 1u);
  EXPECT_EQ(
      Container(sspec, "hami-scheduler")["livenessProbe"]["httpGet"]["path"].as<std::string>(),
      "/readyz");

  // Several replicas only with leader election, then with a PodDisruptionBudget.
  for (const bool elect : {false, true}) {
    Objects rep = Render({HamiValues(), std::string("scheduler: {replicas: 3, leaderElect: ") +
                                            (elect ? "true" : "false") + "}"});
    YAML::Node rdep = rep.Find("Deployment", "hami-scheduler");
    ASSERT_TRUE(rdep.IsMap());
    EXPECT_EQ(rdep["spec"]["replicas"].as<int>(), elect ? 3 : 1);
    YAML::Node pdb = rep.Find("PodDisruptionBudget", "hami-scheduler");
    EXPECT_EQ(pdb.IsMap(), elect);
    if (elect) {
      EXPECT_EQ(pdb["spec"]["minAvailable"].as<int>(), 1);
    }
  }

  // HAMi's topology-aware default GPU policy has no counterpart: spread, HAMi's default.
  Objects topo = Render(
      {HamiValues(), "scheduler: {defaultSchedulerPolicy: {gpuSchedulerPolicy: topology-aware}}"});
  YAML::Node tdep = topo.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(tdep.IsMap());
  EXPECT_TRUE(Has(Args(Container(tdep["spec"]["template"]["spec"], "hami-scheduler")),
                  "--gpu-scheduler-policy=spread"));

  // devicePlugin.enabled: false leaves the nodes to another device plugin.
  Objects off = Render({HamiValues(), "devicePlugin: {enabled: false}"});
  EXPECT_FALSE(off.Find("DaemonSet", "hami-device-plugin").IsMap());
  EXPECT_TRUE(off.Find("Deployment", "hami-scheduler").IsMap());
}

// This chart's own older form: image as a string with imageTag.
TEST(NodeChartRender, StringImageFormStillWorks) {
  Objects o = Render({"devicePlugin: {image: registry.example/dp, imageTag: v3}"});
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  EXPECT_EQ(Container(ds["spec"]["template"]["spec"], "device-plugin")["image"].as<std::string>(),
            "registry.example/dp:v3");
}

// HAMi before the image maps (its v2.4-v2.6 charts): images as strings with imagePullPolicy
// beside them, the monitor's image as devicePlugin.monitorimage, its path monitorctrPath.
TEST(NodeChartRender, OlderHamiImageKeys) {
  Objects o = Render({R"(
imagePullSecrets: [ ]
version: "v2.6.0"
scheduler:
  kubeScheduler:
    image: registry.cn-hangzhou.aliyuncs.com/google_containers/kube-scheduler
    imageTag: "v1.28.2"
    imagePullPolicy: Always
    extraNewArgs: [--config=/config/config.yaml, -v=4]
    extraArgs: [--policy-config-file=/config/config.json, -v=4]
  extender:
    image: "projecthami/hami"
    imagePullPolicy: Always
devicePlugin:
  image: "projecthami/hami"
  monitorimage: "projecthami/hami"
  monitorctrPath: /usr/local/vgpu/containers
  imagePullPolicy: Always
)"});
  YAML::Node dep = o.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep.IsMap());
  const YAML::Node spec = dep["spec"]["template"]["spec"];
  YAML::Node ks = Container(spec, "kube-scheduler");
  EXPECT_EQ(ks["image"].as<std::string>(),
            "registry.cn-hangzhou.aliyuncs.com/google_containers/kube-scheduler:v1.28.2");
  EXPECT_EQ(ks["imagePullPolicy"].as<std::string>(), "Always");
  EXPECT_FALSE(Has(Args(ks), "--policy-config-file=/config/config.json"));
  YAML::Node ext = Container(spec, "hami-scheduler");
  EXPECT_EQ(ext["image"].as<std::string>(), "ghcr.io/hami-cpp/hami-scheduler:0.1.0");
  EXPECT_EQ(ext["imagePullPolicy"].as<std::string>(), "Always");
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  for (const char* c : {"device-plugin", "vgpu-monitor"}) {
    YAML::Node x = Container(ds["spec"]["template"]["spec"], c);
    EXPECT_EQ(x["image"].as<std::string>(), "ghcr.io/hami-cpp/hami-device-plugin:0.1.0") << c;
    EXPECT_EQ(x["imagePullPolicy"].as<std::string>(), "Always") << c;
  }
  EXPECT_NE(Error({"devicePlugin: {monitorctrPath: /data/containers}"}).find("ctrPath"),
            std::string::npos);
}

// Go prints a float64 of 1000000 as 1e+06 (every number in Helm values is one): whole-number
// settings are printed as integers so a large value does not reach a flag as "1e+06".
TEST(NodeChartRender, LargeNumbersRenderAsIntegers) {
  Objects o =
      Render({"scheduler: {defaultMem: 1000000, extender: {allocateTimeoutMs: 1200000}}\n"
              "devicePlugin: {monitor: {activeWindowMs: 3600000}}\n"});
  YAML::Node dep = o.Find("Deployment", "hami-scheduler");
  ASSERT_TRUE(dep.IsMap());
  auto ea = Args(Container(dep["spec"]["template"]["spec"], "hami-scheduler"));
  EXPECT_TRUE(Has(ea, "--default-mem=1000000"));
  EXPECT_TRUE(Has(ea, "--allocate-timeout-ms=1200000"));
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  EXPECT_TRUE(Has(Args(Container(ds["spec"]["template"]["spec"], "vgpu-monitor")),
                  "--active-window-ms=3600000"));
  auto cfg = deviceplugin::ParsePluginConfig(
      o.Find("ConfigMap", "hami-device-config")["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.default_memory, 1000000);
}

TEST(NodeChartRender, ThisChartsKeyWinsOverHamis) {
  Objects o = Render({HamiValues(), R"(
devices: {nvidia: {gpuCorePolicy: force, libCudaLogLevel: 4}}
devicePlugin: {gpuCorePolicy: disable, libCudaLogLevel: 0, disablecorelimit: "true", disableCoreLimit: false}
)"});
  YAML::Node ds = o.Find("DaemonSet", "hami-device-plugin");
  ASSERT_TRUE(ds.IsMap());
  auto da = Args(Container(ds["spec"]["template"]["spec"], "device-plugin"));
  EXPECT_TRUE(Has(da, "--gpu-core-policy=disable"));
  EXPECT_TRUE(Has(da, "--disable-core-limit=false"));
  auto cfg = deviceplugin::ParsePluginConfig(
      o.Find("ConfigMap", "hami-device-config")["data"]["device-config.yaml"].as<std::string>());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->nvidia.lib_cuda_log_level, 0);
}

TEST(NodeChartRender, ValuesOfTheWrongTypeFailNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"devicePlugin: {deviceSplitCount: ten}", "devicePlugin.deviceSplitCount"},
      {"devicePlugin: {deviceSplitCount: 2.5}", "devicePlugin.deviceSplitCount"},
      {"devicePlugin: {deviceSplitCount: 0}", "devicePlugin.deviceSplitCount"},
      {"devicePlugin: {deviceMemoryScaling: \"1.5\"}", "devicePlugin.deviceMemoryScaling"},
      {"devicePlugin: {disablecorelimit: maybe}", "disablecorelimit"},
      {"devices: {nvidia: {gpuCorePolicy: sometimes}}", "gpuCorePolicy"},
      {"devices: {nvidia: {libCudaLogLevel: loud}}", "libCudaLogLevel"},
      {"devicePlugin: {nodeConfiguration: {config: \"{not json\"}}", "nodeConfiguration.config"},
      {"devicePlugin: {nodeConfiguration: {config: \"{}\"}}", "nodeConfiguration.config"},
      {"devicePlugin: {image: 5}", "devicePlugin.image"},
      {"devicePlugin: {image: {pullPolicy: Sometimes}}", "devicePlugin.image.pullPolicy"},
      {"devicePlugin: {libPath: /opt/vgpu}", "devicePlugin.libPath"},
      {"devicePlugin: {monitor: {ctrPath: /opt/containers}}", "devicePlugin.monitor.ctrPath"},
      {"scheduler: {metricsBindAddress: \"9395\"}", "scheduler.metricsBindAddress"},
      {"scheduler: {leaderElect: yes-please}", "scheduler.leaderElect"},
      {"scheduler: {extenderHTTPTimeout: 30s}", "scheduler.extenderHTTPTimeout"},
      {"legacyMetrics: \"sometimes\"", "legacyMetrics"},
      {"global: {imagePullSecrets: [5]}", "imagePullSecrets"},
      {"devicePlugin: {extraEnvs: oops}", "devicePlugin.extraEnvs"},
      {"scheduler: {defaultSchedulerPolicy: {nodeSchedulerPolicy: packed}}", "nodeSchedulerPolicy"},
      {"scheduler: {defaultSchedulerPolicy: {gpuSchedulerPolicy: 5}}", "gpuSchedulerPolicy"},
      {"resourceName: [a, b]", "resourceName"},
      {"devicePlugin: {registerFormat: yaml}", "devicePlugin.registerFormat"},
      {"scheduler: {defaultMem: 1.5}", "scheduler.defaultMem"},
      {"scheduler: {admissionWebhook: {customURL: {enabled: true, host: \"\"}}}", "customURL"},
      {"scheduler: {extender: {allocateTimeoutMs: soon}}", "scheduler.extender.allocateTimeoutMs"},
      {"schedulerName: \"\"", "schedulerName"},
      {"device-config: {content: [1]}", "device-config.content"},
  };
  for (const auto& [bad, key] : cases) {
    const std::string err = Error({HamiValues(), bad});
    EXPECT_NE(err.find(key), std::string::npos) << bad << " -> '" << err << "'";
  }
  EXPECT_EQ(Error({HamiValues()}), "");
}

// First difference between two YAML trees (maps compared as unordered), as a path; "" if equal.
std::string Diff(const YAML::Node& a, const YAML::Node& b, const std::string& path) {
  if (a.Type() != b.Type()) return path + " (shape)";
  if (a.IsScalar())
    return a.Scalar() == b.Scalar() ? "" : path + ": " + a.Scalar() + " vs " + b.Scalar();
  if (a.IsSequence()) {
    if (a.size() != b.size()) return path + " (length)";
    for (std::size_t i = 0; i < a.size(); ++i)
      if (auto d = Diff(a[i], b[i], path + "[" + std::to_string(i) + "]"); !d.empty()) return d;
    return "";
  }
  if (!a.IsMap()) return "";
  if (a.size() != b.size()) return path + " (keys)";
  for (const auto& kv : a) {
    const std::string k = kv.first.as<std::string>();
    if (!b[k]) return path + "." + k + " (missing)";
    if (auto d = Diff(kv.second, b[k], path + "." + k); !d.empty()) return d;
  }
  return "";
}

// What differs by design: the chart generates the webhook certificate (a Secret, the caBundle),
// the manifests make it with kube-webhook-certgen Jobs; labels and checksum annotations.
void Normalise(YAML::Node d) {
  d["metadata"].remove("labels");
  d["metadata"].remove("annotations");
  YAML::Node pod = d["spec"]["template"];
  if (pod.IsMap()) {
    pod["metadata"].remove("annotations");
    for (auto v : pod["spec"]["volumes"])
      if (v["secret"].IsMap()) v["secret"].remove("items");
  }
  if (d["webhooks"].IsSequence())
    for (auto w : d["webhooks"]) w["clientConfig"].remove("caBundle");
}

// deploy/manifests as `kubectl kustomize` gives it; without kubectl, its resources read directly
// with the kustomization's namespace set on namespaced objects (labels are not compared).
Objects PlainManifests() {
  const std::string dir = std::string(HAMI_DEPLOY_DIR) + "/manifests";
  Objects o;
  if (std::system("kubectl version --client >/dev/null 2>&1") == 0) {
    FILE* p = popen(("kubectl kustomize " + dir).c_str(), "r");
    std::string text;
    char buf[4096];
    for (std::size_t n; p && (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
    EXPECT_TRUE(p && pclose(p) == 0);
    for (const auto& d : YAML::LoadAll(text))
      if (d.IsMap()) o.docs.push_back(d);
    return o;
  }
  YAML::Node k = YAML::LoadFile(dir + "/kustomization.yaml");
  const std::string ns = k["namespace"].as<std::string>();
  const std::vector<std::string> cluster_scoped = {"ClusterRole", "ClusterRoleBinding",
                                                   "MutatingWebhookConfiguration", "Namespace"};
  for (const auto& r : k["resources"]) {
    for (auto d : YAML::LoadAll(Slurp(dir + "/" + r.as<std::string>()))) {
      if (!d.IsMap()) continue;
      if (!Has(cluster_scoped, d["kind"].as<std::string>()) && !d["metadata"]["namespace"])
        d["metadata"]["namespace"] = ns;
      o.docs.push_back(d);
    }
  }
  return o;
}

// The chart's defaults render to the plain manifests, object by object.
TEST(NodeChartRender, DefaultsRenderThePlainManifests) {
  Objects plain = PlainManifests();
  ASSERT_GE(plain.docs.size(), 20u);
  Objects chart = Render({});
  int compared = 0;
  for (const auto& c : chart.docs) {
    const std::string kind = c["kind"].as<std::string>(),
                      name = c["metadata"]["name"].as<std::string>();
    if (kind == "Secret") continue;  // the webhook certificate
    YAML::Node m = plain.Find(kind, name);
    ASSERT_TRUE(m.IsMap()) << kind << " " << name << " is not in deploy/manifests";
    YAML::Node a = YAML::Clone(c), b = YAML::Clone(m);
    Normalise(a);
    Normalise(b);
    EXPECT_EQ(Diff(a, b, kind + "/" + name), "");
    ++compared;
  }
  for (const auto& m : plain.docs) {
    const std::string name = m["metadata"]["name"].as<std::string>();
    if (name.find("certgen") == std::string::npos) {
      EXPECT_TRUE(chart.Find(m["kind"].as<std::string>(), name).IsMap())
          << name << " not in the chart";
    }
  }
  EXPECT_GE(compared, 15);
}

}  // namespace
}  // namespace hami::deploytest
