#pragma once
// A rate-limited work queue of string keys, as controllers use it (client-go semantics):
//  * a key added while queued is not queued twice (dedup);
//  * a key being processed is never handed to a second worker; added again meanwhile, it is
//    queued once more when Done() is called;
//  * AddRateLimited() delays a key by per-key exponential backoff (base doubling to max) under
//    an overall token bucket; Forget() resets the key's backoff after a success.
// Thread-safe. Delays and Get's timeout are measured on the given Clock, which must outlive the
// queue.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "base/clock.h"

namespace kpc::controller {

struct WorkQueueOptions {
  std::chrono::nanoseconds base_delay = std::chrono::milliseconds(5);
  std::chrono::nanoseconds max_delay = std::chrono::seconds(1000);
  double overall_qps = 10;  // the overall bucket (client-go: 10 qps, burst 100)
  int overall_burst = 100;
};

class WorkQueue {
 public:
  explicit WorkQueue(const Clock& clock, WorkQueueOptions options = {});

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Requeues with backoff; returns the delay chosen.
  std::chrono::nanoseconds AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready, `timeout` passes (nullopt) or the queue shuts down (nullopt).
  // `timeout` passes on the clock, or once the waits for it have timed out for `timeout` in
  // total (so a clock that nobody advances cannot block the caller).
  std::optional<std::string> Get(std::chrono::milliseconds timeout);
  void Done(const std::string& key);

  void ShutDown();
  bool ShuttingDown() const;
  size_t Len() const;         // ready keys
  size_t DelayedLen() const;  // keys waiting for their delay

 private:
  void PromoteDueLocked();
  void AddLocked(const std::string& key);

  const Clock& clock_;
  const WorkQueueOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;       // queued (or to be queued after processing)
  std::set<std::string> processing_;
  std::multimap<std::chrono::steady_clock::time_point, std::string> delayed_;
  std::map<std::string, std::chrono::steady_clock::time_point> delayed_due_;  // earliest per key
  std::map<std::string, int> failures_;
  // overall token bucket
  double tokens_;
  std::chrono::steady_clock::time_point last_refill_;
  bool shutting_down_ = false;
};

}  // namespace kpc::controller
