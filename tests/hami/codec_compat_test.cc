// HAMi's encoded strings replayed through this project's codecs: node register annotations
// (text <= v2.7, JSON v2.8+), pod device annotations, node lock values and device-config files.
// Every row of testdata/{register,pod_devices,node_lock,device_config}.json is one test case.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "compat_util.h"
#include "deviceplugin/devices.h"
#include "sched/annotation.h"
#include "sched/device_config.h"
#include "sched/node_codec.h"
#include "sched/node_lock.h"

namespace hami::compat {
namespace {

// ---- 1. node register annotation -------------------------------------------------------

class RegisterDecode : public ::testing::TestWithParam<Sample> {};

TEST_P(RegisterDecode, DecodesAsHamiDoes) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& want = s.data["expect"];
  auto got = sched::DecodeNodeRegister(s.data["annotation"].get<std::string>());
  if (!want["ok"].get<bool>()) {
    EXPECT_FALSE(got.ok()) << Where(s) << " decoded, HAMi refuses it";
    if (!got.ok()) {
      EXPECT_FALSE(got.status().message().empty());
    }
    return;
  }
  ASSERT_TRUE(got.ok()) << Where(s) << ": " << got.status().ToString();
  const Json& devs = want["devices"];
  ASSERT_EQ(got->size(), devs.size()) << Where(s);
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const Json& d = devs[i];
    const sched::GpuInfo& g = (*got)[i];
    SCOPED_TRACE(Where(s) + " device " + std::to_string(i));
    EXPECT_EQ(g.uuid, d["id"].get<std::string>());
    EXPECT_EQ(g.index, d["index"].get<int>());
    EXPECT_EQ(g.split_count, d["count"].get<int>());
    EXPECT_EQ(g.memory_mib, d["devmem"].get<int64_t>());
    EXPECT_EQ(g.cores, d["devcore"].get<int>());
    EXPECT_EQ(g.type, d["type"].get<std::string>());
    EXPECT_EQ(g.numa, d["numa"].get<int>());
    EXPECT_EQ(g.healthy, d["health"].get<bool>());
    if (d.contains("mode")) {
      EXPECT_EQ(sched::VgpuModeName(g.mode), d["mode"].get<std::string>());
    }
  }
  // What this scheduler would write back (JSON) reads as the same devices.
  auto again = sched::DecodeNodeRegister(sched::EncodeNodeRegister(*got));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *got) << Where(s);
}

INSTANTIATE_TEST_SUITE_P(Hami, RegisterDecode,
                         ::testing::ValuesIn(LoadTable("register.json", "decode")),
                         [](const auto& i) { return ParamName(i.param); });

class RegisterEncode : public ::testing::TestWithParam<Sample> {};

TEST_P(RegisterEncode, DevicePluginWritesWhatHamiWrites) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  const Json& g = s.data["gpu"];
  deviceplugin::NodeGpu gpu;
  gpu.info.uuid = g["uuid"].get<std::string>();
  gpu.info.index = g["index"].get<unsigned>();
  gpu.info.name = g["nvml_name"].get<std::string>();
  gpu.info.memory_bytes = g["memory_mib"].get<uint64_t>() << 20;
  gpu.info.numa = g["numa"].get<int>();
  deviceplugin::NodeConfig config;
  config.nvidia.device_split_count = s.data["config"]["device_split_count"].get<int>();
  config.nvidia.device_memory_scaling = s.data["config"]["device_memory_scaling"].get<double>();
  config.nvidia.device_core_scaling = s.data["config"]["device_core_scaling"].get<double>();
  std::string format = s.data["format"].get<std::string>();
  std::string got = deviceplugin::EncodeRegisterAnnotation({gpu}, config, format);
  if (format == "text") {
    EXPECT_EQ(got, s.data["want"].get<std::string>()) << Where(s);
    return;
  }
  Json ours = Json::parse(got, nullptr, false);
  ASSERT_TRUE(ours.is_array()) << got;
  const Json& want = s.data["want_json"];
  ASSERT_EQ(ours.size(), want.size()) << Where(s);
  for (std::size_t i = 0; i < want.size(); ++i) {
    for (auto it = want[i].begin(); it != want[i].end(); ++it) {
      ASSERT_TRUE(ours[i].contains(it.key())) << Where(s) << ": no key " << it.key();
      EXPECT_EQ(ours[i][it.key()], it.value()) << Where(s) << ": key " << it.key();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Hami, RegisterEncode,
                         ::testing::ValuesIn(LoadTable("register.json", "encode")),
                         [](const auto& i) { return ParamName(i.param); });

// ---- 2. pod device annotations -----------------------------------------------------------

std::vector<sched::ContainerDevices> Containers(const Json& j) {
  std::vector<sched::ContainerDevices> out;
  for (const Json& c : j) {
    sched::ContainerDevices devs;
    for (const Json& d : c) {
      devs.push_back({d[0].get<std::string>(), d[1].get<std::string>(), d[2].get<int64_t>(),
                      d[3].get<int32_t>()});
    }
    out.push_back(devs);
  }
  return out;
}

// Decodes `annotation` with the scheduler's codec and the device plugin's, checks both against
// the sample, and re-encodes.
void CheckPodAnnotation(const Sample& s, const std::string& annotation,
                        const std::vector<sched::ContainerDevices>& want, bool ok,
                        const std::string& reencode) {
  auto sched = sched::DecodePlacement(annotation, s.data.value("num_init", 0));
  auto plugin = deviceplugin::ParsePodDevices(annotation);
  if (!ok) {
    EXPECT_FALSE(sched.ok()) << Where(s) << ": the scheduler decoded it, HAMi refuses it";
    EXPECT_FALSE(plugin.ok()) << Where(s) << ": the device plugin decoded it, HAMi refuses it";
    return;
  }
  ASSERT_TRUE(sched.ok()) << Where(s) << ": " << sched.status().ToString();
  ASSERT_TRUE(plugin.ok()) << Where(s) << ": " << plugin.status().ToString();
  EXPECT_EQ(sched->containers, want) << Where(s);
  EXPECT_EQ(*plugin, want) << Where(s);
  auto encoded = sched::EncodeContainerDevices(want);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(*encoded, reencode) << Where(s);
}

class PodDevicesContainer : public ::testing::TestWithParam<Sample> {};

TEST_P(PodDevicesContainer, OneContainerSegment) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& want = s.data["expect"];
  // HAMi's DecodeContainerDevices reads one container's devices; a pod annotation is that
  // segment followed by ';'.
  std::string annotation = s.data["segment"].get<std::string>() + ";";
  bool ok = want["ok"].get<bool>();
  std::vector<sched::ContainerDevices> containers;
  if (ok) containers = Containers(Json::array({want["devices"]}));
  std::string reencode = s.data.value("reencode", annotation);
  CheckPodAnnotation(s, annotation, containers, ok, reencode);
}

INSTANTIATE_TEST_SUITE_P(Hami, PodDevicesContainer,
                         ::testing::ValuesIn(LoadTable("pod_devices.json", "container")),
                         [](const auto& i) { return ParamName(i.param); });

class PodDevicesPod : public ::testing::TestWithParam<Sample> {};

TEST_P(PodDevicesPod, WholeAnnotationRoundTrip) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& want = s.data["expect"];
  std::string annotation = s.data["annotation"].get<std::string>();
  bool ok = want["ok"].get<bool>();
  std::vector<sched::ContainerDevices> containers;
  if (ok) containers = Containers(want["containers"]);
  CheckPodAnnotation(s, annotation, containers, ok, s.data.value("reencode", annotation));
}

INSTANTIATE_TEST_SUITE_P(Hami, PodDevicesPod,
                         ::testing::ValuesIn(LoadTable("pod_devices.json", "pod")),
                         [](const auto& i) { return ParamName(i.param); });

// ---- 6. node lock ------------------------------------------------------------------------

class NodeLockValue : public ::testing::TestWithParam<Sample> {};

TEST_P(NodeLockValue, ParsesAsHamiDoes) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& want = s.data["expect"];
  std::string value = s.data["value"].get<std::string>();
  auto lock = sched::ParseNodeLock(value);
  if (!want["ok"].get<bool>()) {
    EXPECT_FALSE(lock.ok()) << Where(s);
    if (want.contains("time_ok")) {
      EXPECT_EQ(sched::ParseNodeLockTime(value).ok(), want["time_ok"].get<bool>()) << Where(s);
    }
    return;
  }
  ASSERT_TRUE(lock.ok()) << Where(s) << ": " << lock.status().ToString();
  EXPECT_EQ(lock->ns, want["ns"].get<std::string>());
  EXPECT_EQ(lock->pod, want["pod"].get<std::string>());
  // Written back as HAMi's scheduler writes it (UTC), and read back the same.
  std::string utc = want["utc"].get<std::string>();
  std::string owner = lock->pod.empty() ? "" : "," + lock->ns + "," + lock->pod;
  EXPECT_EQ(sched::FormatNodeLock(*lock), utc + owner) << Where(s);
}

INSTANTIATE_TEST_SUITE_P(Hami, NodeLockValue,
                         ::testing::ValuesIn(LoadTable("node_lock.json", "parse")),
                         [](const auto& i) { return ParamName(i.param); });

// ---- 5. device configuration -------------------------------------------------------------

void CheckNvidia(const Sample& s, const sched::NvidiaConfig& n, const Json& want) {
  SCOPED_TRACE(Where(s));
  auto str = [&](const char* k, const std::string& got) {
    if (want.contains(k)) {
      EXPECT_EQ(got, want[k].get<std::string>()) << k;
    }
  };
  auto num = [&](const char* k, double got) {
    if (want.contains(k)) {
      EXPECT_DOUBLE_EQ(got, want[k].get<double>()) << k;
    }
  };
  str("resource_count_name", n.resource_count_name);
  str("resource_memory_name", n.resource_memory_name);
  str("resource_memory_percentage_name", n.resource_memory_percentage_name);
  str("resource_core_name", n.resource_core_name);
  str("resource_priority_name", n.resource_priority_name);
  str("gpu_core_policy", n.gpu_core_policy);
  num("default_memory", static_cast<double>(n.default_memory));
  num("default_cores", static_cast<double>(n.default_cores));
  num("default_gpu_num", static_cast<double>(n.default_gpu_num));
  num("memory_factor", n.memory_factor);
  num("device_split_count", n.device_split_count);
  num("device_memory_scaling", n.device_memory_scaling);
  num("device_core_scaling", n.device_core_scaling);
  if (want.contains("lib_cuda_log_level")) {
    ASSERT_TRUE(n.lib_cuda_log_level.has_value());
    EXPECT_EQ(*n.lib_cuda_log_level, want["lib_cuda_log_level"].get<int>());
  }
}

class DeviceConfigFile : public ::testing::TestWithParam<Sample> {};

TEST_P(DeviceConfigFile, LoadsAsHamiDoes) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& want = s.data["expect"];
  auto cfg = sched::ParseDeviceConfig(s.data["yaml"].get<std::string>());
  if (!want["ok"].get<bool>()) {
    EXPECT_FALSE(cfg.ok()) << Where(s);
    return;
  }
  ASSERT_TRUE(cfg.ok()) << Where(s) << ": " << cfg.status().ToString();
  CheckNvidia(s, cfg->nvidia, want["nvidia"]);
}

INSTANTIATE_TEST_SUITE_P(Hami, DeviceConfigFile,
                         ::testing::ValuesIn(LoadTable("device_config.json", "device_config")),
                         [](const auto& i) { return ParamName(i.param); });

class NodeConfigFile : public ::testing::TestWithParam<Sample> {};

TEST_P(NodeConfigFile, ResolvesForTheNode) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  const Json& want = s.data["expect"];
  sched::DeviceConfig cfg;
  Status st = sched::ParseNodeConfigs(s.data["json"].get<std::string>(), cfg);
  if (!want["ok"].get<bool>()) {
    EXPECT_FALSE(st.ok()) << Where(s);
    return;
  }
  ASSERT_TRUE(st.ok()) << Where(s) << ": " << st.ToString();
  auto node = sched::ResolveForNode(cfg, s.data["node"].get<std::string>());
  EXPECT_EQ(node.operating_mode, want["operating_mode"].get<std::string>()) << Where(s);
  EXPECT_DOUBLE_EQ(node.nvidia.device_memory_scaling, want["device_memory_scaling"].get<double>())
      << Where(s);
  EXPECT_EQ(node.nvidia.device_split_count, want["device_split_count"].get<int>()) << Where(s);
  EXPECT_EQ(node.filter_uuids, want["filter_uuids"].get<std::vector<std::string>>()) << Where(s);
  EXPECT_EQ(node.filter_indexes, want["filter_indexes"].get<std::vector<unsigned>>()) << Where(s);
}

INSTANTIATE_TEST_SUITE_P(Hami, NodeConfigFile,
                         ::testing::ValuesIn(LoadTable("device_config.json", "nodeconfig")),
                         [](const auto& i) { return ParamName(i.param); });

// ---- the tables and the documentation agree ----------------------------------------------

// Every documented difference names a section of docs/hami-compatibility.md that exists, and
// the page lists the suite; a row cannot claim a difference the page does not carry.
TEST(Suite, DifferencesPointAtTheCompatibilityPage) {
  std::ifstream in(HAMI_COMPAT_DOC);
  ASSERT_TRUE(in) << HAMI_COMPAT_DOC;
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  EXPECT_NE(doc.find("## Compatibility suite (tests/hami)"), std::string::npos);
  const std::pair<const char*, const char*> tables[] = {
      {"register.json", "decode"},          {"register.json", "encode"},
      {"pod_devices.json", "container"},    {"pod_devices.json", "pod"},
      {"node_lock.json", "parse"},          {"device_config.json", "device_config"},
      {"device_config.json", "nodeconfig"}, {"admission.json", "review"},
      {"extender.json", "request"}};
  int rows = 0, differs = 0;
  const std::string cite = "docs/hami-compatibility.md, '";
  for (const auto& [file, table] : tables) {
    for (const Sample& s : LoadTable(file, table)) {
      HAMI_COMPAT_LOADED(s);
      ++rows;
      if (!s.data.contains("expect_differs")) continue;
      ++differs;
      std::string why = s.data["expect_differs"].get<std::string>();
      auto at = why.find(cite);
      if (at == std::string::npos) {  // "as '<other sample>'": the reason is that row's
        EXPECT_EQ(why.rfind("as '", 0), 0u) << Where(s) << ": no section cited";
        continue;
      }
      std::string section = why.substr(at + cite.size());
      section = section.substr(0, section.find('\''));
      EXPECT_NE(doc.find("## " + section), std::string::npos)
          << Where(s) << ": docs/hami-compatibility.md has no section '" << section << "'";
    }
  }
  // The counts the page quotes.
  EXPECT_NE(doc.find(std::to_string(rows) + " samples, " + std::to_string(differs) +
                     " of them documented differences"),
            std::string::npos)
      << rows << " samples, " << differs << " differences: update the page's suite section";
}

}  // namespace
}  // namespace hami::compat

namespace hami::compat {
namespace {

// A table that cannot be read becomes one failing row, never zero rows (which would pass).
TEST(Suite, UnreadableTablesBecomeAFailingRow) {
  for (const auto& [file, table] :
       {std::pair{"no-such-file.json", "decode"}, std::pair{"register.json", "no_such_table"}}) {
    auto rows = LoadTable(file, table);
    ASSERT_EQ(rows.size(), 1u) << file << ":" << table;
    EXPECT_EQ(rows[0].name, "load_error");
    EXPECT_TRUE(rows[0].data.contains("load_error"));
  }
  EXPECT_GT(LoadTable("register.json", "decode").size(), 1u);
}

}  // namespace
}  // namespace hami::compat
