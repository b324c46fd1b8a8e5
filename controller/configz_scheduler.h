#pragma once
// Schedules /configz fetches: one fetch per node per interval (the shortest checkInterval of the
// policies selecting it), with jitter, bounded concurrency and a QPS limit, and immediate
// re-checks on request (node added, became Ready, relabelled, new kubelet version, policy
// generation changed). A fetch may defer the node's next one (a throttled answer's Retry-After,
// a backoff after a failure): nothing brings a deferred node's check earlier. Fetches run on the
// scheduler's worker threads and deliver their own results. Thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"

namespace kpc::controller {

struct SchedulerOptions {
  int concurrency = 10;       // fetches in flight at once
  double qps = 50;            // fetches started per second
  double jitter = 0.1;        // each interval is stretched by up to this fraction
};

class ConfigzScheduler {
 public:
  using Fetch = std::function<void(const std::string& node)>;  // does the fetch and delivers

  ConfigzScheduler(const Clock& clock, SchedulerOptions options, Fetch fetch);
  ~ConfigzScheduler();

  // Sets the node's check interval; a node with no interval is not checked. A newly scheduled
  // node is checked at once.
  void Schedule(const std::string& node, std::chrono::nanoseconds interval);
  void Unschedule(const std::string& node);
  // Checks the node as soon as a slot is free (coalesces with a pending check), or when its
  // deferral ends.
  void Trigger(const std::string& node);
  // The node's next check is due after `delay` instead of its interval, and no Trigger or
  // Schedule brings it earlier. Called from the node's fetch, it also overrides a Trigger that
  // arrived during the fetch. Does nothing for a node that is not scheduled.
  void Defer(const std::string& node, std::chrono::nanoseconds delay);
  std::set<std::string> Scheduled() const;

  void Start();
  void Stop();  // waits for in-flight fetches to finish

  // For metrics.
  size_t InFlight() const;
  size_t DueNow() const;

 private:
  struct Entry {
    std::chrono::nanoseconds interval{0};
    std::chrono::steady_clock::time_point next_due;
    bool in_flight = false;
    bool retrigger = false;  // Trigger() arrived during a fetch: check again right after it
    // Set by Defer: no check before this (steady epoch, long ago, when never deferred).
    std::chrono::steady_clock::time_point not_before{};
    bool deferred = false;  // Defer() during the current fetch: its time stands
  };
  void Loop();
  void Worker();
  std::chrono::nanoseconds Jittered(std::chrono::nanoseconds interval);

  const Clock& clock_;
  const SchedulerOptions options_;
  Fetch fetch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the loop
  std::condition_variable work_cv_;  // wakes workers
  std::map<std::string, Entry> entries_;
  std::deque<std::string> ready_;    // dispatched, waiting for a worker
  size_t in_flight_ = 0;
  double tokens_ = 1;
  std::chrono::steady_clock::time_point last_refill_;
  std::mt19937_64 rng_{std::random_device{}()};
  bool stopping_ = false;
  std::thread loop_;
  std::vector<std::thread> workers_;
};

}  // namespace kpc::controller
