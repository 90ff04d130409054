// Bounded in-memory history of cards and workloads, so the UI's charts (15 min, 1 h, 6 h) work
// without Prometheus. Three ring buffers per series (fine samples, and averages of them over
// longer buckets), values quantised to 16 bits of the series' scale; at most max_series series
// (the one touched longest ago is dropped first). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "webui/model.h"

namespace hami::webui {

struct HistoryOptions {
  int32_t interval_s = 5;  // one fine sample per interval (the sampler's tick)
  size_t max_series = 16384;
};

// One point as recorded; NaN-free: missing points are reported as `valid = false`.
struct HistoryPoint {
  int64_t t_unix = 0;
  bool valid = false;
  double mem_used_mib = 0, mem_limit_mib = 0;  // limit: promised (allocated)
  double util = 0, cores_limit = 0;            // 0..1 of the card(s)
};

struct HistorySeries {
  int32_t step_s = 0;
  double mem_total_mib = 0;          // the scale: the card's memory (sum over a workload's cards)
  std::vector<HistoryPoint> points;  // oldest first
};

class History {
 public:
  // The tiers: step = interval x factor, points kept per tier. With the default 5 s interval:
  // 5 s x 180 (15 min), 30 s x 120 (1 h), 180 s x 120 (6 h).
  static constexpr std::array<int32_t, 3> kFactor = {1, 6, 36};
  static constexpr std::array<int32_t, 3> kPoints = {180, 120, 120};

  explicit History(HistoryOptions options = {});

  // Records one sample of every card and workload of `s` at tick `tick` (= unix time /
  // interval). A tick not newer than the series' last one is ignored.
  void Record(const Snapshot& s, int64_t tick);

  // The series for "gpu:<uuid>" or "workload:<id>" covering at least `range_s` seconds with the
  // finest tier that does; nullopt-like empty series (no points) when unknown.
  HistorySeries Get(const std::string& key, int64_t range_s) const;

  size_t series_count() const;
  size_t bytes() const;  // memory held by the ring buffers
  const HistoryOptions& options() const { return options_; }

 private:
  struct Sample {  // fractions of the scale, 0..65534; 65535 = missing
    uint16_t mem_used = 0, mem_limit = 0, util = 0, cores = 0;
  };
  struct Tier {
    std::vector<Sample> ring;  // fixed capacity, allocated on first use
    size_t head = 0, size = 0;
    int64_t last_bucket = -1;        // bucket index (tick / factor) of the newest point
    std::array<double, 4> acc{};     // sums of the known values of the bucket being filled
    std::array<int32_t, 4> acc_k{};  // how many were known
    int32_t acc_n = 0;
    int64_t acc_bucket = -1;
  };
  struct Series {
    double scale_mib = 1;
    int64_t last_tick = -1;
    std::array<Tier, 3> tiers;
    std::list<std::string>::iterator lru;
  };

  void Push(const std::string& key, double scale_mib, int64_t tick,
            const std::array<double, 4>& fractions);
  static void PushTier(Tier& t, size_t tier, int64_t tick, const std::array<double, 4>& v);
  static std::array<double, 4> Average(const Tier& t);

  HistoryOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Series> series_;
  std::list<std::string> lru_;  // front: most recently recorded
};

}  // namespace hami::webui
