#include "k8s/client/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace hami::k8s {

RateLimiter::RateLimiter(double qps, int burst)
    : qps_(qps),
      burst_(std::max(1, burst)),
      tokens_(std::max(1, burst)),
      last_(std::chrono::steady_clock::now()) {}

void RateLimiter::RefillLocked(std::chrono::steady_clock::time_point now) {
  double secs = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + secs * qps_);
}

bool RateLimiter::TryAcquire() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(std::chrono::steady_clock::now());
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

std::chrono::nanoseconds RateLimiter::Acquire() {
  if (qps_ <= 0) return std::chrono::nanoseconds(0);
  auto start = std::chrono::steady_clock::now();
  std::chrono::duration<double> wait{};
  {
    std::lock_guard<std::mutex> lock(mu_);
    RefillLocked(start);
    // Take the token now (possibly going negative) so waiters are served in order.
    tokens_ -= 1;
    if (tokens_ < 0) wait = std::chrono::duration<double>(-tokens_ / qps_);
  }
  if (wait.count() > 0) std::this_thread::sleep_for(wait);
  return std::chrono::steady_clock::now() - start;
}

}  // namespace hami::k8s
