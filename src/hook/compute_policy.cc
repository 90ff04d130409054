// When the compute limiter throttles (policy default: only while another workload uses the
// GPU, seen on the board, in the monitor's contention file or through NVML) and the power
// probes that learn what work costs at full duty alone on the card (docs/compute-limiter.md,
// sections 3 and 6).
#include <stdio.h>

#include "compute_internal.h"
#include "log.h"
#include "real.h"

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

// Whether this process is the only one with a context on the card (NVML's process list), as
// a power probe needs: any other process, of this container or another, with or without
// libvgpu, shares the card's time and power. False when NVML cannot tell.
bool AloneOnCard(DevLimiter* d) {
  if (!d->nvml_card) {
    int ord = static_cast<int>(d - g_dev);
    if (!LoadRealNvml() || g_nvml.nvmlInit_v2() != NVML_SUCCESS ||
        g_nvml.nvmlDeviceGetHandleByUUID(g_state.dev[ord].uuid, &d->nvml_card) != NVML_SUCCESS) {
      d->nvml_card = nullptr;
      return false;
    }
  }
  if (!g_nvml.nvmlDeviceGetComputeRunningProcesses_v3) return false;
  nvmlProcessInfo_t infos[4];
  unsigned int count = 4;
  return g_nvml.nvmlDeviceGetComputeRunningProcesses_v3(d->nvml_card, &count, infos) ==
             NVML_SUCCESS &&
         count <= 1;
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
    // NVML lists no other process on the card: then it is our own work that the busy
    // estimate missed (while not throttled most launches are counted, not measured).
    if (!c && d->nvml && d->limit) c = NvmlSeesOthers(d, now) && !AloneOnCard(d);
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

uint8_t PowerProbeStep(DevLimiter* d, CtxState* c, uint64_t now, bool* probing) {
  uint8_t probe = kOutside;
  pthread_mutex_lock(&g_mu);
  if (now >= d->probe_end) {
    if (d->next_probe == 0) {
      d->next_probe = now + kFirstProbeNs;
    } else if (d->probe_id && !d->probe_checked) {
      // Another process that came during the probe shared the card: its samples are void.
      d->probe_checked = true;
      d->probe_discarded = !AloneOnCard(d);
      if (d->probe_discarded) c->power.Discard(d->probe_id);
    } else if (now >= d->next_probe) {
      if (AloneOnCard(d)) {
        d->probe_start = now;
        d->probe_end = now + Cfg().probe_ns;
        d->next_probe = now + Cfg().probe_every_ns;
        ++d->probe_id;
        d->probe_checked = d->probe_discarded = false;
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
