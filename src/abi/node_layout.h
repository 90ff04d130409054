// The node file-system contract, spelled once: where the device plugin puts libvgpu.so and its
// files on the host, where containers see them, and the defaults libvgpu.so falls back to.
// Plain constants (no std::string) so libvgpu.so can include it; see docs/architecture.md.
#pragma once

namespace hami::abi {

// Default of global.gpuHookPath: the host folder under which <hookPath>/vgpu lives.
inline constexpr char kDefaultHookPath[] = "/usr/local";
// <hookPath> + kHookSubdir is the device plugin's root on the host and in containers.
inline constexpr char kHookSubdir[] = "/vgpu";
inline constexpr char kLibraryName[] = "libvgpu.so";
inline constexpr char kPreloadName[] = "ld.so.preload";
// Per container, read-write for the container: its accounting file lives here.
inline constexpr char kContainersSubdir[] = "/containers";
// Per container, written only by the device plugin (limits file, pod metadata).
inline constexpr char kAllocationsSubdir[] = "/allocations";
// The monitor's per-GPU contention files, read by every container.
inline constexpr char kContentionSubdir[] = "/contention";
// libvgpu.so's per-GPU priority and turn board, shared read-write by every container.
inline constexpr char kBoardSubdir[] = "/board";

// The read-only limits file as a container sees it; authoritative when present.
inline constexpr char kLimitsMountPath[] = "/etc/hami/vgpu.limits";
inline constexpr char kLimitsFileName[] = "vgpu.limits";
inline constexpr char kPodMetaFileName[] = "pod.json";
// The per-container accounting file's name (vgpu_shm.h is its layout).
inline constexpr char kCacheFileName[] = "vgpu.cache";
// HAMi-core's default accounting path, used when no CUDA_DEVICE_MEMORY_SHARED_CACHE is set.
inline constexpr char kDefaultShmPath[] = "/tmp/cudevshr.cache";
// Board directory for jobs outside Kubernetes (hami run, plain LD_PRELOAD).
inline constexpr char kDefaultBoardDir[] = "/tmp/hami-vgpu";

}  // namespace hami::abi
