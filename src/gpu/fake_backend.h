// In-memory gpu::Backend for unit tests and `hami serve --gpu-backend static`: a fixed list of
// GPUs, settable usage, and health events pushed by the test.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "gpu/gpu.h"

namespace hami::gpu {

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::vector<GpuInfo> gpus, std::string description = "in-memory fake GPUs")
      : gpus_(std::move(gpus)), description_(std::move(description)) {}

  void SetUsage(const std::string& uuid, GpuUsage usage) {
    std::lock_guard lock(mu_);
    usage_[uuid] = usage;
  }
  void SetTelemetry(const std::string& uuid, GpuTelemetry t) {
    std::lock_guard lock(mu_);
    telemetry_[uuid] = t;
  }
  void SetMigDevices(std::vector<MigDevice> migs) {
    std::lock_guard lock(mu_);
    migs_ = std::move(migs);
  }
  // Queues a health event as the driver would send it.
  void PushHealth(const std::string& uuid, bool healthy, uint64_t xid) {
    std::lock_guard lock(mu_);
    events_.push_back({uuid, healthy, xid});
    cv_.notify_all();
  }

  StatusOr<std::vector<GpuInfo>> ListGpus() override { return gpus_; }
  StatusOr<GpuUsage> Usage(const std::string& uuid) override {
    std::lock_guard lock(mu_);
    for (const auto& g : gpus_) {
      if (g.uuid != uuid) continue;
      auto it = usage_.find(uuid);
      GpuUsage u = it == usage_.end() ? GpuUsage{} : it->second;
      u.memory_total_bytes = g.memory_bytes;
      return u;
    }
    return NotFound("no GPU " + uuid);
  }
  StatusOr<GpuTelemetry> Telemetry(const std::string& uuid) override {
    std::lock_guard lock(mu_);
    for (const auto& g : gpus_) {
      if (g.uuid != uuid) continue;
      auto it = telemetry_.find(uuid);
      return it == telemetry_.end() ? GpuTelemetry{} : it->second;
    }
    return NotFound("no GPU " + uuid);
  }
  StatusOr<std::vector<MigDevice>> MigDevices() override {
    std::lock_guard lock(mu_);
    return migs_;
  }
  StatusOr<std::optional<HealthEvent>> WaitHealthEvent(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) {
      return std::optional<HealthEvent>();
    }
    HealthEvent ev = events_.front();
    events_.pop_front();
    return std::optional<HealthEvent>(ev);
  }
  bool Probe(const std::string&) override { return true; }
  std::string Describe() const override { return description_; }
  bool fake() const override { return true; }

 private:
  std::vector<GpuInfo> gpus_;
  std::string description_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HealthEvent> events_;
  std::map<std::string, GpuUsage> usage_;
  std::map<std::string, GpuTelemetry> telemetry_;
  std::vector<MigDevice> migs_;
};

}  // namespace hami::gpu
