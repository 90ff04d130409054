// When the compute limiter throttles (policy default: only while another workload uses the
// GPU, seen on the board, in the monitor's contention file or through NVML) and the power
// probes that learn what work costs at full duty alone on the card (docs/compute-limiter.md,
// sections 3 and 6).
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "compute_internal.h"
#include "device_map.h"
#include "glibc_compat.h"
#include "log.h"
#include "real.h"
#include "state.h"

namespace hami::vgpu::climit {
namespace {

// Device utilisation (NVML) well above what the container itself used over about the same
// window means someone else is computing on the GPU. Two checks in a row, to ride out NVML's
// sampling lag when the container itself stops.
//
// The container's share is taken over the last 0.3-1.2 s: from the oldest of the last 8
// checks that is not older than that. Checks happen at launches, so after a pause the ring
// holds checks from before it; compared with one of those, the container's own share read
// as its work spread over the pause (1 % after 40 s idle) while NVML showed its work of the
// last moments, and a process that resumed next to idle neighbours holding contexts took its
// own work for a neighbour's for most of a second.
bool NvmlSeesOthers(DevLimiter* d, uint64_t now) {
  uint64_t busy =
      d->shm ? __atomic_load_n(&d->shm->busy_ns_total, __ATOMIC_RELAXED) : d->local_busy;
  int n = d->snap_n < 8 ? d->snap_n : 8;
  uint64_t t_old = 0, b_old = 0;
  for (int k = n; k >= 1; --k) {  // oldest first
    int i = (d->snap_n - k) % 8;
    if (now > d->snap_t[i] && now - d->snap_t[i] <= kNvmlSpanMaxNs) {
      t_old = d->snap_t[i];
      b_old = d->snap_busy[i];
      break;
    }
  }
  d->snap_t[d->snap_n % 8] = now;
  d->snap_busy[d->snap_n % 8] = busy;
  d->snap_n = d->snap_n < 15 ? d->snap_n + 1 : 8;  // past 8: the ring's order, no overflow
  if (t_old == 0 || now - t_old < kNvmlSpanMinNs || busy < b_old) {
    d->nvml_hits = 0;
    return false;
  }
  double ours = 100.0 * static_cast<double>(busy - b_old) / static_cast<double>(now - t_old);
  nvmlUtilization_t u;
  if (g_nvml.nvmlDeviceGetUtilizationRates(d->nvml, &u) != NVML_SUCCESS) return false;
  d->nvml_hits = static_cast<double>(u.gpu) > ours + kNvmlMarginPct ? d->nvml_hits + 1 : 0;
  return d->nvml_hits >= 2;
}

// NVML's handle of the card, opened at first use. False when NVML cannot be used.
bool CardHandle(DevLimiter* d) {
  if (d->nvml_card) return true;
  int ord = static_cast<int>(d - g_dev);
  if (!LoadRealNvml() || g_nvml.nvmlInit_v2() != NVML_SUCCESS ||
      g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[ord].uuid, &d->nvml_card) != NVML_SUCCESS) {
    d->nvml_card = nullptr;
    return false;
  }
  return true;
}

// NVML's per-process utilisation since `since_us` (CLOCK_REALTIME, microseconds): whether it
// could tell (`known`), and whether a process other than this one had SM time (`others`): a
// PID other than ours where NVML's name for our PID is known, else any PID (ours cannot be
// told from another's: one PID with SM time may be a neighbour's while our own work has not
// reached the samples yet, or while we paused; isolation is at stake, so it counts). A process
// that only holds a context (an idle notebook, a server between requests) has none. It cannot
// tell where the call is missing or fails (MIG, vGPU, old drivers) or more samples come than
// the buffer holds. The driver filters by `since_us`; a driver that returned older samples as
// well would only make `others` true more often. A process that computed and has exited
// counts too (it shares nothing any more, but telling it apart would trust NVML's process
// list and its samples to name processes alike: where they did not, every neighbour would
// look idle).
struct Computing {
  bool known, others;
};
Computing ComputingSince(DevLimiter* d, uint64_t since_us) {
  if (!CardHandle(d) || !g_nvml.nvmlDeviceGetProcessUtilization) return {false, false};
  nvmlProcessUtilizationSample_t s[kUtilSamples];
  unsigned int n = kUtilSamples;
  nvmlReturn_t r = g_nvml.nvmlDeviceGetProcessUtilization(d->nvml_card, s, &n, since_us);
  if (r == NVML_ERROR_NOT_FOUND) return {true, false};  // no samples: nobody computed since
  if (r != NVML_SUCCESS || n > kUtilSamples) return {false, false};
  uint32_t self = DriverPid();
  for (unsigned int i = 0; i < n; ++i)
    if (s[i].smUtil != 0 && s[i].pid != self) return {true, true};
  return {true, false};
}

// Whether no process but this one computed on the card since `since_us`: every sample with SM
// time is ours. False when NVML cannot tell, and where NVML's name for our PID is unknown (a
// PID namespace of our own before a context creation taught it, a forked child).
bool OthersIdleSince(DevLimiter* d, uint64_t since_us) {
  if (DriverPid() == 0) return false;
  Computing c = ComputingSince(d, since_us);
  return c.known && !c.others;
}

// NVML's process list of the card: no other process has a context on it (kListedAlone),
// others have (kOthersListed), or NVML cannot tell (kUnknown).
enum class Listed : uint8_t { kUnknown, kListedAlone, kOthersListed };
Listed ListedOnCard(DevLimiter* d) {
  if (!CardHandle(d) || !g_nvml.nvmlDeviceGetComputeRunningProcesses_v3) return Listed::kUnknown;
  nvmlProcessInfo_t infos[4];
  unsigned int count = 4;
  nvmlReturn_t r = g_nvml.nvmlDeviceGetComputeRunningProcesses_v3(d->nvml_card, &count, infos);
  if (r == NVML_SUCCESS) return count <= 1 ? Listed::kListedAlone : Listed::kOthersListed;
  return r == NVML_ERROR_INSUFFICIENT_SIZE ? Listed::kOthersListed : Listed::kUnknown;
}

// Whether the card is this process's alone since `since_us` (CLOCK_REALTIME, microseconds), as
// a power probe needs: any other process that computes, of this container or another, with
// or without libvgpu, shares the card's time and power. When NVML lists other processes with
// a context on the card: true if they did not compute since `since_us` (OthersIdleSince).
// When it lists none: true in the host's PID namespace, where the list holds every process on
// the card; in a PID namespace of our own (a container) the list holds only the container's
// own processes, while the per-process utilisation comes from every process on the card: true
// unless it shows another process's SM time, or any where NVML's name for our PID is unknown
// (where NVML cannot tell, the list decides). A
// process of the host that computed and exited in the last second keeps the probe off there
// too (its PID cannot be checked for life from inside). False when NVML cannot tell at all.
bool AloneOnCard(DevLimiter* d, uint64_t since_us) {
  Listed l = ListedOnCard(d);
  if (l == Listed::kListedAlone)
    return InInitialPidNamespace() || !ComputingSince(d, since_us).others;
  return l == Listed::kOthersListed && OthersIdleSince(d, since_us);
}

uint64_t RealtimeUs() { return Realtime() / 1000; }

// The limits file as last read: a change of its identity, size or times makes it read again.
struct FileStamp {
  dev_t dev;
  ino_t ino;
  off_t size;
  timespec mtim, ctim;
};
pthread_mutex_t g_reload_mu = PTHREAD_MUTEX_INITIALIZER;
uint64_t g_next_reload;  // written under g_reload_mu
FileStamp g_seen;        // under g_reload_mu
bool g_seen_ok;          // under g_reload_mu

bool SameFile(const FileStamp& a, const struct stat& st) {
  return a.dev == st.st_dev && a.ino == st.st_ino && a.size == st.st_size &&
         a.mtim.tv_sec == st.st_mtim.tv_sec && a.mtim.tv_nsec == st.st_mtim.tv_nsec &&
         a.ctim.tv_sec == st.st_ctim.tv_sec && a.ctim.tv_nsec == st.st_ctim.tv_nsec;
}

// Applies the SM limits of the limits file as it reads now. One that cannot be read or
// parsed changes nothing: the share stays as it was, never lifted by a broken file.
void ApplySmLimits(uint64_t now) {
  uint32_t sm[kMaxDevices] = {};
  char err[1400];
  if (!ReloadSmLimits(g_state.cfg, sm, err, sizeof(err))) {
    VGPU_LOG(kLogWarn, "compute: %s; the compute share stays as it was", err);
    return;
  }
  for (int i = 0; i < g_state.ndev; ++i) {
    DeviceState& ds = g_state.dev[i];
    uint32_t l = sm[ConfigIndexFor(g_state.cfg, i, ds.uuid)];
    uint32_t lim = LimiterShare(l);
    DevLimiter* d = &g_dev[i];
    if (lim == d->limit) continue;
    VGPU_LOG(kLogInfo, "compute: device %d share %u%% -> %u%% (limits file) at %llu ms", i,
             d->limit, lim, static_cast<unsigned long long>(now / kMs));
    if (Cfg().stats) PacePeriodStats(d->limit);
    __atomic_store_n(&d->limit_changed, now, __ATOMIC_RELAXED);
    __atomic_store_n(&d->limit, lim, __ATOMIC_RELAXED);
    ds.sm_limit = l;
    if (g_state.accounting && ds.entry >= 0)
      g_state.acct.SetDeviceInfo(ds.entry, ds.limit, l,
                                 static_cast<uint32_t>(g_state.cfg.priority));
  }
}

// The node agent changes a running slice's compute share by rewriting its limits file: looked
// at every kReloadCheckNs (a stat), read again when it changed.
void ReloadLimitsIfChanged(uint64_t now) {
  if (!g_state.cfg.from_file || now < __atomic_load_n(&g_next_reload, __ATOMIC_RELAXED)) return;
  if (pthread_mutex_trylock(&g_reload_mu) != 0) return;  // another thread is at it
  if (now >= g_next_reload) {
    __atomic_store_n(&g_next_reload, now + kReloadCheckNs, __ATOMIC_RELAXED);
    struct stat st;
    if (LstatPath(g_state.cfg.limits_file, &st) == 0 && !(g_seen_ok && SameFile(g_seen, st))) {
      g_seen = FileStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
      g_seen_ok = true;
      ApplySmLimits(now);
    }
  }
  pthread_mutex_unlock(&g_reload_mu);
}

}  // namespace

void OpenBoard(int ord, DevLimiter* d) {
  d->board_tried = true;
  const char* uuid = g_state.dev[ord].uuid;
  char err[1400];
  if (!d->board.Open(g_board_dir, uuid, err, sizeof(err)))
    VGPU_LOG(kLogWarn, "compute: %s; priority and contention across containers not seen", err);
  snprintf(d->contention_path, sizeof(d->contention_path), "%s/%s", g_contention_dir, uuid);
}

// Whether the limit applies now (policy). Contention is refreshed every kContentionCheckNs.
bool Throttling(DevLimiter* d, uint64_t now) {
  if (now >= d->next_check) {
    d->next_check = now + kContentionCheckNs;
    ReloadLimitsIfChanged(now);
    bool c = d->board.OthersActive(g_container_id, now, kContendedWindowNs);
    ContentionInfo ci;
    bool higher = false;
    if (ReadContention(d->contention_path, &ci)) {
      int64_t age_ms = static_cast<int64_t>(Realtime() / kMs) - ci.updated_ms;
      bool fresh = age_ms < 10000;
      c = c || (fresh && ci.active >= 2);
      // The monitor sees every container on the node (the board only those sharing its
      // directory): a more important one active means keeping our queue short.
      higher = fresh && ci.min_priority >= 0 && ci.min_priority < g_priority;
    }
    d->monitor_higher = higher;
    // NVML's device utilisation above our own busy share means someone else computes, unless
    // no other process computed on the card lately (none listed, or the others' per-process
    // utilisation is nil): then it is our own work that the busy estimate missed (while not
    // throttled most launches are counted, not measured).
    if (!c && d->nvml && d->limit)
      c = NvmlSeesOthers(d, now) && !AloneOnCard(d, RealtimeUs() - kRecentComputeUs);
    if (c != d->contended)
      VGPU_LOG(kLogInfo, "compute: GPU %s contended=%d at %llu ms (CLOCK_MONOTONIC)",
               d->contention_path, c ? 1 : 0, static_cast<unsigned long long>(now / kMs));
    d->contended = c;
  }
  return ThrottledNow(d);
}

namespace {
// A launch's relation to the probes (under g_mu): in the settled part of one, near one, or not.
uint8_t ClassAt(const DevLimiter* d, uint64_t now) {
  if (now < d->probe_end) return now >= d->probe_start + Cfg().probe_ns * 2 / 3 ? kSettled : kNear;
  return d->probe_id && now < d->probe_end + kAfterProbeNs ? kNear : kOutside;
}
}  // namespace

namespace {
// Settles the last probe of `d` in every context on it: its samples become the reference
// (`alone`), or are forgotten (another process computed during it). Under g_mu.
void SettleProbe(DevLimiter* d, bool alone) {
  d->probe_phase = alone ? kProbeConfirmed : kProbeDiscarded;
  for (int i = 0; i < kMaxCtx; ++i) {
    CtxState* c = g_ctx[i];
    if (!c || !c->ctx || DevOf(c) != d) continue;
    if (alone) {
      c->power.Confirm(d->probe_id);
    } else {
      c->power.Discard(d->probe_id);
    }
  }
  if (alone) return;
  if (Cfg().stats) ++g_stats.probes_discarded;
  VGPU_LOG(kLogInfo,
           "compute: power probe %u discarded: another process computed during it (or NVML "
           "could not tell)",
           d->probe_id);
}
}  // namespace

uint8_t PowerProbeStep(DevLimiter* d, uint64_t now, bool* probing) {
  uint8_t probe = kOutside;
  pthread_mutex_lock(&g_mu);
  if (now >= d->probe_end) {
    if (d->next_probe == 0) {
      d->next_probe = now + kFirstProbeNs;
    } else if (d->probe_id &&
               (d->probe_phase == kProbeRan || d->probe_phase == kProbeAwaitingSamples)) {
      // Another process that computed during the probe shared the card: its samples are
      // void. Right after the probe, alone in NVML's process list, it is confirmed at once (a
      // process that came and went during it is missed). Otherwise NVML's per-process samples
      // of the probe's time tell, a sample period after its end (they come that late), also
      // when this step comes late (contended meanwhile: the neighbour may have left the list
      // since); much later the driver may no longer hold them, and it is discarded.
      if (d->probe_phase == kProbeRan && now < d->probe_end + kProbeCheckNs) {
        Listed l = ListedOnCard(d);
        if (l == Listed::kOthersListed) {
          d->probe_phase = kProbeAwaitingSamples;
        } else {
          SettleProbe(d, l == Listed::kListedAlone);
        }
      } else if (now >= d->probe_end + kProbeCheckNs) {
        SettleProbe(d,
                    now < d->probe_end + kProbeCheckMaxNs && OthersIdleSince(d, d->probe_real_us));
      }
    } else if (now >= d->next_probe) {
      if (AloneOnCard(d, RealtimeUs() - kRecentComputeUs)) {
        d->probe_start = now;
        d->probe_end = now + Cfg().probe_ns;
        d->probe_real_us = RealtimeUs();
        d->next_probe = now + Cfg().probe_every_ns;
        ++d->probe_id;
        d->probe_phase = kProbeRan;
        if (Cfg().stats) ++g_stats.probes;
        VGPU_LOG(kLogInfo, "compute: power probe %u at %llu ms (CLOCK_MONOTONIC)", d->probe_id,
                 static_cast<unsigned long long>(now / kMs));
      } else {
        d->next_probe = now + kProbeRetryNs;
        VGPU_LOG(kLogInfo, "compute: power probe put off at %llu ms: not alone on the card",
                 static_cast<unsigned long long>(now / kMs));
      }
    }
  }
  *probing = now < d->probe_end;
  probe = ClassAt(d, now);
  pthread_mutex_unlock(&g_mu);
  return probe;
}

uint8_t ProbeClass(DevLimiter* d, uint64_t now) {
  pthread_mutex_lock(&g_mu);
  uint8_t probe = ClassAt(d, now);
  pthread_mutex_unlock(&g_mu);
  return probe;
}

}  // namespace hami::vgpu::climit
