// Test helper: HAMi-core shared regions built byte by byte at the offsets HAMi-core's
// shared_region_t has on LP64 (written out here as numbers, independent of the reader's
// constants), for the tests of common/hamicore_region.h and of the node monitor.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace hami::testing {

class HamiCoreRegion {
 public:
  static constexpr std::size_t kSize = 2008952;
  HamiCoreRegion() : b_(kSize, '\0') {
    Put<int32_t>(0, 19920718);  // initialized_flag
    Put<uint32_t>(4, 1);        // major_version
    Put<uint32_t>(8, 1);        // minor_version
  }
  void Version(uint32_t major, uint32_t minor) {
    Put<uint32_t>(4, major);
    Put<uint32_t>(8, minor);
  }
  void DeviceNum(uint64_t n) { Put<uint64_t>(56, n); }
  // uuids[dev] (96 bytes), limit[dev], sm_limit[dev].
  void Device(std::size_t dev, const std::string& uuid, uint64_t limit, uint64_t sm_limit) {
    std::memset(&b_[64 + dev * 96], 0, 96);
    std::memcpy(&b_[64 + dev * 96], uuid.data(), uuid.size() < 96 ? uuid.size() : 96);
    Put<uint64_t>(1600 + dev * 8, limit);
    Put<uint64_t>(1728 + dev * 8, sm_limit);
  }
  // procs[slot]: pid, hostpid and used[dev] = {context, module, data, offset 0, total}.
  void Proc(std::size_t slot, int32_t pid, std::size_t dev, uint64_t context, uint64_t module,
            uint64_t data) {
    const std::size_t s = 1856 + slot * 1960;
    Put<int32_t>(s, pid);
    Put<int32_t>(s + 4, pid + 1000);
    const std::size_t m = s + 8 + dev * 64;
    Put<uint64_t>(m, context);
    Put<uint64_t>(m + 8, module);
    Put<uint64_t>(m + 16, data);
    Put<uint64_t>(m + 32, context + module + data);
    Put<int32_t>(s + 1928, 1);  // status
  }
  // procs[slot].device_util[dev].sm_util (percent).
  void SmUtil(std::size_t slot, std::size_t dev, uint64_t percent) {
    Put<uint64_t>(1856 + slot * 1960 + 1160 + dev * 48 + 16, percent);
  }
  void ProcNum(int32_t n) { Put<int32_t>(2008896, n); }
  void Priority(int32_t p) { Put<int32_t>(2008908, p); }
  void LastKernelTime(int64_t seconds) { Put<int64_t>(2008912, seconds); }
  std::string& bytes() { return b_; }

 private:
  template <typename T>
  void Put(std::size_t off, T v) {
    std::memcpy(&b_[off], &v, sizeof(v));
  }
  std::string b_;
};

}  // namespace hami::testing
