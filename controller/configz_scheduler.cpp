#include "controller/configz_scheduler.h"

#include <algorithm>

namespace kpc::controller {

using namespace std::chrono_literals;

ConfigzScheduler::ConfigzScheduler(const Clock& clock, SchedulerOptions options, Fetch fetch)
    : clock_(clock), options_(options), fetch_(std::move(fetch)), last_refill_(clock.Now()) {
  tokens_ = std::max(1.0, options_.qps);
}

ConfigzScheduler::~ConfigzScheduler() { Stop(); }

std::chrono::nanoseconds ConfigzScheduler::Jittered(std::chrono::nanoseconds interval) {
  std::uniform_real_distribution<double> d(0, options_.jitter);
  return std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(interval.count()) * (1 + d(rng_))));
}

void ConfigzScheduler::Schedule(const std::string& node, std::chrono::nanoseconds interval) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = entries_.try_emplace(node);
  Entry& e = it->second;
  if (inserted) {
    e.next_due = clock_.Now();  // new node: check at once
  } else if (interval < e.interval) {
    // A shorter interval takes effect now rather than after the old, longer one.
    e.next_due = std::max(e.not_before, std::min(e.next_due, clock_.Now() + interval));
  }
  e.interval = interval;
  cv_.notify_one();
}

void ConfigzScheduler::Unschedule(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(node);
}

void ConfigzScheduler::Trigger(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(node);
  if (it == entries_.end()) return;
  if (it->second.in_flight) it->second.retrigger = true;
  it->second.next_due = std::max(clock_.Now(), it->second.not_before);
  cv_.notify_one();
}

void ConfigzScheduler::Defer(const std::string& node, std::chrono::nanoseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(node);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.not_before = clock_.Now() + delay;
  e.next_due = e.not_before;
  if (e.in_flight) e.deferred = true;
}

std::set<std::string> ConfigzScheduler::Scheduled() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> out;
  for (const auto& [k, v] : entries_) out.insert(k);
  return out;
}

size_t ConfigzScheduler::InFlight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

size_t ConfigzScheduler::DueNow() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = clock_.Now();
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [&](const auto& kv) {
    return !kv.second.in_flight && kv.second.next_due <= now;
  }));
}

void ConfigzScheduler::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  loop_ = std::thread([this] { Loop(); });
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) workers_.emplace_back([this] { Worker(); });
}

void ConfigzScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !loop_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
    work_cv_.notify_all();
  }
  if (loop_.joinable()) loop_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

void ConfigzScheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto now = clock_.Now();
    double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    tokens_ = std::min(std::max(1.0, options_.qps), tokens_ + elapsed * options_.qps);
    last_refill_ = now;
    // Most overdue first, within the concurrency and QPS budgets.
    std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> due;
    for (const auto& [name, e] : entries_) {
      if (!e.in_flight && e.next_due <= now) due.emplace_back(e.next_due, name);
    }
    std::sort(due.begin(), due.end());
    for (const auto& [when, name] : due) {
      if (in_flight_ >= static_cast<size_t>(options_.concurrency) || tokens_ < 1) break;
      tokens_ -= 1;
      Entry& e = entries_[name];
      e.in_flight = true;
      ++in_flight_;
      ready_.push_back(name);
      work_cv_.notify_one();
    }
    cv_.wait_for(lock, 50ms);
  }
}

void ConfigzScheduler::Worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    std::string node = ready_.front();
    ready_.pop_front();
    lock.unlock();
    fetch_(node);  // never holds the lock while talking to the API server
    lock.lock();
    --in_flight_;
    auto it = entries_.find(node);
    if (it != entries_.end()) {
      Entry& e = it->second;
      e.in_flight = false;
      if (!e.deferred) {
        e.next_due = e.retrigger ? clock_.Now() : clock_.Now() + Jittered(e.interval);
        e.next_due = std::max(e.next_due, e.not_before);
      }
      e.retrigger = false;
      e.deferred = false;
    }
    cv_.notify_one();
  }
}

}  // namespace kpc::controller
