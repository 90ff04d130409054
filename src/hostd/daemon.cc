#include "hostd/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "hostd/slice_files.h"
#include "sched/model.h"

namespace hami::hostd {
namespace {

namespace fs = std::filesystem;

std::string Uid(int64_t id) { return "s" + std::to_string(id); }

Status Denied(const std::string& what) { return Status(StatusCode::kPermissionDenied, what); }

// This host is the only node: name the reason instead of "0/1 nodes fit: 1 ...".
std::string WhyNot(const sched::FilterSummary& summary) {
  for (int r = 0; r < sched::kReasonCount; ++r) {
    if (summary.counts[r] > 0 && r != static_cast<int>(sched::Reason::kFits)) {
      return sched::ReasonText(static_cast<sched::Reason>(r));
    }
  }
  return summary.message;
}

sched::PodPlacement PlacementOf(const Slice& s) {
  sched::PodPlacement p;
  sched::ContainerDevices devs;
  for (const auto& d : s.devices) {
    devs.push_back(sched::DeviceAlloc{d.uuid, d.type, d.memory_mib, d.cores});
  }
  p.containers.push_back(std::move(devs));
  return p;
}

// Creates the state directory and its slices/ (0711: others may reach their own slice
// directory, 0700 inside, but list nothing); returns its canonical path, from which slice
// paths derive: a row's path can then be compared with what it must be, and no ".." or link
// in the flag changes where files go.
StatusOr<std::string> PrepareStateDir(const std::string& flag) {
  std::error_code ec;
  fs::create_directories(fs::path(flag) / "slices", ec);
  if (ec) return Unavailable("cannot create state directory " + flag + ": " + ec.message());
  std::string dir = fs::canonical(flag, ec).string();
  if (ec) return Unavailable("cannot resolve state directory: " + ec.message());
  for (const std::string& d : {dir, dir + "/slices"}) {
    struct stat st {};
    if (lstat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
      return FailedPrecondition(d + " must be a directory owned by the daemon's user");
    }
    chmod(d.c_str(), 0711);
  }
  return dir;
}

// Locks <state_dir>/hami.lock and writes this pid into it: two daemons deciding over one
// database would over-commit the GPUs. Returns the locked descriptor.
StatusOr<int> LockStateDir(const std::string& state_dir) {
  std::string lock_path = (fs::path(state_dir) / "hami.lock").string();
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) return Unavailable("cannot open " + lock_path);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = pread(lock_fd, buf, sizeof(buf) - 1, 0);
    close(lock_fd);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    return FailedPrecondition("another hami serve (pid " + holder + ") uses the state directory " +
                              state_dir);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(lock_fd, 0) == 0) (void)!pwrite(lock_fd, pid.data(), pid.size(), 0);
  return lock_fd;
}

// This host as the engine sees it: one node with every GPU split split_count ways.
sched::NodeInfo NodeOf(const std::string& name, const std::vector<HostGpu>& gpus, int split_count) {
  sched::NodeInfo node;
  node.name = name;
  for (const auto& g : gpus) {
    sched::GpuInfo gi;
    gi.uuid = g.uuid;
    gi.index = g.index;
    gi.type = sched::RegisterGpuType(g.name.empty() ? "GPU" : g.name);
    gi.memory_mib = static_cast<int64_t>(g.memory_bytes >> 20);
    gi.cores = 100;
    gi.split_count = split_count;
    gi.numa = g.numa;
    gi.healthy = g.healthy;
    node.gpus.push_back(std::move(gi));
  }
  return node;
}

}  // namespace

Daemon::Daemon(DaemonOptions options, std::unique_ptr<Store> store, int lock_fd)
    : options_(std::move(options)), store_(std::move(store)), lock_fd_(lock_fd), engine_([&] {
        sched::SchedulerConfig c;
        c.gpu_policy = options_.gpu_policy;
        return c;
      }()) {}

Daemon::~Daemon() {
  StopReaper();
  if (lock_fd_ >= 0) close(lock_fd_);
}

StatusOr<std::unique_ptr<Daemon>> Daemon::Open(DaemonOptions options,
                                               std::unique_ptr<GpuSource> gpus) {
  if (options.state_dir.empty()) return InvalidArgument("no state directory given");
  if (options.split_count <= 0) return InvalidArgument("split count must be positive");
  auto dir = PrepareStateDir(options.state_dir);
  if (!dir.ok()) return dir.status();
  options.state_dir = std::move(*dir);
  auto locked = LockStateDir(options.state_dir);
  if (!locked.ok()) return locked.status();
  const int lock_fd = *locked;
  auto list = gpus->ListGpus();
  if (!list.ok()) {
    close(lock_fd);
    return list.status();
  }
  auto store = Store::Open((fs::path(options.state_dir) / "hami.db").string());
  if (!store.ok()) {
    close(lock_fd);
    return store.status();
  }
  auto quotas = HostQuotas::Make(options.quotas);
  if (!quotas.ok()) {
    close(lock_fd);
    return quotas.status();
  }
  std::unique_ptr<Daemon> d(new Daemon(std::move(options), std::move(*store), lock_fd));
  d->quotas_ = std::move(*quotas);
  d->host_gpus_ = std::move(*list);
  for (auto& g : d->host_gpus_) g.numa = std::max(g.numa, 0);  // gpu::GpuInfo: -1 = unknown
  d->fake_ = gpus->fake();
  d->source_desc_ = gpus->Describe();

  const sched::NodeInfo node =
      NodeOf(d->options_.node_name, d->host_gpus_, d->options_.split_count);
  if (!node.gpus.empty()) {
    HAMI_RETURN_IF_ERROR(d->state_.AddNode(node));
    HAMI_RETURN_IF_ERROR(d->idle_.AddNode(node));
  }

  auto slices = d->store_->LoadSlices();
  if (!slices.ok()) return slices.status();
  for (auto& s : *slices) {
    // A row pointing outside the state directory (edited, or another daemon's) is refused:
    // its directory would be removed recursively on release.
    const std::string want = d->SliceDir(s.id);
    if (s.dir != want || s.limits_file != want + "/vgpu.limits" ||
        s.cache_file != want + "/vgpu.cache") {
      return FailedPrecondition("state database: slice " + s.Name() + " has files at " + s.dir +
                                ", expected " + want + "; refusing to start (was " +
                                d->options_.state_dir + " moved, or hami.db edited?)");
    }
    HAMI_RETURN_IF_ERROR(d->state_.AddPlacement(Uid(s.id), node.name, PlacementOf(s)));
    d->quotas_.Count(s.id, s.request.uid, sched::PlacementQuotaUsage(PlacementOf(s)));
    d->slices_.push_back(std::move(s));
  }
  {
    std::lock_guard<std::mutex> lock(d->mu_);
    HAMI_RETURN_IF_ERROR(d->RecoverOrphansLocked());
  }
  auto queue = d->store_->LoadQueue();
  if (!queue.ok()) return queue.status();
  d->queue_ = std::move(*queue);
  {
    std::lock_guard<std::mutex> lock(d->mu_);
    d->ProcessQueueLocked();
  }
  return d;
}

sched::PodRequest Daemon::ToPod(const SliceRequest& r, const std::string& uid) const {
  sched::PodRequest pod;
  pod.uid = uid;
  pod.name = "hami-run/" + uid;
  sched::ContainerRequest c;
  c.gpu_count = r.gpus;
  if (r.memory_mib > 0) c.memory_mib = r.memory_mib;
  if (r.memory_percent > 0) c.memory_percent = r.memory_percent;
  c.cores = r.cores;
  if (r.priority >= 0) c.priority = r.priority;
  pod.containers.push_back(c);
  pod.options.use_types = r.gpu_types;
  pod.options.use_uuids = r.gpu_uuids;
  return pod;
}

StatusOr<std::optional<sched::PodPlacement>> Daemon::PlaceLocked(const SliceRequest& r,
                                                                 std::string* why) const {
  if (host_gpus_.empty()) {
    *why = "this host has no GPU";
    return std::optional<sched::PodPlacement>();
  }
  auto dec = engine_.Schedule(state_, ToPod(r, "request"));
  if (!dec.ok()) return dec.status();
  if (dec->scheduled) return std::optional<sched::PodPlacement>(std::move(dec->placement));
  *why = WhyNot(dec->summary);
  return std::optional<sched::PodPlacement>();
}

StatusOr<Slice> Daemon::GrantLocked(const SliceRequest& r, const sched::PodPlacement& p,
                                    int64_t ticket) {
  Slice s;
  s.request = r;
  s.ticket = ticket;
  s.created_unix = static_cast<int64_t>(time(nullptr));
  if (p.containers.empty()) return Internal("engine returned an empty placement");
  for (const auto& a : p.containers[0]) {
    SliceDevice d;
    d.uuid = a.uuid;
    d.type = a.type;
    d.memory_mib = a.used_mem_mib;
    d.cores = a.used_cores;
    for (const auto& g : host_gpus_) {
      if (g.uuid == a.uuid) d.index = g.index;
    }
    s.devices.push_back(std::move(d));
  }
  const std::string root = options_.state_dir;
  HAMI_RETURN_IF_ERROR(store_->InsertSlice(
      &s,
      [&root](Slice* x) {
        x->dir = (fs::path(root) / "slices" / x->Name()).string();
        x->limits_file = x->dir + "/vgpu.limits";
        x->cache_file = x->dir + "/vgpu.cache";
      },
      ticket));
  if (ticket > 0) {
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const QueueEntry& q) { return q.ticket == ticket; }),
                 queue_.end());
  }
  Status files = CreateSliceFiles(options_.state_dir + "/slices", s, r.uid);
  Status placed =
      files.ok() ? state_.AddPlacement(Uid(s.id), options_.node_name, PlacementOf(s)) : files;
  if (!placed.ok()) {
    (void)store_->DeleteSlice(s.id);
    // Only a directory this call created is removed; an existing one is someone's.
    if (files.code() != StatusCode::kAlreadyExists) {
      (void)RemoveSliceDir(options_.state_dir + "/slices", s.Name());
    }
    return placed;
  }
  quotas_.Count(s.id, r.uid, sched::PlacementQuotaUsage(p));
  slices_.push_back(s);
  ChangedLocked();
  return s;
}

// Could it ever fit? Checked on the idle host so a hopeless request fails at once.
Status Daemon::CheckEverFitsLocked(const SliceRequest& request) const {
  if (host_gpus_.empty()) return FailedPrecondition("this host has no GPU");
  auto dec = engine_.Schedule(idle_, ToPod(request, "request"));
  if (!dec.ok()) return dec.status();
  if (!dec->scheduled) {
    std::set<std::string> types;
    int64_t largest = 0;
    for (const auto& g : host_gpus_) {
      types.insert(sched::RegisterGpuType(g.name.empty() ? "GPU" : g.name));
      largest = std::max(largest, static_cast<int64_t>(g.memory_bytes >> 20));
    }
    std::string type_list;
    for (const auto& t : types) type_list += (type_list.empty() ? "" : ", ") + t;
    return FailedPrecondition(
        "the request cannot fit on this host even when idle: " + WhyNot(dec->summary) +
        " (this host has " + std::to_string(host_gpus_.size()) + " GPU(s), the largest with " +
        std::to_string(largest) + " MiB; types: " + type_list + ")");
  }
  // Larger than the user's or a group's whole quota: it would wait forever.
  if (!quotas_.empty()) {
    auto resolved = sched::Resolve(ToPod(request, "request"), engine_.config());
    if (!resolved.ok()) return resolved.status();
    HAMI_RETURN_IF_ERROR(
        quotas_.CheckEverFits(request.uid, sched::RequestQuotaUsage(*resolved, 0)));
  }
  return Status::Ok();
}

StatusOr<Grant> Daemon::Request(const SliceRequest& in) {
  // The engine validates the rest (Resolve); check what it does not know about.
  if (in.gpus < 1 || in.gpus > 16) {
    return InvalidArgument("gpus must be 1..16, got " + std::to_string(in.gpus));
  }
  SliceRequest request = in;
  const uint32_t self = static_cast<uint32_t>(geteuid());
  if (request.uid == kNoUid) request.uid = self;
  // Only root can hand a slice's files to another user.
  if (self != 0 && request.uid != self) {
    return Denied("this hami serve runs as uid " + std::to_string(self) +
                  " and serves only that user; run it as root to share the GPUs");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!request.request_id.empty()) {
    // Scoped to the user: another user's request id neither matches nor reveals anything.
    for (const auto& s : slices_) {
      if (s.request.request_id == request.request_id && s.request.uid == request.uid) {
        return Grant{true, s, s.ticket, 0};
      }
    }
    for (const auto& q : queue_) {
      if (q.request.request_id == request.request_id && q.request.uid == request.uid) {
        return Grant{false, Slice{}, q.ticket, PositionLocked(q.ticket)};
      }
    }
  }
  std::string why;
  HAMI_RETURN_IF_ERROR(CheckEverFitsLocked(request));
  HAMI_RETURN_IF_ERROR(CheckQuotaLocked(request, /*queueing=*/false));
  Grant g;
  // Entries held back only by another user's quota do not stand in this request's way.
  bool ahead = std::any_of(queue_.begin(), queue_.end(), [&](const QueueEntry& q) {
    return quota_wait_.count(q.ticket) == 0 || q.request.uid == request.uid;
  });
  if (!ahead) {
    auto placed = PlaceLocked(request, &why);
    if (!placed.ok()) return placed.status();
    Status quota = placed->has_value() ? QuotaAdmitsLocked(request, **placed) : Status::Ok();
    if (!quota.ok()) {
      why = quota.message();
    } else if (placed->has_value()) {
      auto s = GrantLocked(request, **placed, 0);
      if (!s.ok()) return s.status();
      g.granted = true;
      g.slice = std::move(*s);
      return g;
    }
  } else {
    why = std::to_string(queue_.size()) + " request(s) already waiting";
  }
  if (!request.wait) return ResourceExhausted("no GPU slice free now: " + why);
  HAMI_RETURN_IF_ERROR(CheckQuotaLocked(request, /*queueing=*/true));
  QueueEntry q;
  q.request = request;
  q.created_unix = static_cast<int64_t>(time(nullptr));
  HAMI_RETURN_IF_ERROR(store_->InsertQueued(&q));
  queue_.push_back(q);
  ProcessQueueLocked();  // an entry held only by its quota does not hold up the others
  ChangedLocked();
  g.ticket = q.ticket;
  g.position = static_cast<int32_t>(queue_.size());
  return g;
}

int32_t Daemon::PositionLocked(int64_t ticket) const {
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (queue_[i].ticket == ticket) return static_cast<int32_t>(i + 1);
  }
  return 0;
}

StatusOr<Grant> Daemon::Poll(int64_t ticket, std::chrono::milliseconds wait, const Caller& who) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + wait;
  uint64_t seen = generation_;
  int32_t last_pos = -1;
  for (;;) {
    Grant g;
    g.ticket = ticket;
    for (const auto& s : slices_) {
      if (s.ticket == ticket) {
        if (!who.Owns(s.request))
          return Denied("queue ticket " + std::to_string(ticket) + " belongs to another user");
        g.granted = true;
        g.slice = s;
        return g;
      }
    }
    g.position = PositionLocked(ticket);
    if (g.position == 0) return NotFound("no queue ticket " + std::to_string(ticket));
    if (!who.Owns(queue_[static_cast<size_t>(g.position - 1)].request)) {
      return Denied("queue ticket " + std::to_string(ticket) + " belongs to another user");
    }
    if (last_pos >= 0 && g.position != last_pos) return g;
    last_pos = g.position;
    if (!changed_.wait_until(lock, deadline, [&] { return generation_ != seen; })) return g;
    seen = generation_;
  }
}

Status Daemon::Cancel(int64_t ticket, const Caller& who) {
  std::lock_guard<std::mutex> lock(mu_);
  int32_t pos = PositionLocked(ticket);
  if (pos == 0) return NotFound("no queue ticket " + std::to_string(ticket));
  if (!who.Owns(queue_[static_cast<size_t>(pos - 1)].request)) {
    return Denied("queue ticket " + std::to_string(ticket) + " belongs to another user");
  }
  HAMI_RETURN_IF_ERROR(store_->DeleteQueued(ticket));
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const QueueEntry& q) { return q.ticket == ticket; }),
               queue_.end());
  ChangedLocked();
  // The head may have changed.
  ProcessQueueLocked();
  return Status::Ok();
}

Status Daemon::ReleaseLocked(int64_t id) {
  auto it =
      std::find_if(slices_.begin(), slices_.end(), [&](const Slice& s) { return s.id == id; });
  if (it == slices_.end()) return NotFound("no slice s" + std::to_string(id));
  HAMI_RETURN_IF_ERROR(store_->DeleteSlice(id));
  (void)state_.RemovePlacement(Uid(id));
  quotas_.Uncount(id);
  // By name under the slices directory, never the row's path (see slice_files.h).
  (void)RemoveSliceDir(options_.state_dir + "/slices", it->Name());
  slices_.erase(it);
  ChangedLocked();
  return Status::Ok();
}

Status Daemon::Release(int64_t id, const Caller& who) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : slices_) {
    if (s.id == id && !who.Owns(s.request)) {
      return Denied("slice s" + std::to_string(id) + " belongs to uid " +
                    std::to_string(s.request.uid) + "; only its owner or root may release it");
    }
  }
  HAMI_RETURN_IF_ERROR(ReleaseLocked(id));
  ProcessQueueLocked();
  return Status::Ok();
}

Status Daemon::AttachJob(int64_t id, ProcessRef job, const Caller& who) {
  if (job.pid <= 0 || job.pid > kMaxPid) {
    return InvalidArgument("job pid must be in 1.." + std::to_string(kMaxPid));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : slices_) {
    if (s.id != id) continue;
    if (!who.Owns(s.request)) {
      return Denied("slice s" + std::to_string(id) + " belongs to another user");
    }
    // A user may only tie a slice's life to a process of their own (else pid 1 would keep
    // it forever).
    if (!who.admin) {
      auto owner = ProcessUid(job.pid);
      if (!owner || *owner != who.uid) {
        return Denied("process " + std::to_string(job.pid) + " is not yours");
      }
    }
    Slice updated = s;
    updated.job = job;
    HAMI_RETURN_IF_ERROR(store_->UpdateSlice(updated));
    s = std::move(updated);
    ChangedLocked();
    return Status::Ok();
  }
  return NotFound("no slice s" + std::to_string(id));
}

StatusOr<Slice> Daemon::GetSlice(int64_t id, const Caller& who) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : slices_) {
    if (s.id != id) continue;
    if (!who.Owns(s.request)) {
      return Denied("slice s" + std::to_string(id) + " belongs to another user");
    }
    return s;
  }
  return NotFound("no slice s" + std::to_string(id));
}

std::string Daemon::SliceDir(int64_t id) const {
  return options_.state_dir + "/slices/s" + std::to_string(id);
}

std::vector<Slice> Daemon::Slices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slices_;
}

std::vector<QueueEntry> Daemon::Queue() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_;
}

std::vector<GpuView> Daemon::Gpus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GpuView> out;
  for (const auto& g : host_gpus_) {
    GpuView v;
    v.gpu = g;
    v.type = sched::RegisterGpuType(g.name.empty() ? "GPU" : g.name);
    v.memory_mib = static_cast<int64_t>(g.memory_bytes >> 20);
    v.split_count = options_.split_count;
    v.usage = state_.Usage(options_.node_name, g.uuid).value_or(sched::GpuUsage{});
    out.push_back(std::move(v));
  }
  return out;
}

void Daemon::ChangedLocked() {
  ++generation_;
  changed_.notify_all();
}

int Daemon::ReapDead() {
  std::lock_guard<std::mutex> lock(mu_);
  int removed = 0;
  std::vector<int64_t> dead;
  for (const auto& s : slices_) {
    bool has_owner = s.request.owner.pid > 0;
    bool has_job = s.job.pid > 0;
    if (!has_owner && !has_job) continue;  // released only explicitly
    bool owner_gone = !has_owner || !IsAlive(s.request.owner);
    bool job_gone = !has_job || !IsAlive(s.job);
    if (owner_gone && job_gone) dead.push_back(s.id);
  }
  for (int64_t id : dead) {
    if (ReleaseLocked(id).ok()) ++removed;
  }
  std::vector<int64_t> gone_tickets;
  for (const auto& q : queue_) {
    if (q.request.owner.pid > 0 && !IsAlive(q.request.owner)) gone_tickets.push_back(q.ticket);
  }
  for (int64_t t : gone_tickets) {
    if (store_->DeleteQueued(t).ok()) {
      queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                  [&](const QueueEntry& q) { return q.ticket == t; }),
                   queue_.end());
      ++removed;
    }
  }
  if (removed > 0) {
    ChangedLocked();
    ProcessQueueLocked();
  }
  return removed;
}

void Daemon::StartReaper() {
  std::lock_guard<std::mutex> lock(reaper_mu_);
  if (reaper_.joinable()) return;
  reaper_stop_ = false;
  reaper_ = std::thread([this] {
    std::unique_lock<std::mutex> l(reaper_mu_);
    while (!reaper_stop_) {
      l.unlock();
      ReapDead();
      l.lock();
      reaper_cv_.wait_for(l, options_.reap_interval, [this] { return reaper_stop_; });
    }
  });
}

void Daemon::StopReaper() {
  {
    std::lock_guard<std::mutex> lock(reaper_mu_);
    reaper_stop_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

}  // namespace hami::hostd
