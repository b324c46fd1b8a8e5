#pragma once
// A token bucket (qps refill, burst capacity) on an injected clock, used for the client-side
// request limit and the per-object Event spam filter. Thread-safe; `clock` must outlive the
// bucket.

#include <chrono>
#include <functional>
#include <mutex>

#include "base/clock.h"

namespace kpc::kube {

using SleepFor = std::function<void(std::chrono::nanoseconds)>;

class TokenBucket {
 public:
  // qps <= 0 means unlimited. Starts full (`burst` tokens).
  TokenBucket(const Clock& clock, double qps, int burst);

  // Takes a token if one is available now.
  bool TryTake();
  // Reserves a token and returns how long the caller must wait before using it (zero when one
  // was available). Reservations queue up, so concurrent callers are spaced 1/qps apart.
  std::chrono::nanoseconds Reserve();

 private:
  void RefillLocked(std::chrono::steady_clock::time_point now);

  const Clock& clock_;
  const double qps_;
  const double burst_;
  std::mutex mu_;
  double tokens_;  // may go negative: outstanding reservations
  std::chrono::steady_clock::time_point last_;
};

// Blocks until a token is available (Reserve, then `sleep`; a real sleep when it is null).
void Acquire(TokenBucket& bucket, const SleepFor& sleep = nullptr);

}  // namespace kpc::kube
