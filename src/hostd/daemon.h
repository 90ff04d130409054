// The single-host daemon's core: this host's GPUs as one node of hami::sched, the granted
// slices and the FIFO wait queue, persisted in the Store. Every decision is taken under one
// lock, so concurrent requests never over-commit a GPU. No HTTP here (see http_api.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "hostd/gpu_source.h"
#include "hostd/limits.h"
#include "hostd/quota.h"
#include "hostd/store.h"
#include "hostd/types.h"
#include "sched/engine.h"

namespace hami::hostd {

// Who asks: a local user (uid from SO_PEERCRED) or an administrator (root, or the holder of
// the TCP API token). Users see and change only their own slices and queue entries.
struct Caller {
  uint32_t uid = 0;
  bool admin = true;
  static Caller Root() { return Caller{}; }
  static Caller User(uint32_t uid) { return Caller{uid, uid == 0}; }
  bool Owns(const SliceRequest& r) const { return admin || r.uid == uid; }
};

struct DaemonOptions {
  std::string state_dir;            // holds hami.db and slices/<id>/
  std::string node_name = "local";  // the node name in metrics
  int32_t split_count = 10;         // slices per GPU at most
  sched::GpuPolicy gpu_policy = sched::GpuPolicy::kSpread;
  JobContext job;  // libvgpu.so and driver paths handed to jobs
  std::chrono::milliseconds reap_interval{200};
  // Per-user bounds (root included): what one user may hold and have waiting at once, and
  // the queue as a whole, so neither memory nor hami.db grows with a flood of requests.
  int32_t max_slices_per_user = 64;
  int32_t max_queued_per_user = 16;
  int32_t max_queued_total = 256;
  // Per-user and per-group quotas (--user-quota, --group-quota, --quota-file; docs/quotas.md).
  std::vector<QuotaRule> quotas;
};

struct GpuView {
  HostGpu gpu;
  std::string type;  // sched::RegisterGpuType(name), as HAMi v2.8+ names it
  int64_t memory_mib = 0;
  int32_t split_count = 0;
  sched::GpuUsage usage;
};

// The answer to a request or a poll: a slice, or the place in the queue (1 = next).
struct Grant {
  bool granted = false;
  Slice slice;
  int64_t ticket = 0;
  int32_t position = 0;
};

class Daemon {
 public:
  // Lists the GPUs, locks <state_dir>/hami.lock (one daemon per state directory), opens
  // <state_dir>/hami.db and restores slices and queue from it.
  // Errors: kUnavailable (GPUs cannot be listed, database cannot be opened),
  // kFailedPrecondition (another daemon holds the state directory), kInternal.
  static StatusOr<std::unique_ptr<Daemon>> Open(DaemonOptions options,
                                                std::unique_ptr<GpuSource> gpus);
  ~Daemon();

  // Grants a slice at once when the queue is empty and it fits, else queues it (FIFO). The
  // slice belongs to request.uid (kNoUid: the daemon's own user).
  // Errors: kInvalidArgument (malformed request), kFailedPrecondition (it could not fit even
  // on an idle host, with the reasons), kResourceExhausted (request.wait is false and it
  // cannot be granted now, or the user holds or queues too many), kPermissionDenied (a
  // daemon not run as root serves only its own user), kInternal (database or files).
  StatusOr<Grant> Request(const SliceRequest& request);
  // State of a queue ticket; waits up to `wait` for it to change. Errors: kNotFound (the
  // ticket is unknown: cancelled, or its owner died, or its slice was already released),
  // kPermissionDenied (another user's ticket). In-process callers act as root by default.
  StatusOr<Grant> Poll(int64_t ticket, std::chrono::milliseconds wait,
                       const Caller& who = Caller::Root());
  Status Cancel(int64_t ticket, const Caller& who = Caller::Root());  // kNotFound, kPermission..
  Status Release(int64_t id, const Caller& who = Caller::Root());     // kNotFound, kPermission..
  // Records the job process so that the slice lives until both it and the owner are gone.
  // kNotFound, kInvalidArgument, kPermissionDenied (not the slice's owner).
  Status AttachJob(int64_t id, ProcessRef job, const Caller& who = Caller::Root());

  StatusOr<Slice> GetSlice(int64_t id, const Caller& who = Caller::Root()) const;
  std::vector<Slice> Slices() const;
  std::vector<QueueEntry> Queue() const;
  std::vector<GpuView> Gpus() const;
  // Why the head of the queue waits ("" when the queue is empty).
  std::string QueueReason() const;
  // Why this entry waits: its user's or group's quota when that holds it back, else why the
  // head of the queue waits.
  std::string QueueReason(int64_t ticket) const;
  // The quota rules with their usage (`hami quota`).
  std::vector<HostQuotas::Row> QuotaRows() const;
  // Queue tickets passed over for a quota, with the reason (the web UI's quota view).
  std::map<int64_t, std::string> QuotaWaits() const;

  // Frees slices whose owner and job are gone and drops queue entries whose owner is gone.
  // Returns how many were removed. Called by the reaper thread; public for tests.
  int ReapDead();
  void StartReaper();
  void StopReaper();

  const DaemonOptions& options() const { return options_; }
  bool fake() const { return fake_; }
  const std::string& gpu_source() const { return source_desc_; }
  // What Open found and did about the state directory (orphans adopted or removed), for the
  // daemon's log.
  const std::vector<std::string>& startup_notes() const { return notes_; }

 private:
  Daemon(DaemonOptions options, std::unique_ptr<Store> store, int lock_fd);
  sched::PodRequest ToPod(const SliceRequest& r, const std::string& uid) const;
  // Places `r` on the current state; nullopt with *why set when it does not fit.
  StatusOr<std::optional<sched::PodPlacement>> PlaceLocked(const SliceRequest& r,
                                                           std::string* why) const;
  StatusOr<Slice> GrantLocked(const SliceRequest& r, const sched::PodPlacement& p, int64_t ticket);
  Status ReleaseLocked(int64_t id);
  void ProcessQueueLocked();
  int32_t PositionLocked(int64_t ticket) const;
  void ChangedLocked();
  Status CheckQuotaLocked(const SliceRequest& r, bool queueing) const;
  // kFailedPrecondition when `r` could not fit even on the idle host or within its quotas.
  Status CheckEverFitsLocked(const SliceRequest& r) const;
  // Slice directories not in hami.db (the database was lost or truncated while jobs ran).
  Status RecoverOrphansLocked();
  Status AdoptOrphan(int64_t id, const std::string& name);
  std::string SliceDir(int64_t id) const;
  // Ok when a slice placed as `p` keeps the request's user and groups within their quotas.
  Status QuotaAdmitsLocked(const SliceRequest& r, const sched::PodPlacement& p) const;

  DaemonOptions options_;
  std::unique_ptr<Store> store_;
  int lock_fd_ = -1;  // flock on <state_dir>/hami.lock for the daemon's lifetime
  std::vector<HostGpu> host_gpus_;
  bool fake_ = false;
  std::string source_desc_;
  std::vector<std::string> notes_;
  sched::Engine engine_;
  sched::ClusterState state_;  // this host, with every granted slice
  sched::ClusterState idle_;   // this host, empty: tells "never fits" from "not now"

  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint64_t generation_ = 0;
  std::vector<Slice> slices_;      // by id
  std::vector<QueueEntry> queue_;  // FIFO
  HostQuotas quotas_;
  std::map<int64_t, std::string> quota_wait_;  // ticket -> quota reason it is passed over for

  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  bool reaper_stop_ = false;
  std::thread reaper_;
};

}  // namespace hami::hostd
