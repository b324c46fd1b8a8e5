#include "controller/work_queue.h"

#include <algorithm>
#include <cmath>

namespace kpc::controller {

WorkQueue::WorkQueue(const Clock& clock, WorkQueueOptions options)
    : clock_(clock),
      options_(options),
      tokens_(options.overall_burst),
      last_refill_(clock.Now()) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_) return;
  if (!dirty_.insert(key).second) return;  // already queued
  if (processing_.count(key)) return;      // queued again by Done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  if (delay.count() <= 0) {
    AddLocked(key);
    return;
  }
  auto due = clock_.Now() + delay;
  auto it = delayed_due_.find(key);
  if (it != delayed_due_.end() && it->second <= due) return;  // an earlier one is pending
  if (it != delayed_due_.end()) {
    for (auto d = delayed_.begin(); d != delayed_.end(); ++d) {
      if (d->second == key) {
        delayed_.erase(d);
        break;
      }
    }
  }
  delayed_.emplace(due, key);
  delayed_due_[key] = due;
  cv_.notify_one();
}

std::chrono::nanoseconds WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::nanoseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int n = failures_[key]++;
    // per-key exponential backoff
    double per_key = static_cast<double>(options_.base_delay.count()) * std::pow(2.0, std::min(n, 62));
    per_key = std::min(per_key, static_cast<double>(options_.max_delay.count()));
    // overall token bucket: reserve a token, waiting for it when the bucket is empty
    auto now = clock_.Now();
    double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    tokens_ = std::min<double>(options_.overall_burst, tokens_ + elapsed * options_.overall_qps);
    last_refill_ = now;
    tokens_ -= 1;
    double bucket_wait_s = tokens_ >= 0 ? 0 : -tokens_ / options_.overall_qps;
    delay = std::chrono::nanoseconds(static_cast<int64_t>(std::max(per_key, bucket_wait_s * 1e9)));
  }
  AddAfter(key, delay);
  return delay;
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_.Now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_due_.erase(key);
    AddLocked(key);
  }
}

std::optional<std::string> WorkQueue::Get(std::chrono::milliseconds timeout) {
  // Waits in slices so that a key made due by the clock moving (not by a notify) is noticed.
  constexpr std::chrono::steady_clock::duration kMaxSlice = std::chrono::milliseconds(200);
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = clock_.Now() + timeout;
  // The condition variable's own timeouts also end the wait, so that a clock that does not
  // move (a FakeClock nobody advances) cannot block a caller forever.
  std::chrono::steady_clock::duration unwaited = timeout;
  while (true) {
    PromoteDueLocked();
    if (!queue_.empty()) break;
    if (shutting_down_) return std::nullopt;
    const auto now = clock_.Now();
    if (now >= deadline || unwaited <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    auto slice = std::min({deadline - now, unwaited, kMaxSlice});
    if (!delayed_.empty()) {
      slice = std::min(slice, std::max<std::chrono::steady_clock::duration>(delayed_.begin()->first - now,
                                                                             std::chrono::milliseconds(1)));
    }
    if (cv_.wait_for(lock, slice) == std::cv_status::timeout) unwaited -= slice;
  }
  std::string key = queue_.front();
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t WorkQueue::DelayedLen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

}  // namespace kpc::controller
