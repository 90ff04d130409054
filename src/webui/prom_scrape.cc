#include "webui/prom_scrape.h"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <mutex>
#include <thread>

namespace hami::webui {
namespace {

struct Sample {
  std::string_view name;
  std::map<std::string, std::string, std::less<>> labels;
  double value = 0;
};

// `name{k="v",...} value [timestamp]`. Returns false when malformed.
bool ParseLine(std::string_view line, Sample& out) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out.name = line.substr(0, i);
  out.labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return false;
      }
      std::string key(line.substr(i, eq - i)), val;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          val += line[j] == 'n' ? '\n' : line[j];
        } else {
          val += line[j];
        }
      }
      if (j >= line.size()) return false;
      out.labels[key] = std::move(val);
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;
  }
  while (i < line.size() && line[i] == ' ') ++i;
  size_t end = line.find(' ', i);
  std::string num(line.substr(i, end == std::string_view::npos ? end : end - i));
  if (num.empty()) return false;
  char* stop = nullptr;
  out.value = std::strtod(num.c_str(), &stop);
  return stop != nullptr && *stop == '\0';
}

std::string Label(const Sample& s, std::string_view k) {
  auto it = s.labels.find(k);
  return it == s.labels.end() ? std::string() : it->second;
}

}  // namespace

Status ParseMonitorMetrics(std::string_view text, MonitorUsage& into) {
  MonitorUsage local;
  Sample s;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, 5, "hami_") != 0) continue;
    const bool host_mem = line.starts_with("hami_host_gpu_memory_used_bytes");
    const bool host_util = line.starts_with("hami_host_gpu_utilization_ratio");
    const bool pod_mem = line.starts_with("hami_vgpu_memory_used_bytes");
    const bool pod_util = line.starts_with("hami_container_device_utilization_ratio");
    if (!host_mem && !host_util && !pod_mem && !pod_util) continue;
    if (!ParseLine(line, s)) {
      return InvalidArgument("monitor metrics line " + std::to_string(line_no) +
                             " is not Prometheus text");
    }
    const std::string uuid = Label(s, "device_uuid");
    if (uuid.empty()) continue;
    if (host_mem || host_util) {
      DeviceUse& d = local.gpus[uuid];
      if (host_mem) d.used_bytes = static_cast<int64_t>(s.value);
      if (host_util) d.util = s.value;
      continue;
    }
    DeviceUse& d = local.pods[{Label(s, "namespace") + "/" + Label(s, "pod"), uuid}];
    if (pod_mem) d.used_bytes = std::max<int64_t>(d.used_bytes, 0) + static_cast<int64_t>(s.value);
    if (pod_util) d.util = std::max(d.util, 0.0) + s.value;
  }
  for (auto& [k, v] : local.gpus) into.gpus[k] = v;
  for (auto& [k, v] : local.pods) into.pods[k] = v;
  return Status::Ok();
}

MonitorUsage ScrapeMonitors(const std::vector<std::string>& urls, const ScrapeOptions& options) {
  MonitorUsage merged;
  std::mutex mu;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < urls.size(); i = next++) {
      const std::string& url = urls[i];
      // "http://host:port/path"
      auto scheme_end = url.find("://");
      auto path_at = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
      std::string base = url.substr(0, path_at);
      std::string path = path_at == std::string::npos ? "/metrics" : url.substr(path_at);
      httplib::Client cli(base);
      const auto t = options.timeout;
      cli.set_connection_timeout(t);
      cli.set_read_timeout(t);
      cli.set_write_timeout(t);
      std::string body;
      bool too_big = false;
      auto res = cli.Get(path, [&](const char* data, size_t len) {
        if (body.size() + len > options.max_body_bytes) return !(too_big = true);
        body.append(data, len);
        return true;
      });
      Status st;
      if (!res || too_big || res->status != 200) {
        st = Unavailable(url + ": " +
                         (too_big ? std::string("answer too large")
                          : res   ? "HTTP " + std::to_string(res->status)
                                  : httplib::to_string(res.error())));
      }
      std::lock_guard<std::mutex> lock(mu);
      if (st.ok()) st = ParseMonitorMetrics(body, merged);
      if (st.ok()) {
        merged.endpoints_ok++;
      } else {
        merged.endpoints_failed++;
        merged.last_error = st.message();
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t n =
      std::min<size_t>(urls.size(), static_cast<size_t>(std::max(1, options.parallel)));
  for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& th : threads) th.join();
  return merged;
}

}  // namespace hami::webui
