#include "webui/history.h"

#include <algorithm>
#include <cmath>

namespace hami::webui {
namespace {

constexpr uint16_t kMissing = 65535;
constexpr double kQuant = 65534.0;

uint16_t Quantise(double fraction) {
  if (fraction < 0 || std::isnan(fraction)) return kMissing;
  return static_cast<uint16_t>(std::lround(std::min(1.0, fraction) * kQuant));
}

double Unquantise(uint16_t q, double scale) {
  return q == kMissing ? -1.0 : static_cast<double>(q) / kQuant * scale;
}

}  // namespace

History::History(HistoryOptions options) : options_(options) {
  if (options_.interval_s <= 0) options_.interval_s = 5;
  if (options_.max_series == 0) options_.max_series = 1;
}

void History::PushTier(Tier& t, size_t tier, int64_t tick, const std::array<double, 4>& v) {
  const int64_t bucket = tick / kFactor[tier];
  auto write = [&t, tier](int64_t b, const std::array<double, 4>& x, bool valid) {
    const size_t cap = static_cast<size_t>(kPoints[tier]);
    if (t.ring.empty()) t.ring.resize(cap);
    if (t.last_bucket >= 0 && b > t.last_bucket + 1) {
      // A gap (the series was absent): missing points, at most one ring's worth.
      int64_t gap = std::min<int64_t>(b - t.last_bucket - 1, static_cast<int64_t>(cap));
      for (int64_t i = 0; i < gap; ++i) {
        t.ring[t.head] = Sample{kMissing, kMissing, kMissing, kMissing};
        t.head = (t.head + 1) % cap;
        t.size = std::min(cap, t.size + 1);
      }
    }
    Sample s{kMissing, kMissing, kMissing, kMissing};
    if (valid) s = Sample{Quantise(x[0]), Quantise(x[1]), Quantise(x[2]), Quantise(x[3])};
    t.ring[t.head] = s;
    t.head = (t.head + 1) % cap;
    t.size = std::min(cap, t.size + 1);
    t.last_bucket = b;
  };
  if (kFactor[tier] == 1) {
    write(bucket, v, true);
    return;
  }
  if (t.acc_bucket != bucket) {
    if (t.acc_n > 0) write(t.acc_bucket, Average(t), true);
    t.acc = {};
    t.acc_k = {};
    t.acc_n = 0;
    t.acc_bucket = bucket;
  }
  // Unknown values (-1) stay unknown in the average only when every sample was unknown.
  for (int i = 0; i < 4; ++i) {
    if (v[i] < 0) continue;
    t.acc[i] += v[i];
    t.acc_k[i]++;
  }
  t.acc_n++;
}

std::array<double, 4> History::Average(const Tier& t) {
  std::array<double, 4> avg{};
  for (int i = 0; i < 4; ++i) avg[i] = t.acc_k[i] > 0 ? t.acc[i] / t.acc_k[i] : -1.0;
  return avg;
}

void History::Push(const std::string& key, double scale_mib, int64_t tick,
                   const std::array<double, 4>& fractions) {
  auto it = series_.find(key);
  if (it == series_.end()) {
    if (series_.size() >= options_.max_series) {
      series_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    it = series_.emplace(key, Series{}).first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Series& s = it->second;
  if (tick <= s.last_tick) return;
  s.last_tick = tick;
  s.scale_mib = scale_mib > 0 ? scale_mib : 1;
  for (size_t i = 0; i < s.tiers.size(); ++i) PushTier(s.tiers[i], i, tick, fractions);
}

void History::Record(const Snapshot& snap, int64_t tick) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& g : snap.gpus) {
    const double m = static_cast<double>(std::max<int64_t>(g.memory_mib, 1));
    Push("gpu:" + g.uuid, m, tick,
         {g.used_mib < 0 ? -1.0 : static_cast<double>(g.used_mib) / m,
          static_cast<double>(g.allocated_mib) / m, g.util, g.allocated_cores / 100.0});
  }
  for (const auto& w : snap.workloads) {
    double scale = 0, used = 0, limit = 0, util = 0, cores = 0;
    bool used_known = false, util_known = false;
    for (const auto& sl : w.slices) {
      auto it = snap.gpu_by_uuid.find(sl.uuid);
      const double card = it == snap.gpu_by_uuid.end()
                              ? static_cast<double>(sl.limit_mib)
                              : static_cast<double>(snap.gpus[it->second].memory_mib);
      scale += card;
      limit += sl.limit_mib > 0 ? static_cast<double>(sl.limit_mib) : card;
      if (sl.used_mib >= 0) used += static_cast<double>(sl.used_mib), used_known = true;
      if (sl.util >= 0) util += sl.util, util_known = true;
      cores += sl.cores > 0 ? sl.cores / 100.0 : 1.0;
    }
    if (w.slices.empty() || scale <= 0) continue;
    const double n = static_cast<double>(w.slices.size());
    Push(
        "workload:" + w.id, scale, tick,
        {used_known ? used / scale : -1.0, limit / scale, util_known ? util / n : -1.0, cores / n});
  }
}

HistorySeries History::Get(const std::string& key, int64_t range_s) const {
  std::lock_guard<std::mutex> lock(mu_);
  HistorySeries out;
  size_t tier = 0;
  while (tier + 1 < kFactor.size() &&
         static_cast<int64_t>(kFactor[tier]) * options_.interval_s * kPoints[tier] < range_s) {
    ++tier;
  }
  const int32_t step = kFactor[tier] * options_.interval_s;
  out.step_s = step;
  auto it = series_.find(key);
  if (it == series_.end()) return out;
  const Series& s = it->second;
  const Tier& t = s.tiers[tier];
  out.mem_total_mib = s.scale_mib;
  const size_t cap = static_cast<size_t>(kPoints[tier]);
  const size_t want = static_cast<size_t>(std::max<int64_t>(1, range_s / step));
  size_t n = std::min(t.size, want);
  auto point = [&](int64_t bucket, const Sample& x) {
    HistoryPoint p;
    p.t_unix = bucket * step;
    p.valid = !(x.mem_used == kMissing && x.mem_limit == kMissing && x.util == kMissing &&
                x.cores == kMissing);
    p.mem_used_mib = Unquantise(x.mem_used, s.scale_mib);
    p.mem_limit_mib = Unquantise(x.mem_limit, s.scale_mib);
    p.util = Unquantise(x.util, 1);
    p.cores_limit = Unquantise(x.cores, 1);
    return p;
  };
  const bool partial = kFactor[tier] > 1 && t.acc_n > 0;
  if (partial && n == want && n > 0) --n;  // leave room for the bucket being filled
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (t.head + cap - n + i) % cap;
    out.points.push_back(point(t.last_bucket - static_cast<int64_t>(n - 1 - i), t.ring[idx]));
  }
  if (partial) {
    const std::array<double, 4> avg = Average(t);
    out.points.push_back(point(t.acc_bucket, Sample{Quantise(avg[0]), Quantise(avg[1]),
                                                    Quantise(avg[2]), Quantise(avg[3])}));
  }
  return out;
}

size_t History::series_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_.size();
}

size_t History::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t b = 0;
  for (const auto& [k, s] : series_) {
    b += sizeof(Series) + k.size();
    for (const auto& t : s.tiers) b += t.ring.capacity() * sizeof(Sample);
  }
  return b;
}

}  // namespace hami::webui
