// What the single-host daemon stores and serves: slice requests, granted slices, queue
// entries, and their JSON form on the HTTP API (docs/single-host.md lists the fields).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hostd/proc.h"

namespace hami::hostd {

// Bounds on what a request may carry (the command is kept for display only). A request over
// them is refused, never truncated by the daemon; `hami run` shortens its display copy.
inline constexpr size_t kMaxCommandArgs = 256;
inline constexpr size_t kMaxCommandBytes = 16 * 1024;  // all arguments together
inline constexpr size_t kMaxSelectors = 16;           // gpu_types, gpu_uuids
inline constexpr size_t kMaxSelectorBytes = 128;      // one type or UUID
inline constexpr uint32_t kNoUid = UINT32_MAX;        // "the daemon's own user"
inline constexpr int kMaxPid = 4194304;              // PID_MAX_LIMIT on 64-bit Linux

// One `hami run` request. Memory is memory_mib per GPU, or memory_percent of each chosen card
// when memory_percent > 0; both 0: the whole card.
struct SliceRequest {
  int32_t gpus = 1;
  int64_t memory_mib = 0;
  int32_t memory_percent = 0;
  int32_t cores = 0;      // percent of the card's compute; 100 = exclusive card; 0 = no limit
  int32_t priority = -1;  // CUDA_TASK_PRIORITY; -1 = not given
  std::vector<std::string> gpu_types;  // case-insensitive substrings of the card type
  std::vector<std::string> gpu_uuids;  // exact UUIDs
  std::vector<std::string> command;    // for display
  ProcessRef owner;                    // the `hami run` process
  // The user the slice belongs to: set by the API from the peer's credentials, never taken
  // from a client's body (see http_api.cc); kNoUid in-process means the daemon's user.
  uint32_t uid = kNoUid;
  bool wait = true;                    // queue when nothing fits now
  // Chosen by the client; a repeated request with the same id (a retry after a lost reply)
  // gets the slice or queue place of the first instead of a second one. May be empty.
  std::string request_id;
};

struct SliceDevice {
  std::string uuid;
  int32_t index = 0;
  std::string type;
  int64_t memory_mib = 0;
  int32_t cores = 0;
};

struct Slice {
  int64_t id = 0;
  SliceRequest request;
  std::vector<SliceDevice> devices;
  ProcessRef job;      // the command's process once `hami run` started it (pid 0 before)
  int64_t ticket = 0;  // the queue ticket it was granted for; 0 when granted at once
  int64_t created_unix = 0;
  std::string dir;          // <state>/slices/<id>
  std::string limits_file;  // <dir>/vgpu.limits
  std::string cache_file;   // <dir>/vgpu.cache (CUDA_DEVICE_MEMORY_SHARED_CACHE)
  std::string Name() const { return "s" + std::to_string(id); }
};

struct QueueEntry {
  int64_t ticket = 0;
  SliceRequest request;
  int64_t created_unix = 0;
};

// "2g", "2048m", "2048" (MiB), "1536MiB", "4Gi", "50%" (of each card). Suffixes are powers of
// 1024; the result must be a whole number of MiB. Sets exactly one of *mib / *percent.
// Errors: kInvalidArgument naming the text.
Status ParseMemory(std::string_view text, int64_t* mib, int32_t* percent);

// Strict JSON decoding for the API: unknown fields and wrong types are errors naming the
// field. Errors: kInvalidArgument.
StatusOr<SliceRequest> SliceRequestFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const SliceRequest& r);
nlohmann::json ToJson(const SliceDevice& d);
nlohmann::json ToJson(const Slice& s);
nlohmann::json ToJson(const QueueEntry& q);
StatusOr<Slice> SliceFromJson(const nlohmann::json& j);
StatusOr<SliceDevice> SliceDeviceFromJson(const nlohmann::json& j);

}  // namespace hami::hostd
