#include "kube/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace kpc::kube {

TokenBucket::TokenBucket(double qps, int burst, SteadyNow now)
    : qps_(qps), burst_(std::max(1, burst)), now_(now ? std::move(now) : [] { return std::chrono::steady_clock::now(); }) {
  tokens_ = burst_;
  last_ = now_();
}

void TokenBucket::RefillLocked(std::chrono::steady_clock::time_point now) {
  if (now <= last_) return;
  double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
  last_ = now;
}

bool TokenBucket::TryTake() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(now_());
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

std::chrono::nanoseconds TokenBucket::Reserve() {
  if (qps_ <= 0) return std::chrono::nanoseconds(0);
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(now_());
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
