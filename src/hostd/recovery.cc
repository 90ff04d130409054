// Daemon start-up after hami.db was lost or truncated while jobs ran: slice directories the
// database does not know are found, live ones adopted (their limits file says what they
// hold), dead ones removed, and their ids never handed out again.
#include <filesystem>

#include "hostd/daemon.h"
#include "hostd/limits.h"
#include "hostd/slice_files.h"

namespace hami::hostd {

Status Daemon::AdoptOrphan(int64_t id, const std::string& name) {
  const std::string slices = options_.state_dir + "/slices";
  const std::string dir = SliceDir(id);
  auto text = ReadSmallFile(dir + "/vgpu.limits", 64 * 1024);
  StatusOr<std::vector<SliceDevice>> devs =
      text.ok() ? ParseOwnLimitsFile(*text) : StatusOr<std::vector<SliceDevice>>(text.status());
  auto owner = SliceDirOwner(slices, name);
  if (!devs.ok() || !owner.ok()) {
    return FailedPrecondition(
        "slice directory " + dir + " is not in hami.db and its accounting file is in use, but " +
        "its limits cannot be read back (" +
        (devs.ok() ? owner.status() : devs.status()).message() +
        "); refusing to start so its GPU memory is not handed out twice: stop the jobs using " +
        dir + "/vgpu.cache, remove the directory, then start again");
  }
  Slice s;
  s.id = id;
  s.request.uid = *owner;
  s.request.command = {"(adopted after hami.db was lost)"};
  s.created_unix = static_cast<int64_t>(time(nullptr));
  s.dir = dir;
  s.limits_file = dir + "/vgpu.limits";
  s.cache_file = dir + "/vgpu.cache";
  for (auto d : *devs) {
    bool known = false;
    for (const auto& g : host_gpus_) {
      if (g.uuid != d.uuid) continue;
      known = true;
      d.index = g.index;
      d.type = sched::RegisterGpuType(g.name.empty() ? "GPU" : g.name);
    }
    if (!known) {
      return FailedPrecondition("orphan slice directory " + dir + " holds GPU " + d.uuid +
                                ", which this host no longer has; refusing to start");
    }
    s.request.memory_mib = d.memory_mib;
    s.request.cores = d.cores;
    s.devices.push_back(d);
  }
  s.request.gpus = static_cast<int32_t>(s.devices.size());
  Status placed = state_.AddPlacement("s" + std::to_string(id), options_.node_name, [&] {
    sched::PodPlacement p;
    sched::ContainerDevices cd;
    for (const auto& d : s.devices) cd.push_back({d.uuid, d.type, d.memory_mib, d.cores});
    p.containers.push_back(std::move(cd));
    return p;
  }());
  if (!placed.ok()) {
    return FailedPrecondition("orphan slice directory " + dir +
                              " does not fit next to the recorded slices (" + placed.message() +
                              "); refusing to start");
  }
  HAMI_RETURN_IF_ERROR(store_->InsertSliceWithId(s));
  quotas_.Count(s.id, s.request.uid, [&] {  // an adopted slice counts against its quotas too
    sched::QuotaAmount a;
    for (const auto& d : s.devices) a += {d.memory_mib, d.cores, 1};
    return a;
  }());
  slices_.push_back(s);
  notes_.push_back("adopted " + s.Name() + " of uid " + std::to_string(*owner) +
                   ": its directory was not in hami.db (lost or truncated?) but " + s.cache_file +
                   " is in use; it stays until `hami release " + s.Name() + "` (owner or root)");
  return Status::Ok();
}

Status Daemon::RecoverOrphansLocked() {
  const std::string slices = options_.state_dir + "/slices";
  int64_t highest = 0;
  for (int64_t id : ListSliceDirs(slices)) {
    highest = std::max(highest, id);
    bool known = false;
    for (const auto& s : slices_) known = known || s.id == id;
    if (known) continue;
    const std::string name = "s" + std::to_string(id);
    if (FileMaybeMapped(SliceDir(id) + "/vgpu.cache")) {
      HAMI_RETURN_IF_ERROR(AdoptOrphan(id, name));
      continue;
    }
    HAMI_RETURN_IF_ERROR(RemoveSliceDir(slices, name));
    notes_.push_back("removed " + SliceDir(id) +
                     ": not in hami.db (lost or truncated?) and no process uses it");
  }
  // Ids seen on disk are never handed out again, even when the database restarted at 1.
  return store_->ReserveIdsUpTo(highest);
}

}  // namespace hami::hostd
