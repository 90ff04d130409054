#include "memory_book.h"

#include "abi/cuda_array.h"

namespace hami::vgpu {

size_t ElementBytes(CUarray_format f) {
  unsigned b = abi::ArrayFormatBytes(f);
  return b ? b : 4;  // conservative for formats the list does not know
}

uint64_t ArrayBytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned channels) {
  uint64_t b = static_cast<uint64_t>(w) * (h ? h : 1) * (d ? d : 1) * (channels ? channels : 1) *
               ElementBytes(f);
  return RoundUp(b, kPoolChunk);
}

uint64_t MipmapBytes(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned levels) {
  uint64_t bytes = 0;
  size_t w = desc.Width, h = desc.Height, d = desc.Depth;
  for (unsigned l = 0; l < (levels ? levels : 1); ++l) {
    bytes += static_cast<uint64_t>(w ? w : 1) * (h ? h : 1) * (d ? d : 1) *
             (desc.NumChannels ? desc.NumChannels : 1) * ElementBytes(desc.Format);
    w >>= 1;
    h >>= 1;
    d >>= 1;
  }
  return RoundUp(bytes, kPoolChunk);
}

uint64_t PoolGrain(uint64_t need, uint64_t grew) {
  for (uint64_t g = kPoolChunk; g <= kPoolGrainMax; g *= 2)
    if (RoundUp(need, g) == grew) return g;
  return grew <= kPoolGrainMax ? kPoolGrainMax : 0;
}

uint32_t JoinedPid(const nvmlProcessInfo_t* before, unsigned nb, const nvmlProcessInfo_t* after,
                   unsigned na) {
  uint32_t joined = 0;
  for (unsigned i = 0; i < na; ++i) {
    bool known = false;
    for (unsigned j = 0; j < nb && !known; ++j) known = before[j].pid == after[i].pid;
    if (known) continue;
    if (joined) return 0;
    joined = after[i].pid;
  }
  return joined;
}

void ChargeBook::Track(Kind k, uint64_t key, int ord, uint64_t bytes, CUmemoryPool pool) {
  std::lock_guard<std::mutex> g(mu_);
  maps_[k][key] = Charge{ord, bytes, pool};
}

bool ChargeBook::Untrack(Kind k, uint64_t key, Charge* out) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = maps_[k].find(key);
  if (it == maps_[k].end()) return false;
  *out = it->second;
  maps_[k].erase(it);
  return true;
}

PoolRec* ChargeBook::FindPoolLocked(CUmemoryPool pool) {
  for (auto& p : pools_)
    if (p.pool == pool) return &p;
  return nullptr;
}

PoolRec* ChargeBook::AddPoolLocked(CUmemoryPool pool, int ord, bool* created) {
  *created = false;
  if (PoolRec* p = FindPoolLocked(pool)) return p;
  pools_.push_back(PoolRec{pool, ord, 0, 0});
  *created = true;
  return &pools_.back();
}

uint64_t ChargeBook::ErasePoolLocked(CUmemoryPool pool) {
  for (auto it = pools_.begin(); it != pools_.end(); ++it) {
    if (it->pool == pool) {
      uint64_t counted = it->counted;
      pools_.erase(it);
      return counted;
    }
  }
  return 0;
}

uint64_t ChargeBook::DropDevice(int ord) {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t total = 0;
  for (int k : {kPtr, kArray, kMipmap}) {
    for (auto it = maps_[k].begin(); it != maps_[k].end();) {
      if (it->second.ordinal == ord) {
        total += it->second.bytes;
        it = maps_[k].erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (it->ordinal == ord) {
      total += it->counted;
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
  total += graph_counted_[ord];
  graph_counted_[ord] = 0;
  return total;
}

}  // namespace hami::vgpu
