// Host paths under global.gpuHookPath (abi/node_layout.h spelled as std::string for host-side
// code): the device plugin writes them, the node monitor reads them, containers mount them.
#pragma once

#include <string>

#include "abi/node_layout.h"

namespace hami::common {

struct HookLayout {
  std::string root;  // <hookPath>/vgpu
  std::string Library() const { return root + "/" + abi::kLibraryName; }
  std::string Preload() const { return root + "/" + abi::kPreloadName; }
  // Read-write for the container (tenant-controlled: read only through ReadFileBounded).
  std::string ContainersDir() const { return root + abi::kContainersSubdir; }
  std::string ContainerDir(const std::string& pod_uid, const std::string& ctr) const {
    return ContainersDir() + "/" + pod_uid + "_" + ctr;
  }
  // Written only by the device plugin; kept apart from ContainerDir.
  std::string AllocationsDir() const { return root + abi::kAllocationsSubdir; }
  std::string AllocationDir(const std::string& pod_uid, const std::string& ctr) const {
    return AllocationsDir() + "/" + pod_uid + "_" + ctr;
  }
  std::string ContentionDir() const { return root + abi::kContentionSubdir; }
  // Shared read-write by every container: libvgpu.so's per-GPU priority board
  // (HAMI_COMPUTE_BOARD_DIR, docs/compute-limiter.md).
  std::string BoardDir() const { return root + abi::kBoardSubdir; }
};

// Trailing slashes of hook_path are ignored.
inline HookLayout LayoutFor(const std::string& hook_path) {
  std::string root = hook_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return HookLayout{root + abi::kHookSubdir};
}

}  // namespace hami::common
