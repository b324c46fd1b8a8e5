#pragma once
// A token bucket (qps refill, burst capacity) with an injected clock, used for the client-side
// request limit and the per-object Event spam filter. Thread-safe.

#include <chrono>
#include <functional>
#include <mutex>

namespace kpc::kube {

using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;
using SleepFor = std::function<void(std::chrono::nanoseconds)>;

class TokenBucket {
 public:
  // qps <= 0 means unlimited. `now` defaults to steady_clock::now.
  TokenBucket(double qps, int burst, SteadyNow now = nullptr);

  // Takes a token if one is available now.
  bool TryTake();
  // Reserves a token and returns how long the caller must wait before using it (zero when one
  // was available). Reservations queue up, so concurrent callers are spaced 1/qps apart.
  std::chrono::nanoseconds Reserve();

 private:
  void RefillLocked(std::chrono::steady_clock::time_point now);

  const double qps_;
  const double burst_;
  SteadyNow now_;
  std::mutex mu_;
  double tokens_;  // may go negative: outstanding reservations
  std::chrono::steady_clock::time_point last_;
};

// Blocks until a token is available (Reserve + sleep).
void Acquire(TokenBucket& bucket, const SleepFor& sleep = nullptr);

}  // namespace kpc::kube
