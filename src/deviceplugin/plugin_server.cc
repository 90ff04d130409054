// gRPC side of the device plugin. This is the only translation unit of the plugin that
// includes gRPC headers (compile time on small machines).
#include "deviceplugin/plugin_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"
#include "deviceplugin_v1beta1.grpc.pb.h"

namespace hami::deviceplugin {
namespace {

constexpr char kApiVersion[] = "v1beta1";

grpc::Status ToGrpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case StatusCode::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    default:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, s.message());
}

std::string NowHandshakeTime() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Identity of a socket file, to notice that kubelet re-created it.
struct FileId {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};
FileId Identify(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, st.st_dev, st.st_ino};
}

}  // namespace

struct PluginServer::Impl final : public v1beta1::DevicePlugin::Service {
  PluginServerOptions opts;
  gpu::Backend* gpus_backend;
  KubeApi* kube;
  std::unique_ptr<Allocator> allocator;
  std::mutex allocate_mu;  // one Allocate at a time: each one reads then patches a pod

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<NodeGpu> gpus;
  std::map<std::string, bool> lost;  // unhealthy GPUs whose probe has failed since
  uint64_t version = 0;              // bumped on every health change
  bool stopping = false;
  std::unique_ptr<grpc::Server> server;
  std::atomic<int> registrations{0};
  std::vector<std::thread> threads;

  std::string SocketPath() const { return opts.socket_dir + "/" + opts.socket_name; }
  std::string KubeletPath() const { return opts.socket_dir + "/" + opts.kubelet_socket_name; }

  // --- DevicePlugin service ---------------------------------------------------------------
  grpc::Status GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                      v1beta1::DevicePluginOptions* out) override {
    out->set_pre_start_required(false);
    out->set_get_preferred_allocation_available(true);
    return grpc::Status::OK;
  }

  void FillDevices(v1beta1::ListAndWatchResponse* resp) const {
    for (const auto& g : gpus) {
      for (int n = 0; n < opts.config.nvidia.device_split_count; ++n) {
        v1beta1::Device* d = resp->add_devices();
        d->set_id(VirtualId(g.info.uuid, n));
        d->set_health(g.healthy ? "Healthy" : "Unhealthy");
        if (g.info.numa >= 0) d->mutable_topology()->add_nodes()->set_id(g.info.numa);
      }
    }
  }

  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override {
    std::unique_lock lock(mu);
    uint64_t sent = ~uint64_t{0};
    while (!stopping && !ctx->IsCancelled()) {
      if (sent != version) {
        v1beta1::ListAndWatchResponse resp;
        FillDevices(&resp);
        sent = version;
        lock.unlock();
        bool ok = writer->Write(resp);
        lock.lock();
        if (!ok) break;
      }
      cv.wait_for(lock, std::chrono::milliseconds(200));
    }
    return grpc::Status::OK;
  }

  grpc::Status GetPreferredAllocation(grpc::ServerContext*,
                                      const v1beta1::PreferredAllocationRequest* req,
                                      v1beta1::PreferredAllocationResponse* out) override {
    std::lock_guard alloc_lock(allocate_mu);
    for (const auto& creq : req->container_requests()) {
      const int size = creq.allocation_size();
      std::vector<std::string> chosen(creq.must_include_deviceids().begin(),
                                      creq.must_include_deviceids().end());
      std::set<std::string> used_ids(chosen.begin(), chosen.end());
      std::set<std::string> used_gpus;
      for (const auto& id : chosen) used_gpus.insert(VirtualIdToUuid(id));
      auto take = [&](const std::string& id) {
        if (static_cast<int>(chosen.size()) >= size || used_ids.count(id)) return;
        chosen.push_back(id);
        used_ids.insert(id);
        used_gpus.insert(VirtualIdToUuid(id));
      };
      // First the GPUs the waiting pod was actually given, so kubelet's books match.
      for (const auto& uuid :
           allocator ? allocator->PendingUuids(size) : std::vector<std::string>{}) {
        if (used_gpus.count(uuid)) continue;
        for (const auto& id : creq.available_deviceids()) {
          if (VirtualIdToUuid(id) == uuid) {
            take(id);
            break;
          }
        }
      }
      // Then one slice per physical GPU, then anything.
      for (const auto& id : creq.available_deviceids()) {
        if (!used_gpus.count(VirtualIdToUuid(id))) take(id);
      }
      for (const auto& id : creq.available_deviceids()) take(id);
      auto* cresp = out->add_container_responses();
      for (const auto& id : chosen) cresp->add_deviceids(id);
    }
    return grpc::Status::OK;
  }

  grpc::Status Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* out) override {
    if (allocator == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no Kubernetes API configured");
    }
    std::lock_guard alloc_lock(allocate_mu);
    for (const auto& creq : req->container_requests()) {
      std::vector<std::string> ids(creq.devices_ids().begin(), creq.devices_ids().end());
      auto r = allocator->AllocateContainer(ids);
      if (!r.ok()) {
        log::Warn("Allocate refused: {}", r.status().ToString());
        return ToGrpc(r.status());
      }
      auto* cresp = out->add_container_responses();
      for (const auto& [k, v] : r->envs) (*cresp->mutable_envs())[k] = v;
      for (const auto& m : r->mounts) {
        auto* mount = cresp->add_mounts();
        mount->set_container_path(m.container_path);
        mount->set_host_path(m.host_path);
        mount->set_read_only(m.read_only);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status PreStartContainer(grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
                                 v1beta1::PreStartContainerResponse*) override {
    return grpc::Status::OK;
  }

  // --- serving and registration -----------------------------------------------------------
  Status Serve() {
    ::unlink(SocketPath().c_str());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + SocketPath(), grpc::InsecureServerCredentials());
    builder.RegisterService(this);
    std::unique_ptr<grpc::Server> s = builder.BuildAndStart();
    if (s == nullptr) return Unavailable("cannot serve on " + SocketPath());
    std::lock_guard lock(mu);
    if (stopping) {
      s->Shutdown();
      return Unavailable("stopping");
    }
    server = std::move(s);
    return Status::Ok();
  }

  void StopServing() {
    std::unique_ptr<grpc::Server> s;
    {
      std::lock_guard lock(mu);
      s = std::move(server);
    }
    if (s) {
      cv.notify_all();
      s->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      s->Wait();
    }
  }

  Status Register() {
    auto channel = grpc::CreateChannel("unix:" + KubeletPath(), grpc::InsecureChannelCredentials());
    auto stub = v1beta1::Registration::NewStub(channel);
    v1beta1::RegisterRequest req;
    req.set_version(kApiVersion);
    req.set_endpoint(opts.socket_name);
    req.set_resource_name(opts.resource_name);
    req.mutable_options()->set_get_preferred_allocation_available(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1beta1::Empty empty;
    grpc::Status s = stub->Register(&ctx, req, &empty);
    if (!s.ok()) return Unavailable("Register with kubelet failed: " + s.error_message());
    ++registrations;
    return Status::Ok();
  }

  bool WaitStop(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, d, [&] { return stopping; });
  }

  // Registers once kubelet.sock is there, and again whenever kubelet re-creates it or removes
  // our socket (kubelet clears the directory when it restarts).
  void WatchKubelet() {
    FileId registered_with;
    std::string last_error;
    do {
      if (!Identify(SocketPath()).exists) {
        StopServing();
        if (Status s = Serve(); !s.ok()) {
          log::Error("{}", s.ToString());
          continue;
        }
        registered_with = {};
      }
      FileId kubelet = Identify(KubeletPath());
      if (kubelet.exists && !(kubelet == registered_with)) {
        if (Status s = Register(); s.ok()) {
          registered_with = kubelet;
          last_error.clear();
          log::Info("registered {} with kubelet", opts.resource_name);
        } else if (s.message() != last_error) {
          last_error = s.message();
          log::Warn("{}", s.ToString());
        }
      } else if (!kubelet.exists) {
        registered_with = {};
      }
    } while (!WaitStop(opts.watch_interval));
  }

  void SetHealth(const std::string& uuid, bool healthy) {
    bool changed = false;
    {
      std::lock_guard lock(mu);
      for (auto& g : gpus) {
        if ((uuid.empty() || g.info.uuid == uuid) && g.healthy != healthy) {
          g.healthy = healthy;
          changed = true;
          if (healthy) lost.erase(g.info.uuid);
          log::Warn("{} is now {}", g.info.uuid, healthy ? "healthy" : "unhealthy");
        }
      }
      if (changed) ++version;
    }
    if (changed) {
      cv.notify_all();
      Annotate();
    }
  }

  void WatchHealth() {
    int since_probe = 0;
    while (true) {
      {
        std::lock_guard lock(mu);
        if (stopping) return;
      }
      auto ev = gpus_backend->WaitHealthEvent(opts.health_wait);
      if (!ev.ok()) {
        if (WaitStop(opts.health_wait)) return;
      } else if (ev->has_value()) {
        const gpu::HealthEvent& e = **ev;
        SetHealth(e.uuid, e.healthy);
      }
      // A GPU that stopped answering and answers again (after a reset) is healthy again.
      if (++since_probe >= 5) {
        since_probe = 0;
        std::vector<std::string> unhealthy;
        {
          std::lock_guard lock(mu);
          for (const auto& g : gpus) {
            if (!g.healthy) unhealthy.push_back(g.info.uuid);
          }
        }
        for (const auto& uuid : unhealthy) {
          bool answers = gpus_backend->Probe(uuid);
          bool was_lost = false;
          {
            std::lock_guard lock(mu);
            was_lost = lost[uuid];
            if (!answers) lost[uuid] = true;
          }
          if (answers && was_lost) SetHealth(uuid, true);
        }
      }
    }
  }

  void Annotate() {
    if (kube == nullptr || opts.node_name.empty()) return;
    std::string value;
    {
      std::lock_guard lock(mu);
      value = EncodeRegisterAnnotation(gpus, opts.config, opts.register_format);
    }
    AnnotationPatch patch;
    patch[kRegisterAnnotation] = value;
    patch[kHandshakeAnnotation] = "Reported_" + NowHandshakeTime();
    if (Status s = kube->PatchNodeAnnotations(opts.node_name, patch); !s.ok()) {
      log::Warn("cannot annotate node {}: {}", opts.node_name, s.ToString());
    }
  }

  // Host directories of pods that are gone (the monitor would report them forever).
  void CollectGarbage() {
    if (kube == nullptr || opts.node_name.empty()) return;
    auto pods = kube->ListPodsOnNode(opts.node_name);
    if (!pods.ok()) return;  // never delete on a failed list
    std::vector<std::string> uids;
    for (const auto& p : *pods) uids.push_back(p.uid);
    auto r = deviceplugin::CollectGarbage(opts.hook_path, uids, opts.gc_min_age);
    if (!r.ok()) {
      log::Warn("{}", r.status().ToString());
    } else if (*r > 0) {
      log::Info("removed {} directories of deleted pods", *r);
    }
  }

  void AnnotateLoop() {
    do {
      Annotate();
      CollectGarbage();
    } while (!WaitStop(opts.annotate_interval));
  }
};

PluginServer::PluginServer(PluginServerOptions options, gpu::Backend* gpus, KubeApi* kube)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->gpus_backend = gpus;
  impl_->kube = kube;
}

PluginServer::~PluginServer() { Stop(); }

Status PluginServer::Start() {
  auto list = impl_->gpus_backend->ListGpus();
  if (!list.ok()) return list.status();
  impl_->gpus = FilterGpus(*list, impl_->opts.config);
  if (impl_->kube != nullptr) {
    AllocatorOptions a;
    a.node_name = impl_->opts.node_name;
    a.hook_path = impl_->opts.hook_path;
    a.config = impl_->opts.config;
    for (const auto& g : impl_->gpus) a.node_uuids.push_back(g.info.uuid);
    impl_->allocator = std::make_unique<Allocator>(std::move(a), impl_->kube);
  }
  HAMI_RETURN_IF_ERROR(impl_->Serve());
  impl_->threads.emplace_back([this] { impl_->WatchKubelet(); });
  impl_->threads.emplace_back([this] { impl_->WatchHealth(); });
  impl_->threads.emplace_back([this] { impl_->AnnotateLoop(); });
  return Status::Ok();
}

void PluginServer::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->StopServing();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  ::unlink(impl_->SocketPath().c_str());
}

int PluginServer::registrations() const { return impl_->registrations.load(); }

std::vector<NodeGpu> PluginServer::Gpus() const {
  std::lock_guard lock(impl_->mu);
  return impl_->gpus;
}

}  // namespace hami::deviceplugin
