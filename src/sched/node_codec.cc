// Codec of `hami.io/node-nvidia-register` (node_codec.h).
#include "sched/node_codec.h"

#include <charconv>
#include <set>

#include <nlohmann/json.hpp>

namespace hami::sched {
namespace {

using nlohmann::json;

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

template <typename T>
bool ParseInt(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Strict UTF-8 (no overlong forms, no surrogates): what JSON can carry.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c >> 4) == 0xE) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c >> 3) == 0x1E) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

Status CheckGpu(const GpuInfo& g, const std::string& where) {
  if (g.uuid.empty()) return InvalidArgument(where + ": empty id");
  if (!ValidUtf8(g.uuid)) return InvalidArgument(where + ": id is not UTF-8");
  if (!ValidUtf8(g.type)) return InvalidArgument(where + ": type is not UTF-8");
  if (g.split_count <= 0) return InvalidArgument(where + ": count must be > 0");
  if (g.memory_mib <= 0) return InvalidArgument(where + ": devmem must be > 0");
  if (g.cores <= 0) return InvalidArgument(where + ": devcore must be > 0");
  if (g.type.empty()) return InvalidArgument(where + ": empty type");
  if (g.index < 0) return InvalidArgument(where + ": negative index");
  return Status::Ok();
}

StatusOr<std::vector<GpuInfo>> DecodeJson(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("node register annotation: malformed JSON");
  if (!doc.is_array()) return InvalidArgument("node register annotation: not a JSON list");
  std::vector<GpuInfo> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& d = doc[i];
    std::string where = "node register device " + std::to_string(i);
    if (!d.is_object()) return InvalidArgument(where + ": not a JSON object");
    if (d.contains("id") && d["id"].is_string()) where += " (" + d["id"].get<std::string>() + ")";
    auto need = [&](const char* key) -> StatusOr<const json*> {
      auto it = d.find(key);
      if (it == d.end()) return InvalidArgument(where + ": missing \"" + key + "\"");
      return &*it;
    };
    auto integer = [&](const char* key, bool required, int64_t def) -> StatusOr<int64_t> {
      auto it = d.find(key);
      if (it == d.end()) {
        if (required) return InvalidArgument(where + ": missing \"" + key + "\"");
        return def;
      }
      if (!it->is_number_integer())
        return InvalidArgument(where + ": \"" + key + "\" is not an integer");
      return it->get<int64_t>();
    };
    GpuInfo g;
    auto id = need("id");
    if (!id.ok()) return id.status();
    if (!(*id)->is_string()) return InvalidArgument(where + ": \"id\" is not a string");
    g.uuid = (*id)->get<std::string>();
    auto type = need("type");
    if (!type.ok()) return type.status();
    if (!(*type)->is_string()) return InvalidArgument(where + ": \"type\" is not a string");
    g.type = (*type)->get<std::string>();
    // HAMi marshals every field with omitempty: a missing health is false, a missing index,
    // numa or mode is 0 / 0 / hami-core.
    g.healthy = false;
    if (auto it = d.find("health"); it != d.end()) {
      if (!it->is_boolean()) return InvalidArgument(where + ": \"health\" is not a boolean");
      g.healthy = it->get<bool>();
    }
    auto count = integer("count", true, 0);
    auto mem = integer("devmem", true, 0);
    auto core = integer("devcore", true, 0);
    auto index = integer("index", false, 0);
    auto numa = integer("numa", false, 0);
    for (auto* v : {&count, &mem, &core, &index, &numa})
      if (!v->ok()) return v->status();
    auto in32 = [](int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; };
    if (!in32(*count) || !in32(*core) || !in32(*index) || !in32(*numa))
      return InvalidArgument(where + ": integer out of range");
    g.split_count = static_cast<int32_t>(*count);
    g.memory_mib = *mem;
    g.cores = static_cast<int32_t>(*core);
    g.index = static_cast<int32_t>(*index);
    g.numa = static_cast<int32_t>(*numa);
    if (auto it = d.find("mode"); it != d.end()) {
      if (!it->is_string()) return InvalidArgument(where + ": \"mode\" is not a string");
      const std::string& text = it->get_ref<const std::string&>();
      if (!text.empty()) {  // Go's zero value: the default mode
        auto m = ParseVgpuMode(text);
        if (!m.ok()) return InvalidArgument(where + ": " + m.status().message());
        g.mode = *m;
      }
    }
    HAMI_RETURN_IF_ERROR(CheckGpu(g, where));
    out.push_back(std::move(g));
  }
  return out;
}

// ID,count,devmem,devcore,type,numa,health[,index,mode]: (or, oldest, without numa)
StatusOr<std::vector<GpuInfo>> DecodeText(std::string_view text) {
  std::vector<GpuInfo> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(':', pos);
    std::string where = "node register device " + std::to_string(out.size());
    if (end == std::string_view::npos)
      return InvalidArgument(where + ": " + Quote(text.substr(pos)) + " does not end with ':'");
    std::string_view dev = text.substr(pos, end - pos);
    if (dev.empty()) {  // ":" or "::": no device, as HAMi's DecodeNodeDevices reads it
      pos = end + 1;
      continue;
    }
    std::vector<std::string_view> f;
    size_t fpos = 0;
    while (true) {
      size_t comma = dev.find(',', fpos);
      f.push_back(dev.substr(fpos, comma == std::string_view::npos ? comma : comma - fpos));
      if (comma == std::string_view::npos) break;
      fpos = comma + 1;
    }
    // The oldest writers had no numa field: ID,count,devmem,devcore,type,health.
    if (f.size() == 6) f.insert(f.begin() + 5, std::string_view("0"));
    if (f.size() != 7 && f.size() != 9)
      return InvalidArgument(
          where + ": " + Quote(dev) + " has " + std::to_string(f.size()) +
          " fields (want ID,count,devmem,devcore,type[,numa],health[,index,mode])");
    GpuInfo g;
    g.uuid = f[0];
    where += " (" + g.uuid + ")";
    if (!ParseInt(f[1], &g.split_count))
      return InvalidArgument(where + ": count " + Quote(f[1]) + " is not an integer");
    if (!ParseInt(f[2], &g.memory_mib))
      return InvalidArgument(where + ": devmem " + Quote(f[2]) + " is not an integer");
    if (!ParseInt(f[3], &g.cores))
      return InvalidArgument(where + ": devcore " + Quote(f[3]) + " is not an integer");
    g.type = f[4];
    if (!ParseInt(f[5], &g.numa))
      return InvalidArgument(where + ": numa " + Quote(f[5]) + " is not an integer");
    if (f[6] == "true") {
      g.healthy = true;
    } else if (f[6] == "false") {
      g.healthy = false;
    } else {
      return InvalidArgument(where + ": health " + Quote(f[6]) + " is not true or false");
    }
    g.index = static_cast<int32_t>(out.size());
    if (f.size() == 9) {
      if (!ParseInt(f[7], &g.index))
        return InvalidArgument(where + ": index " + Quote(f[7]) + " is not an integer");
      if (!f[8].empty()) {
        auto m = ParseVgpuMode(f[8]);
        if (!m.ok()) return InvalidArgument(where + ": " + m.status().message());
        g.mode = *m;
      }
    }
    HAMI_RETURN_IF_ERROR(CheckGpu(g, where));
    out.push_back(std::move(g));
    pos = end + 1;
  }
  return out;
}

}  // namespace

std::string EncodeNodeRegister(const std::vector<GpuInfo>& gpus) {
  // Keys in HAMi's order (Go marshals struct fields in declaration order).
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const GpuInfo& g : gpus) {
    list.push_back(nlohmann::ordered_json{{"id", g.uuid},
                                          {"index", g.index},
                                          {"count", g.split_count},
                                          {"devmem", g.memory_mib},
                                          {"devcore", g.cores},
                                          {"type", g.type},
                                          {"numa", g.numa},
                                          {"mode", VgpuModeName(g.mode)},
                                          {"health", g.healthy}});
  }
  // Invalid UTF-8 in a caller's id or type is replaced (U+FFFD) instead of throwing; the
  // decoder refuses such strings, so registered GPUs never carry them.
  return list.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

StatusOr<std::vector<GpuInfo>> DecodeNodeRegister(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  StatusOr<std::vector<GpuInfo>> r =
      first != std::string_view::npos && text[first] == '[' ? DecodeJson(text) : DecodeText(text);
  if (!r.ok()) return r;
  std::set<std::string> ids;
  for (const GpuInfo& g : *r) {
    if (!ids.insert(g.uuid).second)
      return InvalidArgument("node register annotation: duplicate device id " + Quote(g.uuid));
  }
  return r;
}

}  // namespace hami::sched
