// EventRecorder: bounded queue -> background writer. Per involved object a token bucket
// (burst 25, one per 5 min by default) filters spam; identical Events (object, type, reason,
// message) are aggregated by PATCHing count/lastTimestamp of the Event created first.

#include "kube/events.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "kube/rate_limiter.h"

namespace kpc::kube {
namespace {

constexpr size_t kMaxBuckets = 8192;

struct Pending {
  ObjectRef obj;
  std::string type, reason, message;
};

std::string ObjectKey(const ObjectRef& o) {
  return o.api_version + "/" + o.kind + "/" + o.namespace_ + "/" + o.name + "/" + o.uid;
}

class Recorder final : public EventRecorder {
 public:
  Recorder(Client& client, const Clock& clock, std::string component, std::string default_ns,
           EventRecorderOptions opts)
      : client_(client),
        clock_(clock),
        component_(std::move(component)),
        default_ns_(std::move(default_ns)),
        opts_(std::move(opts)) {
    worker_ = std::thread([this] { Run(); });
  }
  ~Recorder() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Record(const ObjectRef& obj, const std::string& type, const std::string& reason,
              const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= opts_.queue_size) {
      ++dropped_;
      spdlog::warn("event recorder: queue full; dropping {} event {} for {} {}", type, reason, obj.kind, obj.name);
      return;
    }
    queue_.push_back(Pending{obj, type, reason, message});
    cv_.notify_all();
  }

  uint64_t Dropped() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }

  bool Flush(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; });
  }

 private:
  struct Aggregate {
    std::string event_name, event_ns;
    int count = 1;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      bool written = Write(p);
      lock.lock();
      if (!written) ++dropped_;
      busy_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
      if (stopping_ && queue_.empty()) return;
    }
  }

  bool Allowed(const ObjectRef& obj, const std::string& reason) {
    // Per object and reason (client-go's spam filter is per object only): a KubeletPolicy
    // reports on every node it selects, and a rollout's RemediationSucceeded Events must not be
    // starved by the NodeNonCompliant Events of the same policy.
    std::string key = ObjectKey(obj) + "\n" + reason;
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= kMaxBuckets) buckets_.clear();  // forgetting history only loosens the filter
      double qps = 1.0 / std::max<double>(1.0, static_cast<double>(opts_.refill_interval.count()));
      it = buckets_.emplace(key, std::make_unique<TokenBucket>(clock_, qps, opts_.burst)).first;
    }
    return it->second->TryTake();
  }

  bool Write(const Pending& p) {
    if (!Allowed(p.obj, p.reason)) {
      spdlog::debug("event recorder: rate limit reached for {} {}; dropping {}", p.obj.kind, p.obj.name, p.reason);
      return false;
    }
    std::string ns = p.obj.namespace_.empty() ? default_ns_ : p.obj.namespace_;
    std::string agg_key = ObjectKey(p.obj) + "\n" + p.type + "\n" + p.reason + "\n" + p.message;
    const auto wall = clock_.WallNow();
    const std::string now = FormatRfc3339(std::chrono::floor<std::chrono::seconds>(wall.time_since_epoch()).count());
    auto it = agg_index_.find(agg_key);
    if (it != agg_index_.end()) {
      Aggregate& agg = it->second->second;
      lru_.splice(lru_.begin(), lru_, it->second);  // most recent first
      nlohmann::json patch = {{"count", agg.count + 1}, {"lastTimestamp", now}};
      Result r = client_.Patch("/api/v1/namespaces/" + agg.event_ns + "/events/" + agg.event_name, patch,
                               "application/merge-patch+json");
      if (r.ok()) {
        ++agg.count;
        return true;
      }
      if (r.status.code() != StatusCode::kNotFound) {
        spdlog::warn("event recorder: updating event {}/{} for {} {} failed: {}", agg.event_ns, agg.event_name,
                     p.obj.kind, p.obj.name, r.status.message());
        return false;
      }
      // The Event expired (event TTL): forget it and create a fresh one.
      lru_.erase(it->second);
      agg_index_.erase(it);
    }
    // Unique per recorder even when the clock does not move between two Events (client-go
    // uses the nanosecond time alone).
    int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
    nanos = std::max(nanos, last_name_nanos_ + 1);
    last_name_nanos_ = nanos;
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(nanos));
    std::string name = p.obj.name.substr(0, 253 - std::strlen(suffix)) + suffix;
    nlohmann::json involved = {{"apiVersion", p.obj.api_version}, {"kind", p.obj.kind}, {"name", p.obj.name}};
    if (!p.obj.namespace_.empty()) involved["namespace"] = p.obj.namespace_;
    if (!p.obj.uid.empty()) involved["uid"] = p.obj.uid;
    nlohmann::json ev = {{"apiVersion", "v1"},
                         {"kind", "Event"},
                         {"metadata", {{"name", name}, {"namespace", ns}}},
                         {"involvedObject", involved},
                         {"reason", p.reason},
                         {"message", p.message.substr(0, 1024)},
                         {"type", p.type},
                         {"source", {{"component", component_}}},
                         {"reportingComponent", component_},
                         {"reportingInstance", opts_.reporting_instance},
                         {"firstTimestamp", now},
                         {"lastTimestamp", now},
                         {"count", 1}};
    Result r = client_.Create("/api/v1/namespaces/" + ns + "/events", ev);
    if (!r.ok()) {
      spdlog::warn("event recorder: creating event {} for {} {} failed: {}", p.reason, p.obj.kind, p.obj.name,
                   r.status.message());
      return false;
    }
    lru_.emplace_front(agg_key, Aggregate{name, ns, 1});
    agg_index_[agg_key] = lru_.begin();
    while (lru_.size() > std::max<size_t>(1, opts_.aggregation_cache_size)) {
      agg_index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return true;
  }

  Client& client_;
  const Clock& clock_;
  const std::string component_;
  const std::string default_ns_;
  EventRecorderOptions opts_;

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool busy_ = false;
  uint64_t dropped_ = 0;
  std::thread worker_;

  // Worker thread only.
  std::unordered_map<std::string, std::unique_ptr<TokenBucket>> buckets_;
  int64_t last_name_nanos_ = 0;
  std::list<std::pair<std::string, Aggregate>> lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, Aggregate>>::iterator> agg_index_;
};

}  // namespace

std::unique_ptr<EventRecorder> NewEventRecorder(Client& client, const Clock& clock, std::string component,
                                                std::string default_namespace) {
  return NewEventRecorder(client, clock, std::move(component), std::move(default_namespace), EventRecorderOptions{});
}

std::unique_ptr<EventRecorder> NewEventRecorder(Client& client, const Clock& clock, std::string component,
                                                std::string default_namespace, EventRecorderOptions options) {
  return std::make_unique<Recorder>(client, clock, std::move(component), std::move(default_namespace),
                                    std::move(options));
}

}  // namespace kpc::kube
