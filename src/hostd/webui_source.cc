#include "hostd/webui_source.h"

#include <pwd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/accounting_reader.h"

namespace hami::hostd {
namespace {

// The requester's login name (the uid the daemon recorded from the caller's credentials), as
// the API's "user" field shows it; the web UI's redaction compares these names.
std::string UserOf(uint32_t uid) {
  if (uid == kNoUid) return "";
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string JoinCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
    if (out.size() > 512) return out.substr(0, 512) + "...";
  }
  return out;
}

webui::WorkloadRow ToWorkload(const Slice& s, const std::string& node) {
  webui::WorkloadRow w;
  w.id = s.Name();
  w.kind = "job";
  w.ns = "hami-run";
  w.name = s.Name();
  w.node = node;
  w.user = UserOf(s.request.uid);
  w.command = JoinCommand(s.request.command);
  w.state = (s.job.pid > 0 && IsAlive(s.job)) ? "running" : "allocated";
  w.created_unix = s.created_unix;
  auto acc = accounting::ReadAccountingFile(s.cache_file);
  for (const auto& d : s.devices) {
    webui::SliceRow r;
    r.uuid = d.uuid;
    r.node = node;
    r.limit_mib = d.memory_mib;
    r.cores = d.cores;
    r.used_mib = 0;  // no accounting file yet: CUDA has not started, nothing is used
    if (acc.ok()) {
      if (const accounting::AccountingDevice* a = acc->Find(d.uuid)) {
        r.used_mib = static_cast<int64_t>(a->used_bytes >> 20);
        r.busy_ns = static_cast<int64_t>(a->busy_ns_total);
        r.processes = static_cast<int32_t>(a->processes);
      }
    }
    w.slices.push_back(r);
  }
  return w;
}

// HostQuotas::Rows (one per bounded dimension, grouped by rule) as one row per user or group.
std::vector<webui::QuotaRow> QuotaRowsOf(const std::vector<HostQuotas::Row>& rows) {
  std::vector<webui::QuotaRow> out;
  for (const auto& r : rows) {
    if (out.empty() || out.back().kind != r.kind || out.back().owner != r.owner) {
      webui::QuotaRow q;
      q.kind = r.kind;
      q.owner = r.owner;
      q.ns = "hami-run";  // where the owner's jobs show (WorkloadRow::ns)
      out.push_back(std::move(q));
    }
    webui::QuotaUse& u = r.dim == sched::QuotaDim::kMemory  ? out.back().memory_mib
                         : r.dim == sched::QuotaDim::kCores ? out.back().cores
                                                            : out.back().gpus;
    u.used = r.used;
    u.limit = r.limit;
  }
  return out;
}

}  // namespace

webui::Snapshot DaemonWebUiSource::Collect() {
  webui::Snapshot snap;
  const std::string& node = daemon_.options().node_name;
  snap.mode = "host";
  snap.fake = daemon_.fake();
  snap.source = daemon_.gpu_source();
  snap.taken_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  for (const auto& g : daemon_.Gpus()) {
    webui::GpuRow r;
    r.node = node;
    r.uuid = g.gpu.uuid;
    r.index = g.gpu.index;
    r.type = g.type;
    r.healthy = g.gpu.healthy;
    r.memory_mib = g.memory_mib;
    r.split_count = g.split_count;
    r.allocated_mib = g.usage.used_mem_mib;
    r.allocated_cores = g.usage.used_cores;
    r.slices = g.usage.used_slices;
    r.exclusive = g.usage.exclusive > 0;
    snap.gpus.push_back(std::move(r));
  }
  for (const auto& s : daemon_.Slices()) snap.workloads.push_back(ToWorkload(s, node));
  snap.quotas = QuotaRowsOf(daemon_.QuotaRows());
  const std::map<int64_t, std::string> quota_waits = daemon_.QuotaWaits();
  const std::string head_reason = daemon_.QueueReason();
  int32_t pos = 1;
  for (const auto& q : daemon_.Queue()) {
    webui::PendingRow p;
    p.id = "t" + std::to_string(q.ticket);
    p.kind = "job";
    p.ns = "hami-run";
    p.name = "ticket " + std::to_string(q.ticket);
    p.user = UserOf(q.request.uid);
    p.gpus = q.request.gpus;
    p.memory_mib = q.request.memory_mib;
    p.memory_percent = q.request.memory_percent;
    p.cores = q.request.cores;
    p.position = pos;
    p.since_unix = q.created_unix;
    // The queue is strict FIFO: only the head waits for the GPUs; the rest wait for it.
    p.reason = pos == 1 ? head_reason
                        : "behind " + std::to_string(pos - 1) + " earlier request" +
                              (pos == 2 ? "" : "s") + " (first in, first out)";
    // A request over its owner's quota is passed over (later ones may go first): it waits for
    // that quota, named in the reason, not for the GPUs.
    if (auto it = quota_waits.find(q.ticket); it != quota_waits.end()) {
      p.reason = it->second;
      p.quota = true;
    }
    snap.pending.push_back(std::move(p));
    ++pos;
  }
  return snap;
}

}  // namespace hami::hostd
