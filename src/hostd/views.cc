#include "hostd/views.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace hami::hostd {
namespace {

using nlohmann::json;
using Row = std::vector<std::string>;

std::string Table(const std::vector<Row>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string Age(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds / 3600) + "h";
}

std::string Join(const json& arr, const char* sep, size_t max_len) {
  std::string out;
  if (!arr.is_array()) return out;
  for (const auto& e : arr) {
    if (!out.empty()) out += sep;
    out += e.is_string() ? e.get<std::string>() : e.dump();
  }
  if (out.size() > max_len) out = out.substr(0, max_len - 3) + "...";
  return out;
}

std::string Short(const std::string& uuid) {
  // GPU-12345678-...: the first group is enough to tell cards apart on one host.
  return uuid.size() > 12 ? uuid.substr(0, 12) : uuid;
}

std::string Pct(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.0f%%", v);
  return b;
}

}  // namespace

std::string FormatMib(int64_t mib) {
  if (mib < 10240) return std::to_string(mib) + " MiB";
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f GiB", static_cast<double>(mib) / 1024.0);
  return b;
}

std::string FormatBytes(uint64_t bytes) {
  char b[32];
  if (bytes < (uint64_t{1} << 20)) {
    std::snprintf(b, sizeof(b), "%llu KiB", static_cast<unsigned long long>(bytes >> 10));
  } else if (bytes < (uint64_t{10} << 30)) {
    std::snprintf(b, sizeof(b), "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  } else {
    std::snprintf(b, sizeof(b), "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  }
  return b;
}

std::string SlicesTable(const json& slices, int64_t now_unix) {
  std::vector<Row> rows = {
      {"SLICE", "PID", "GPU", "MEM LIMIT", "MEM USED", "USE%", "CORES", "AGE", "COMMAND"}};
  if (!slices.is_array() || slices.empty()) return "no slices\n";
  for (const auto& s : slices) {
    const json& devs = s["devices"];
    const json& usage = s.contains("usage") ? s["usage"] : json::array();
    int pid = s.contains("job") ? s["job"].value("pid", 0) : 0;
    if (pid == 0) pid = s["request"]["owner"].value("pid", 0);
    for (size_t i = 0; i < devs.size(); ++i) {
      const auto& d = devs[i];
      int64_t limit_mib = d.value("memory_mib", int64_t{0});
      uint64_t used = i < usage.size() ? usage[i].value("used_bytes", uint64_t{0}) : 0;
      double pct = limit_mib > 0 ? 100.0 * static_cast<double>(used) /
                                       static_cast<double>(limit_mib * (int64_t{1} << 20))
                                 : 0.0;
      bool first = i == 0;
      rows.push_back({first ? s.value("name", std::string()) : "",
                      first ? (pid ? std::to_string(pid) : "-") : "",
                      std::to_string(d.value("index", 0)) + " " + Short(d.value("uuid", "")),
                      FormatMib(limit_mib), FormatBytes(used), Pct(pct),
                      d.value("cores", 0) ? std::to_string(d.value("cores", 0)) + "%" : "-",
                      first ? Age(now_unix - s.value("created_unix", now_unix)) : "",
                      first ? Join(s["request"]["command"], " ", 40) : ""});
    }
  }
  return Table(rows);
}

std::string GpusTable(const json& gpus) {
  if (!gpus.is_array() || gpus.empty()) return "no GPUs\n";
  std::vector<Row> rows = {
      {"IDX", "UUID", "TYPE", "MEMORY ALLOCATED", "CORES", "SLICES", "HEALTH"}};
  for (const auto& g : gpus) {
    int64_t total = g.value("memory_mib", int64_t{0});
    int64_t alloc = g.value("allocated_memory_mib", int64_t{0});
    std::string type = g.value("type", std::string());
    if (g.value("fake", false)) type += " (fake GPU)";
    rows.push_back(
        {std::to_string(g.value("index", 0)), g.value("uuid", std::string()), type,
         FormatMib(alloc) + " / " + FormatMib(total),
         std::to_string(g.value("allocated_cores", 0)) + "% / 100%",
         std::to_string(g.value("slices", 0)) + " / " + std::to_string(g.value("split_count", 0)),
         g.value("healthy", true) ? "ok" : "UNHEALTHY"});
  }
  return Table(rows);
}

std::string QueueTable(const json& queue, int64_t now_unix) {
  if (!queue.is_array() || queue.empty()) return "queue empty\n";
  std::vector<Row> rows = {
      {"POS", "TICKET", "PID", "GPUS", "MEMORY", "CORES", "WAITING", "COMMAND", "WAITS FOR"}};
  for (const auto& q : queue) {
    const json& r = q["request"];
    std::string mem =
        r.value("memory_percent", 0) > 0        ? std::to_string(r.value("memory_percent", 0)) + "%"
        : r.value("memory_mib", int64_t{0}) > 0 ? FormatMib(r.value("memory_mib", int64_t{0}))
                                                : "whole card";
    rows.push_back({std::to_string(q.value("position", 0)), std::to_string(q.value("ticket", 0)),
                    std::to_string(r["owner"].value("pid", 0)), std::to_string(r.value("gpus", 1)),
                    mem, std::to_string(r.value("cores", 0)) + "%",
                    Age(now_unix - q.value("created_unix", now_unix)), Join(r["command"], " ", 40),
                    q.value("reason", std::string())});
  }
  return Table(rows);
}

std::string QuotaTable(const json& quotas) {
  if (!quotas.is_array() || quotas.empty()) return "no quotas\n";
  std::vector<Row> rows = {{"KIND", "OWNER", "RESOURCE", "USED", "LIMIT"}};
  for (const auto& q : quotas) {
    std::string res = q.value("resource", std::string());
    int64_t used = q.value("used", int64_t{0}), limit = q.value("limit", int64_t{0});
    auto fmt = [&](int64_t v) {
      return res == "gpumem"     ? FormatMib(v)
             : res == "gpucores" ? std::to_string(v) + "%"
                                 : std::to_string(v);
    };
    rows.push_back({q.value("kind", std::string()), q.value("owner", std::string()), res, fmt(used),
                    fmt(limit)});
  }
  return Table(rows);
}

std::string TopScreen(const json& info, const json& gpus, const json& slices, const json& queue,
                      int64_t now_unix) {
  std::string out = "hami top  (" + info.value("node", std::string("?")) + ", " +
                    std::to_string(gpus.is_array() ? gpus.size() : 0) + " GPU(s) from " +
                    info.value("gpu_source", std::string("?")) + ")\n";
  if (info.value("fake", false)) {
    out += "*** FAKE GPU: these devices are simulated, not real hardware ***\n";
  }
  out += "\n" + GpusTable(gpus) + "\n" + SlicesTable(slices, now_unix);
  if (queue.is_array() && !queue.empty()) out += "\n" + QueueTable(queue, now_unix);
  return out;
}

}  // namespace hami::hostd
