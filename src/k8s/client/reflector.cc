#include "k8s/client/reflector.h"

#include <algorithm>

namespace hami::k8s {

Reflector::Reflector(KubeClient* client, Resource resource, ListOptions options,
                     ReflectorHandlers h)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      handlers_(std::move(h)) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Reflector::Stop() {
  stop_ = true;
  cancel_.Cancel();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Reflector::WaitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return synced_.load() || stop_.load(); }) &&
         synced_.load();
}

std::optional<Json> Reflector::GetCached(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Reflector::ListCached() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(v);
  return out;
}

std::string Reflector::last_resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

ReflectorStats Reflector::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Reflector::set_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) {
  backoff_initial_ = initial;
  backoff_max_ = max;
}

bool Reflector::SleepBackoff(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
  return !stop_.load();
}

Status Reflector::ListAndReplay(bool first) {
  ListOptions lo = options_;
  lo.resource_version.clear();  // a consistent read from the API server
  auto list = client_->List(resource_, lo);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.lists;
  }
  if (!list.ok()) return list.status();
  std::map<std::string, Json> fresh;
  for (auto& item : list->items) {
    std::string key = ObjectKey(item);  // before the move: json's operator= takes by value
    fresh[key] = std::move(item);
  }
  std::map<std::string, Json> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old.swap(cache_);
  }
  // Deletions first, so a handler never sees two objects with the same identity.
  for (const auto& [key, obj] : old) {
    if (!fresh.count(key) && handlers_.on_delete) handlers_.on_delete(obj);
  }
  for (const auto& [key, obj] : fresh) {
    auto it = old.find(key);
    if (it == old.end()) {
      if (handlers_.on_add) handlers_.on_add(obj);
    } else if (MetaString(it->second, "resourceVersion") != MetaString(obj, "resourceVersion") ||
               MetaString(it->second, "uid") != MetaString(obj, "uid")) {
      if (handlers_.on_update) handlers_.on_update(it->second, obj);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    cache_ = std::move(fresh);
    rv_ = list->resource_version;
  }
  if (handlers_.on_synced) handlers_.on_synced(first);
  if (first) {
    std::lock_guard<std::mutex> lock(mu_);
    synced_ = true;
    cv_.notify_all();
  }
  return Status::Ok();
}

void Reflector::Apply(const WatchEvent& ev) {
  if (ev.type == WatchEventType::kBookmark) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto rv = MetaString(ev.object, "resourceVersion"); !rv.empty()) rv_ = rv;
    return;
  }
  std::string key = ObjectKey(ev.object);
  std::optional<Json> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.events;
    if (auto rv = MetaString(ev.object, "resourceVersion"); !rv.empty()) rv_ = rv;
    auto it = cache_.find(key);
    if (it != cache_.end()) old = it->second;
    if (ev.type == WatchEventType::kDeleted) {
      cache_.erase(key);
    } else {
      cache_[key] = ev.object;
    }
  }
  if (ev.type == WatchEventType::kDeleted) {
    if (handlers_.on_delete) handlers_.on_delete(ev.object);
  } else if (old) {
    if (handlers_.on_update) handlers_.on_update(*old, ev.object);
  } else if (handlers_.on_add) {
    handlers_.on_add(ev.object);
  }
}

void Reflector::Run() {
  bool need_list = true;
  bool first = true;
  auto backoff = backoff_initial_;
  while (!stop_) {
    if (need_list) {
      Status s = ListAndReplay(first);
      if (!s.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.errors;
        }
        if (!SleepBackoff(backoff)) return;
        backoff = std::min(backoff * 2, backoff_max_);
        continue;
      }
      first = false;
      need_list = false;
    }
    ListOptions wo = options_;
    wo.resource_version = last_resource_version();
    wo.timeout_seconds = watch_timeout_s_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.watches;
    }
    bool got_event = false;
    Status s = client_->Watch(
        resource_, wo,
        [&](const WatchEvent& ev) {
          got_event = true;
          Apply(ev);
          return !stop_.load();
        },
        &cancel_);
    if (stop_) return;
    if (IsGone(s)) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.gone;
      need_list = true;
      continue;
    }
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.errors;
      }
      if (!SleepBackoff(backoff)) return;
      backoff = std::min(backoff * 2, backoff_max_);
      // Repeated failures may mean our version is unusable; relist to be safe.
      if (backoff >= backoff_max_) need_list = true;
      continue;
    }
    backoff = backoff_initial_;
    // A stream that ended at once without events: avoid a tight loop.
    if (!got_event && !SleepBackoff(std::chrono::milliseconds(10))) return;
  }
}

}  // namespace hami::k8s
