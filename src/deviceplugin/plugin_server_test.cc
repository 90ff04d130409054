// A simulated kubelet: a Registration server on a temp kubelet.sock plus a client that drives
// the plugin's ListAndWatch, GetPreferredAllocation and Allocate over the real unix sockets.
#include "deviceplugin/plugin_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "gpu/fake_backend.h"
#include "deviceplugin/fake_kube_api.h"
#include "gpu/nvml.h"
#include "deviceplugin_v1beta1.grpc.pb.h"

namespace hami::deviceplugin {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SimKubelet final : public v1beta1::Registration::Service {
 public:
  explicit SimKubelet(std::string dir) : dir_(std::move(dir)) {}
  ~SimKubelet() override { Stop(); }

  void Start() {
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + dir_ + "/kubelet.sock", grpc::InsecureServerCredentials());
    b.RegisterService(this);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  // Like a kubelet restart: the service goes away and the directory's sockets are removed.
  void Stop() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + 1s);
      server_->Wait();
      server_.reset();
    }
  }

  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* req,
                        v1beta1::Empty*) override {
    std::lock_guard lock(mu_);
    requests_.push_back(*req);
    cv_.notify_all();
    return grpc::Status::OK;
  }

  bool WaitRegistrations(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }
  v1beta1::RegisterRequest Last() {
    std::lock_guard lock(mu_);
    return requests_.back();
  }

 private:
  std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1beta1::RegisterRequest> requests_;
};

std::vector<gpu::GpuInfo> TwoGpus() {
  return {{"GPU-11111111-0000-0000-0000-000000000001", 0, "Tesla V100-SXM2-16GB", 16ull << 30, 0,
           false},
          {"GPU-11111111-0000-0000-0000-000000000002", 1, "Tesla V100-SXM2-16GB", 16ull << 30, 1,
           false}};
}

class KubeletSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hdp-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    opts_.socket_dir = dir_;
    opts_.node_name = "node-1";
    opts_.hook_path = dir_ + "/hook";
    opts_.config.nvidia.device_split_count = 3;
    opts_.watch_interval = 50ms;
    opts_.health_wait = 50ms;
    opts_.annotate_interval = 200ms;
    kubelet_ = std::make_unique<SimKubelet>(dir_);
    kubelet_->Start();
  }
  void TearDown() override {
    if (plugin_) plugin_->Stop();
    kubelet_.reset();
    fs::remove_all(dir_);
  }
  void StartPlugin(gpu::Backend* gpus) {
    plugin_ = std::make_unique<PluginServer>(opts_, gpus, &kube_);
    Status s = plugin_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(kubelet_->WaitRegistrations(1));
  }
  // The register annotation once GPU 0's health is `healthy` (or after 5 s).
  nlohmann::json WaitRegisterHealth(bool healthy) {
    nlohmann::json reg;
    for (int i = 0; i < 250; ++i) {
      auto annos = kube_.NodeAnnotations("node-1");
      if (annos.count(kRegisterAnnotation)) {
        reg = nlohmann::json::parse(annos.at(kRegisterAnnotation));
        if (reg[0]["health"] == healthy) break;
      }
      std::this_thread::sleep_for(20ms);
    }
    return reg;
  }
  std::unique_ptr<v1beta1::DevicePlugin::Stub> Connect() {
    auto r = kubelet_->Last();
    return v1beta1::DevicePlugin::NewStub(grpc::CreateChannel("unix:" + dir_ + "/" + r.endpoint(),
                                                              grpc::InsecureChannelCredentials()));
  }

  std::string dir_;
  PluginServerOptions opts_;
  gpu::FakeBackend gpus_{TwoGpus()};  // outlives plugin_ (TearDown stops it)
  FakeKubeApi kube_;
  std::unique_ptr<SimKubelet> kubelet_;
  std::unique_ptr<PluginServer> plugin_;
};

// Reads ListAndWatch responses until `pred` holds for one (or the deadline passes).
template <typename Pred>
bool ReadUntil(grpc::ClientReader<v1beta1::ListAndWatchResponse>* reader, Pred pred,
               v1beta1::ListAndWatchResponse* last) {
  while (reader->Read(last)) {
    if (pred(*last)) return true;
  }
  return false;
}

std::map<std::string, std::string> HealthById(const v1beta1::ListAndWatchResponse& r) {
  std::map<std::string, std::string> out;
  for (const auto& d : r.devices()) out[d.id()] = d.health();
  return out;
}

TEST_F(KubeletSimTest, RegistersAndAdvertisesSplitDevicesWithNuma) {
  StartPlugin(&gpus_);
  auto reg = kubelet_->Last();
  EXPECT_EQ(reg.version(), "v1beta1");
  EXPECT_EQ(reg.resource_name(), "nvidia.com/gpu");
  EXPECT_EQ(reg.endpoint(), "hami-nvidia.sock");
  EXPECT_TRUE(reg.options().get_preferred_allocation_available());
  EXPECT_TRUE(fs::exists(dir_ + "/hami-nvidia.sock"));

  auto stub = Connect();
  grpc::ClientContext octx;
  v1beta1::DevicePluginOptions options;
  ASSERT_TRUE(stub->GetDevicePluginOptions(&octx, v1beta1::Empty(), &options).ok());
  EXPECT_TRUE(options.get_preferred_allocation_available());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto reader = stub->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.devices_size(), 6);
  EXPECT_EQ(resp.devices(0).id(), "GPU-11111111-0000-0000-0000-000000000001::0");
  EXPECT_EQ(resp.devices(5).id(), "GPU-11111111-0000-0000-0000-000000000002::2");
  EXPECT_EQ(resp.devices(0).health(), "Healthy");
  ASSERT_EQ(resp.devices(4).topology().nodes_size(), 1);
  EXPECT_EQ(resp.devices(4).topology().nodes(0).id(), 1);
  ctx.TryCancel();

  // The node annotations appear without any pod.
  for (int i = 0; i < 100 && kube_.NodeAnnotations("node-1").empty(); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto annos = kube_.NodeAnnotations("node-1");
  auto reg_json = nlohmann::json::parse(annos.at("hami.io/node-nvidia-register"));
  ASSERT_EQ(reg_json.size(), 2u);
  EXPECT_EQ(reg_json[1]["count"], 3);
  EXPECT_EQ(reg_json[1]["devmem"], 16384);
  EXPECT_EQ(annos.at("hami.io/node-handshake").rfind("Reported_", 0), 0u);
}

TEST_F(KubeletSimTest, ReRegistersWhenKubeletRestarts) {
  StartPlugin(&gpus_);
  // kubelet restarts: its socket goes away, the directory is cleared, a new socket appears.
  kubelet_->Stop();
  fs::remove(dir_ + "/kubelet.sock");
  fs::remove(dir_ + "/hami-nvidia.sock");
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(plugin_->registrations(), 1);
  kubelet_->Start();
  ASSERT_TRUE(kubelet_->WaitRegistrations(2)) << "no re-registration";
  for (int i = 0; i < 200 && plugin_->registrations() < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(plugin_->registrations(), 2);
  // The plugin serves again on a fresh socket.
  auto stub = Connect();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto reader = stub->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.devices_size(), 6);
  ctx.TryCancel();
}

TEST_F(KubeletSimTest, HealthChangesReachKubeletBothWays) {
  StartPlugin(&gpus_);
  auto stub = Connect();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader = stub->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  const std::string a = TwoGpus()[0].uuid;
  const std::string b = TwoGpus()[1].uuid;

  gpus_.PushHealth(a, false, 79);
  ASSERT_TRUE(ReadUntil(
      reader.get(), [&](const auto& r) { return HealthById(r)[a + "::0"] == "Unhealthy"; }, &resp));
  auto h = HealthById(resp);
  EXPECT_EQ(h[a + "::2"], "Unhealthy");
  EXPECT_EQ(h[b + "::0"], "Healthy");
  // The node annotation follows (written right after the streams are told).
  auto reg = WaitRegisterHealth(false);
  EXPECT_EQ(reg[0]["health"], false);
  EXPECT_EQ(reg[1]["health"], true);

  gpus_.PushHealth(a, true, 0);
  ASSERT_TRUE(ReadUntil(
      reader.get(), [&](const auto& r) { return HealthById(r)[a + "::0"] == "Healthy"; }, &resp));
  EXPECT_EQ(HealthById(resp)[a + "::1"], "Healthy");
  reg = WaitRegisterHealth(true);
  EXPECT_EQ(reg[0]["health"], true);
  ctx.TryCancel();
}

PodInfo WaitingPod(const std::string& name, const std::string& to_allocate) {
  PodInfo p;
  p.ns = "default";
  p.name = name;
  p.uid = "0b7c-" + name;
  p.node_name = "node-1";
  p.annotations[kToAllocateAnnotation] = to_allocate;
  p.annotations[kBindPhaseAnnotation] = "allocating";
  p.annotations[kVgpuNodeAnnotation] = "node-1";
  p.containers = {{"main", {}, {}}};
  return p;
}

TEST_F(KubeletSimTest, AllocateServesTheBoundPodFieldByField) {
  StartPlugin(&gpus_);
  const std::string a = TwoGpus()[0].uuid;
  const std::string b = TwoGpus()[1].uuid;
  kube_.AddPod(WaitingPod("llm-0", b + ",NVIDIA,3000,30:;"));
  auto stub = Connect();

  // kubelet asks which slice it should take; the pod's real GPU comes first.
  v1beta1::PreferredAllocationRequest preq;
  auto* creq = preq.add_container_requests();
  for (const auto& id : {a + "::0", a + "::1", b + "::0", b + "::1"}) creq->add_available_deviceids(id);
  creq->set_allocation_size(1);
  v1beta1::PreferredAllocationResponse presp;
  grpc::ClientContext pctx;
  ASSERT_TRUE(stub->GetPreferredAllocation(&pctx, preq, &presp).ok());
  ASSERT_EQ(presp.container_responses_size(), 1);
  ASSERT_EQ(presp.container_responses(0).deviceids_size(), 1);
  EXPECT_EQ(presp.container_responses(0).deviceids(0), b + "::0");

  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids(b + "::0");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext actx;
  grpc::Status s = stub->Allocate(&actx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& c = resp.container_responses(0);
  const std::string root = dir_ + "/hook/vgpu";
  const std::string ctr_dir = root + "/containers/0b7c-llm-0_main";
  std::map<std::string, std::string> envs(c.envs().begin(), c.envs().end());
  std::map<std::string, std::string> want = {
      {"NVIDIA_VISIBLE_DEVICES", b},
      {"CUDA_DEVICE_MEMORY_LIMIT_0", "3000m"},
      {"CUDA_DEVICE_SM_LIMIT", "30"},
      {"CUDA_DEVICE_MEMORY_SHARED_CACHE", ctr_dir + "/vgpu.cache"},
      {"GPU_CORE_UTILIZATION_POLICY", "default"},
      {"HAMI_COMPUTE_BOARD_DIR", root + "/board"},
  };
  EXPECT_EQ(envs, want);
  ASSERT_EQ(c.mounts_size(), 6);
  EXPECT_EQ(c.mounts(0).container_path(), root + "/libvgpu.so");
  EXPECT_TRUE(c.mounts(0).read_only());
  EXPECT_EQ(c.mounts(1).host_path(), ctr_dir);
  EXPECT_FALSE(c.mounts(1).read_only());
  EXPECT_EQ(c.mounts(2).container_path(), "/etc/hami/vgpu.limits");
  EXPECT_EQ(c.mounts(2).host_path(), root + "/allocations/0b7c-llm-0_main/vgpu.limits");
  EXPECT_TRUE(c.mounts(2).read_only());
  EXPECT_TRUE(fs::exists(c.mounts(2).host_path()));
  EXPECT_EQ(c.mounts(3).container_path(), root + "/contention");
  EXPECT_EQ(c.mounts(4).container_path(), root + "/board");
  EXPECT_FALSE(c.mounts(4).read_only());
  EXPECT_EQ(c.mounts(5).container_path(), "/etc/ld.so.preload");
  EXPECT_EQ(c.mounts(5).host_path(), root + "/ld.so.preload");
  EXPECT_TRUE(c.mounts(5).read_only());
  auto pod = kube_.GetPod("default", "llm-0");
  EXPECT_EQ(pod->annotations[kToAllocateAnnotation], ";");
  EXPECT_EQ(pod->annotations[kBindPhaseAnnotation], "success");
}

TEST_F(KubeletSimTest, AllocateFailsWithZeroOrTwoCandidates) {
  StartPlugin(&gpus_);
  const std::string a = TwoGpus()[0].uuid;
  auto stub = Connect();
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids(a + "::0");

  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx0;
  grpc::Status s = stub->Allocate(&ctx0, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("found 0"), std::string::npos) << s.error_message();

  kube_.AddPod(WaitingPod("p1", a + ",NVIDIA,1000,10:;"));
  kube_.AddPod(WaitingPod("p2", a + ",NVIDIA,2000,20:;"));
  grpc::ClientContext ctx2;
  s = stub->Allocate(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("found 2"), std::string::npos) << s.error_message();
  EXPECT_EQ(kube_.GetPod("default", "p1")->annotations[kBindPhaseAnnotation], "allocating");
  EXPECT_EQ(kube_.GetPod("default", "p2")->annotations[kBindPhaseAnnotation], "allocating");
  EXPECT_FALSE(fs::exists(dir_ + "/hook/vgpu/allocations"));
}

#ifdef HAMI_FAKE_NVML
// The real NVML backend (dlopen) against the fake driver (src/fakegpu): discovery, NUMA and
// XID health events sent with fakegpu-ctl, through the plugin to the simulated kubelet.
class FakeNvmlKubeletTest : public KubeletSimTest {
 protected:
  void SetUp() override {
    KubeletSimTest::SetUp();
    cfg_ = dir_ + "/fakegpu.conf";
    state_ = dir_ + "/fakegpu.state";
    std::ofstream out(cfg_);
    out << "uuid=GPU-11111111-2222-3333-4444-555555555555 name=NVIDIA H100 80GB HBM3 mem=80g "
           "numa=0\n"
        << "uuid=GPU-11111111-2222-3333-4444-666666666666 name=NVIDIA H100 80GB HBM3 mem=80g "
           "numa=1\n";
    out.close();
    setenv("FAKEGPU_CONFIG", cfg_.c_str(), 1);
    setenv("FAKEGPU_STATE", state_.c_str(), 1);
    auto nvml = gpu::OpenNvml(HAMI_FAKE_NVML);
    ASSERT_TRUE(nvml.ok()) << nvml.status().ToString();
    nvml_ = std::move(*nvml);
  }
  void TearDown() override {
    if (plugin_) plugin_->Stop();
    plugin_.reset();
    nvml_.reset();
    KubeletSimTest::TearDown();
  }
  int Ctl(const std::string& args) {
    return std::system((std::string(HAMI_FAKEGPU_CTL) + " --state " + state_ + " --config " + cfg_ +
                        " " + args + " >/dev/null")
                           .c_str());
  }
  std::string cfg_, state_;
  std::unique_ptr<gpu::Backend> nvml_;
  const std::string a_ = "GPU-11111111-2222-3333-4444-555555555555";
  const std::string b_ = "GPU-11111111-2222-3333-4444-666666666666";
};

TEST_F(FakeNvmlKubeletTest, DiscoversGpusAndReportsXidAsUnhealthy) {
  auto listed = nvml_->ListGpus();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].uuid, a_);
  EXPECT_EQ((*listed)[1].numa, 1);
  EXPECT_EQ((*listed)[0].memory_bytes, 80ull << 30);

  StartPlugin(nvml_.get());
  auto stub = Connect();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader = stub->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.devices_size(), 6);
  EXPECT_EQ(resp.devices(3).id(), b_ + "::0");
  EXPECT_EQ(resp.devices(3).topology().nodes(0).id(), 1);
  for (int i = 0; i < 100 && kube_.NodeAnnotations("node-1").empty(); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto reg = nlohmann::json::parse(kube_.NodeAnnotations("node-1").at(kRegisterAnnotation));
  EXPECT_EQ(reg[0]["type"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(reg[0]["devmem"], 80 * 1024);

  // An application XID (13) leaves the device healthy; XID 79 does not.
  ASSERT_EQ(Ctl("set-health 0 unhealthy 13"), 0);
  ASSERT_EQ(Ctl("set-health 1 unhealthy 79"), 0);
  ASSERT_TRUE(ReadUntil(
      reader.get(), [&](const auto& r) { return HealthById(r)[b_ + "::0"] == "Unhealthy"; }, &resp));
  EXPECT_EQ(HealthById(resp)[b_ + "::2"], "Unhealthy");
  EXPECT_EQ(HealthById(resp)[a_ + "::0"], "Healthy");
  ctx.TryCancel();
}

TEST_F(FakeNvmlKubeletTest, ReportsRecoveryWhenTheGpuAnswersAgain) {
  StartPlugin(nvml_.get());
  auto stub = Connect();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader = stub->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(Ctl("set-health 1 unhealthy 79"), 0);
  ASSERT_TRUE(ReadUntil(
      reader.get(), [&](const auto& r) { return HealthById(r)[b_ + "::0"] == "Unhealthy"; }, &resp));
  // Recovery arrives as an XID event with eventData 0 (fakegpu-ctl set-health healthy).
  ASSERT_EQ(Ctl("set-health 1 healthy"), 0);
  ASSERT_TRUE(ReadUntil(
      reader.get(), [&](const auto& r) { return HealthById(r)[b_ + "::0"] == "Healthy"; }, &resp));
  ctx.TryCancel();
}
#endif

}  // namespace
}  // namespace hami::deviceplugin
