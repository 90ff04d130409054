// Client-side token bucket (client-go's QPS/Burst): at most `burst` requests at once, refilled
// at `qps` per second. Keeps a busy controller from flooding the API server.
#pragma once

#include <chrono>
#include <mutex>

namespace hami::k8s {

class RateLimiter {
 public:
  // qps <= 0 disables limiting. burst < 1 is taken as 1.
  RateLimiter(double qps, int burst);
  // Blocks until a token is available and takes it. Returns how long it waited.
  std::chrono::nanoseconds Acquire();
  // Takes a token when one is available now.
  bool TryAcquire();

 private:
  void RefillLocked(std::chrono::steady_clock::time_point now);
  double qps_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
  std::mutex mu_;
};

}  // namespace hami::k8s
