// Pure charge bookkeeping of the memory hooks: what this process charged for each pointer,
// handle, pool and context, so that a free releases exactly that; and the size arithmetic of
// the charges. No driver, no accounting file: unit-tested alone (memory_book_test.cc).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "abi/cuda_abi.h"
#include "abi/nvml_abi.h"
#include "config.h"

namespace hami::vgpu {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kPoolChunk = 2 * kMiB;
inline constexpr uint64_t kPoolGrainMax = 64 * kMiB;  // a learned pool growth step is at most this

inline constexpr uint64_t RoundUp(uint64_t v, uint64_t to) {
  return to ? (v + to - 1) / to * to : v;
}

// Bytes per element of an array format; 4 (conservative) for formats it does not know.
size_t ElementBytes(CUarray_format f);
// Charge of a w x h x d array (h, d may be 0), rounded to 2 MiB.
uint64_t ArrayBytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned channels);
// Charge of a mipmapped array: every level (each half the previous), rounded to 2 MiB.
uint64_t MipmapBytes(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned levels);
// The growth step that explains a pool growing by `grew` bytes for `need`: the smallest power
// of two from 2 MiB up to kPoolGrainMax with RoundUp(need, step) == grew, else kPoolGrainMax
// when the growth stays under it (a cautious guess), else 0 (nothing learned).
uint64_t PoolGrain(uint64_t need, uint64_t grew);
// The one PID in `after` and not in `before`; 0 when none or several joined.
uint32_t JoinedPid(const nvmlProcessInfo_t* before, unsigned nb, const nvmlProcessInfo_t* after,
                   unsigned na);

enum Kind { kPtr = 0, kVmm, kArray, kMipmap, kContext, kKinds };

struct Charge {
  int ordinal;
  uint64_t bytes;
  CUmemoryPool pool;  // for async allocations: the pool that served it
};

struct PoolRec {
  CUmemoryPool pool;
  int ordinal;
  uint64_t counted;  // bytes of the pool's reservation charged to us
  uint64_t grain;    // the driver's growth step, learned (0 = not seen yet: kPoolChunk)
};

// What this process has charged. Track/Untrack lock internally; *Locked members expect mu()
// held by the caller (the pool paths hold it across a driver query and the update).
class ChargeBook {
 public:
  void Track(Kind k, uint64_t key, int ord, uint64_t bytes, CUmemoryPool pool = nullptr);
  // Removes the charge of `key` into *out; false when it was never charged.
  bool Untrack(Kind k, uint64_t key, Charge* out);

  std::mutex& mu() { return mu_; }
  std::vector<PoolRec>& PoolsLocked() { return pools_; }
  PoolRec* FindPoolLocked(CUmemoryPool pool);
  // The record of `pool`, created for device `ord` when new (*created set true).
  PoolRec* AddPoolLocked(CUmemoryPool pool, int ord, bool* created);
  // Forgets `pool`; returns what was counted for it (to release).
  uint64_t ErasePoolLocked(CUmemoryPool pool);
  uint64_t& GraphCountedLocked(int ord) { return graph_counted_[ord]; }

  // Forgets everything charged on device `ord` (pointers, arrays, pools, graph memory; not
  // contexts or VMM handles, which outlive a primary-context reset) and returns its sum.
  uint64_t DropDevice(int ord);

  // Primary contexts, one per device, charged at the first retain and released at the last
  // release. Guarded by their own lock: a retain calls into the driver while holding it.
  void LockPrimary() { primary_mu_.lock(); }
  void UnlockPrimary() { primary_mu_.unlock(); }
  int& PrimaryRefsLocked(int ord) { return primary_refs_[ord]; }
  uint64_t& PrimaryCostLocked(int ord) { return primary_cost_[ord]; }

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, Charge> maps_[kKinds];
  std::vector<PoolRec> pools_;
  uint64_t graph_counted_[kMaxDevices] = {};
  std::mutex primary_mu_;
  int primary_refs_[kMaxDevices] = {};
  uint64_t primary_cost_[kMaxDevices] = {};
};

}  // namespace hami::vgpu
