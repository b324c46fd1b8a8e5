#include "kube/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace kpc::kube {

TokenBucket::TokenBucket(const Clock& clock, double qps, int burst)
    : clock_(clock), qps_(qps), burst_(std::max(1, burst)), tokens_(burst_), last_(clock.Now()) {}

void TokenBucket::RefillLocked(std::chrono::steady_clock::time_point now) {
  if (now <= last_) return;
  double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
  last_ = now;
}

bool TokenBucket::TryTake() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(clock_.Now());
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

std::chrono::nanoseconds TokenBucket::Reserve() {
  if (qps_ <= 0) return std::chrono::nanoseconds(0);
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(clock_.Now());
  tokens_ -= 1;
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(-tokens_ / qps_));
}

void Acquire(TokenBucket& bucket, const SleepFor& sleep) {
  auto wait = bucket.Reserve();
  if (wait.count() <= 0) return;
  if (sleep) {
    sleep(wait);
  } else {
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace kpc::kube
