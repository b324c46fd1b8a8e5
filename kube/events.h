#pragma once
// Records core/v1 Events about objects, rate-limited per object (token bucket per involved
// object) and aggregated the way client-go does: a repeat of the same (object, reason,
// message) within the window updates the existing Event's count instead of creating another.
// Rate limits and Event timestamps are read on the recorder's Clock, which (like the Client)
// must outlive the recorder. Thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "kube/client.h"

namespace kpc::kube {

struct ObjectRef {
  std::string api_version;  // "kubeletpolicy.io/v1alpha1", "v1"
  std::string kind;         // "KubeletPolicy", "Node"
  std::string name;
  std::string namespace_;   // empty for cluster-scoped
  std::string uid;
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // type: "Normal" or "Warning". Events of cluster-scoped objects go to `default_namespace`.
  // Never blocks for long: the Event is queued and written by a background thread; when the
  // queue is full or the object is over its rate limit the Event is dropped (and counted).
  virtual void Record(const ObjectRef& obj, const std::string& type, const std::string& reason,
                      const std::string& message) = 0;
  // Events dropped so far (queue full, rate limited, or rejected by the API server).
  virtual uint64_t Dropped() const { return 0; }
  // Waits until queued Events are written (shutdown, tests); false on timeout.
  virtual bool Flush(std::chrono::milliseconds /*timeout*/) { return true; }
};

struct EventRecorderOptions {
  int burst = 25;                            // per involved object and reason
  std::chrono::seconds refill_interval{300};  // one more Event per object and reason per interval
  size_t queue_size = 1000;
  size_t aggregation_cache_size = 4096;       // identical Events remembered for count updates
  std::string reporting_instance;             // e.g. the pod name; optional
};

// The legacy core/v1 Event API requires Events about cluster-scoped objects to live in
// "default" (any other namespace is rejected with 422), hence the default.
std::unique_ptr<EventRecorder> NewEventRecorder(Client& client, const Clock& clock, std::string component,
                                                std::string default_namespace = "default");
std::unique_ptr<EventRecorder> NewEventRecorder(Client& client, const Clock& clock, std::string component,
                                                std::string default_namespace, EventRecorderOptions options);

}  // namespace kpc::kube
