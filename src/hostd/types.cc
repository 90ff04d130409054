#include "hostd/types.h"

#include <cctype>
#include <charconv>
#include <set>

#include "abi/units.h"

namespace hami::hostd {
namespace {

using nlohmann::json;

Status CheckKnown(const json& j, const std::set<std::string>& known, const char* what) {
  if (!j.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.count(it.key())) {
      return InvalidArgument(std::string("unknown field \"") + it.key() + "\" in " + what);
    }
  }
  return Status::Ok();
}

template <typename T>
Status GetInt(const json& j, const char* key, T lo, T hi, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) {
    return InvalidArgument(std::string("field \"") + key + "\" must be an integer");
  }
  auto v = it->get<int64_t>();
  if (v < static_cast<int64_t>(lo) || v > static_cast<int64_t>(hi)) {
    return InvalidArgument(std::string("field \"") + key + "\" is " + std::to_string(v) +
                           ", must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  *out = static_cast<T>(v);
  return Status::Ok();
}

Status GetUint64(const json& j, const char* key, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return InvalidArgument(std::string("field \"") + key + "\" must be a non-negative integer");
  }
  *out = it->get<uint64_t>();
  return Status::Ok();
}

Status GetString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return InvalidArgument(std::string("field \"") + key + "\" must be a string");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

Status GetStrings(const json& j, const char* key, std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) {
    return InvalidArgument(std::string("field \"") + key + "\" must be an array of strings");
  }
  out->clear();
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return InvalidArgument(std::string("field \"") + key + "\" must be an array of strings");
    }
    out->push_back(e.get<std::string>());
  }
  return Status::Ok();
}

Status GetProcess(const json& j, const char* key, ProcessRef* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  HAMI_RETURN_IF_ERROR(CheckKnown(*it, {"pid", "start_ticks"}, key));
  HAMI_RETURN_IF_ERROR(GetInt<int>(*it, "pid", 0, kMaxPid, &out->pid));
  return GetUint64(*it, "start_ticks", &out->start_ticks);
}

Status CheckSelectors(const char* key, const std::vector<std::string>& v) {
  if (v.size() > kMaxSelectors) {
    return InvalidArgument(std::string("field \"") + key + "\" has " + std::to_string(v.size()) +
                           " entries; at most " + std::to_string(kMaxSelectors));
  }
  for (const auto& s : v) {
    if (s.empty() || s.size() > kMaxSelectorBytes) {
      return InvalidArgument(std::string("field \"") + key + "\" holds an empty entry or one over " +
                             std::to_string(kMaxSelectorBytes) + " bytes");
    }
  }
  return Status::Ok();
}

Status CheckCommand(const std::vector<std::string>& cmd) {
  size_t bytes = 0;
  for (const auto& a : cmd) bytes += a.size();
  if (cmd.size() > kMaxCommandArgs || bytes > kMaxCommandBytes) {
    return InvalidArgument("field \"command\" is too large (" + std::to_string(cmd.size()) +
                           " arguments, " + std::to_string(bytes) + " bytes; at most " +
                           std::to_string(kMaxCommandArgs) + " and " +
                           std::to_string(kMaxCommandBytes) + "): it is kept for display only");
  }
  return Status::Ok();
}

json ProcessJson(const ProcessRef& p) { return {{"pid", p.pid}, {"start_ticks", p.start_ticks}}; }

}  // namespace

Status ParseMemory(std::string_view text, int64_t* mib, int32_t* percent) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("bad memory size \"" + std::string(text) + "\": " + why +
                           " (examples: 2g, 1536m, 4Gi, 2GiB, 50%)");
  };
  if (!text.empty() && text.back() == '%') {
    std::string_view t = text.substr(0, text.size() - 1);
    uint64_t num = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), num);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size()) {
      return bad("a percentage must be a whole number");
    }
    if (num > 100) return bad("percentage above 100");
    if (num == 0) return bad("0% is not a slice");
    *percent = static_cast<int32_t>(num);
    *mib = 0;
    return Status::Ok();
  }
  // The grammar libvgpu.so reads CUDA_DEVICE_MEMORY_LIMIT with (src/abi/units.h), so a size
  // means the same in `hami run` and in the job; a bare number is MiB, as nvidia.com/gpumem.
  uint64_t bytes = 0;
  abi::SizeError e = abi::ParseMemSize(text.data(), text.size(), abi::kMiB, &bytes);
  if (e != abi::SizeError::kOk) return bad(abi::SizeErrorText(e));
  if (bytes % abi::kMiB != 0) return bad("not a whole number of MiB");
  uint64_t value_mib = bytes / abi::kMiB;
  if (value_mib == 0) return bad("zero");
  if (value_mib > (uint64_t{1} << 40)) return bad("too large");
  *mib = static_cast<int64_t>(value_mib);
  *percent = 0;
  return Status::Ok();
}

StatusOr<SliceRequest> SliceRequestFromJson(const json& j) {
  HAMI_RETURN_IF_ERROR(
      CheckKnown(j,
                 {"gpus", "memory", "memory_mib", "memory_percent", "cores", "priority",
                  "gpu_types", "gpu_uuids", "command", "owner", "wait", "request_id", "uid"},
                 "slice request"));
  SliceRequest r;
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "gpus", 1, 16, &r.gpus));
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "memory_mib", 0, int64_t{1} << 40, &r.memory_mib));
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "memory_percent", 0, 100, &r.memory_percent));
  if (j.contains("memory")) {
    if (j.contains("memory_mib") || j.contains("memory_percent")) {
      return InvalidArgument("give either \"memory\" or \"memory_mib\"/\"memory_percent\"");
    }
    std::string text;
    HAMI_RETURN_IF_ERROR(GetString(j, "memory", &text));
    HAMI_RETURN_IF_ERROR(ParseMemory(text, &r.memory_mib, &r.memory_percent));
  }
  if (r.memory_mib > 0 && r.memory_percent > 0) {
    return InvalidArgument("give either \"memory_mib\" or \"memory_percent\", not both");
  }
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "cores", 0, 100, &r.cores));
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "priority", -1, 1, &r.priority));
  HAMI_RETURN_IF_ERROR(GetStrings(j, "gpu_types", &r.gpu_types));
  HAMI_RETURN_IF_ERROR(GetStrings(j, "gpu_uuids", &r.gpu_uuids));
  HAMI_RETURN_IF_ERROR(CheckSelectors("gpu_types", r.gpu_types));
  HAMI_RETURN_IF_ERROR(CheckSelectors("gpu_uuids", r.gpu_uuids));
  HAMI_RETURN_IF_ERROR(GetStrings(j, "command", &r.command));
  HAMI_RETURN_IF_ERROR(CheckCommand(r.command));
  int64_t uid = kNoUid;
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "uid", 0, kNoUid, &uid));
  r.uid = static_cast<uint32_t>(uid);
  HAMI_RETURN_IF_ERROR(GetString(j, "request_id", &r.request_id));
  if (r.request_id.size() > 128) return InvalidArgument("field \"request_id\" is too long");
  HAMI_RETURN_IF_ERROR(GetProcess(j, "owner", &r.owner));
  if (j.contains("wait")) {
    if (!j["wait"].is_boolean()) return InvalidArgument("field \"wait\" must be true or false");
    r.wait = j["wait"].get<bool>();
  }
  return r;
}

json ToJson(const SliceRequest& r) {
  return {{"gpus", r.gpus},
          {"memory_mib", r.memory_mib},
          {"memory_percent", r.memory_percent},
          {"cores", r.cores},
          {"priority", r.priority},
          {"gpu_types", r.gpu_types},
          {"gpu_uuids", r.gpu_uuids},
          {"command", r.command},
          {"owner", ProcessJson(r.owner)},
          {"wait", r.wait},
          {"request_id", r.request_id},
          {"uid", r.uid}};
}

json ToJson(const SliceDevice& d) {
  return {{"uuid", d.uuid},
          {"index", d.index},
          {"type", d.type},
          {"memory_mib", d.memory_mib},
          {"cores", d.cores}};
}

json ToJson(const Slice& s) {
  json devs = json::array();
  for (const auto& d : s.devices) devs.push_back(ToJson(d));
  return {{"id", s.id},
          {"name", s.Name()},
          {"request", ToJson(s.request)},
          {"devices", devs},
          {"job", ProcessJson(s.job)},
          {"ticket", s.ticket},
          {"created_unix", s.created_unix},
          {"dir", s.dir},
          {"limits_file", s.limits_file},
          {"cache_file", s.cache_file}};
}

json ToJson(const QueueEntry& q) {
  return {{"ticket", q.ticket}, {"request", ToJson(q.request)}, {"created_unix", q.created_unix}};
}

StatusOr<SliceDevice> SliceDeviceFromJson(const json& j) {
  HAMI_RETURN_IF_ERROR(CheckKnown(j, {"uuid", "index", "type", "memory_mib", "cores"}, "device"));
  SliceDevice d;
  HAMI_RETURN_IF_ERROR(GetString(j, "uuid", &d.uuid));
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "index", 0, 1 << 20, &d.index));
  HAMI_RETURN_IF_ERROR(GetString(j, "type", &d.type));
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "memory_mib", 0, int64_t{1} << 40, &d.memory_mib));
  HAMI_RETURN_IF_ERROR(GetInt<int32_t>(j, "cores", 0, 100, &d.cores));
  if (d.uuid.empty()) return InvalidArgument("device without \"uuid\"");
  return d;
}

StatusOr<Slice> SliceFromJson(const json& j) {
  HAMI_RETURN_IF_ERROR(CheckKnown(j,
                                  {"id", "name", "request", "devices", "job", "ticket",
                                   "created_unix", "dir", "limits_file", "cache_file", "usage"},
                                  "slice"));
  Slice s;
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "id", 0, INT64_MAX, &s.id));
  if (j.contains("request")) {
    auto r = SliceRequestFromJson(j["request"]);
    if (!r.ok()) return r.status();
    s.request = *r;
  }
  if (j.contains("devices")) {
    if (!j["devices"].is_array()) return InvalidArgument("field \"devices\" must be an array");
    for (const auto& dj : j["devices"]) {
      auto d = SliceDeviceFromJson(dj);
      if (!d.ok()) return d.status();
      s.devices.push_back(*d);
    }
  }
  HAMI_RETURN_IF_ERROR(GetProcess(j, "job", &s.job));
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "ticket", 0, INT64_MAX, &s.ticket));
  HAMI_RETURN_IF_ERROR(GetInt<int64_t>(j, "created_unix", 0, INT64_MAX, &s.created_unix));
  HAMI_RETURN_IF_ERROR(GetString(j, "dir", &s.dir));
  HAMI_RETURN_IF_ERROR(GetString(j, "limits_file", &s.limits_file));
  HAMI_RETURN_IF_ERROR(GetString(j, "cache_file", &s.cache_file));
  return s;
}

}  // namespace hami::hostd
