#include "hostd/accounting_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "hami/vgpu_shm.h"

namespace hami::hostd {

StatusOr<std::map<std::string, DeviceUse>> ReadAccounting(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("no accounting file " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(hami_shm_header))) {
    close(fd);
    // An empty file is one that no CUDA process initialised yet.
    return NotFound("accounting file " + path + " not initialised yet");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return NotFound("cannot map " + path);
  const auto* h = static_cast<const hami_shm_header*>(map);
  std::map<std::string, DeviceUse> out;
  Status bad;
  if (h->magic != HAMI_SHM_MAGIC || h->version != HAMI_SHM_VERSION) {
    bad = InvalidArgument(path + " is not a version " + std::to_string(HAMI_SHM_VERSION) +
                          " accounting file");
  } else {
    uint32_t ndev = h->device_count > HAMI_SHM_MAX_DEVICES ? HAMI_SHM_MAX_DEVICES : h->device_count;
    uint64_t slots_end = uint64_t{h->header_size} + uint64_t{h->slot_size} * h->slot_high_water;
    bool slots_ok =
        h->slot_size == HAMI_SHM_SLOT_SIZE && h->header_size >= sizeof(*h) && slots_end <= size;
    for (uint32_t d = 0; d < ndev; ++d) {
      const hami_shm_device& dev = h->devices[d];
      char uuid[HAMI_SHM_UUID_LEN + 1] = {};
      std::memcpy(uuid, dev.uuid, HAMI_SHM_UUID_LEN);
      if (uuid[0] == 0) continue;
      DeviceUse u;
      u.used_bytes = dev.used_bytes;
      u.limit_bytes = dev.mem_limit_bytes;
      u.sm_limit_percent = dev.sm_limit_percent;
      u.last_kernel_ns = dev.last_kernel_ns;
      if (slots_ok) {
        for (uint32_t s = 0; s < h->slot_high_water; ++s) {
          const auto* slot = reinterpret_cast<const hami_shm_slot*>(
              static_cast<const char*>(map) + h->header_size + uint64_t{s} * h->slot_size);
          if (slot->state == 1 && slot->used[d] > 0) ++u.processes;
        }
      }
      out[uuid] = u;
    }
  }
  munmap(map, size);
  if (!bad.ok()) return bad;
  return out;
}

}  // namespace hami::hostd
