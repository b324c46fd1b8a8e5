#pragma once
// Fakes for the controllers' unit tests: a store the test fills by hand (no watch stream) and an
// Event recorder that keeps what it was given.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kube/events.h"
#include "kube/store.h"

namespace kpc::controller::fakes {

class FakeStore : public kube::Store {
 public:
  // Keyed like an informer: "name", or "namespace/name" for namespaced objects.
  void Put(const nlohmann::json& obj) {
    std::lock_guard<std::mutex> l(mu_);
    objects_[KeyOf(obj)] = obj;
  }
  void Remove(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    objects_.erase(key);
  }
  static std::string KeyOf(const nlohmann::json& obj) {
    const auto& md = obj["metadata"];
    const std::string name = md["name"].get<std::string>();
    const std::string ns = md.value("namespace", "");
    return ns.empty() ? name : ns + "/" + name;
  }
  std::optional<nlohmann::json> Get(const std::string& key) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<nlohmann::json> List() const override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& [k, v] : objects_) out.push_back(v);
    return out;
  }
  bool HasSynced() const override { return synced; }
  bool synced = true;

 private:
  mutable std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;
};

struct RecordedEvent {
  std::string kind, name, type, reason, message;
};

class FakeEvents : public kube::EventRecorder {
 public:
  void Record(const kube::ObjectRef& obj, const std::string& type, const std::string& reason,
              const std::string& message) override {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back({obj.kind, obj.name, type, reason, message});
  }
  std::vector<RecordedEvent> Take() {
    std::lock_guard<std::mutex> l(mu_);
    auto out = std::move(events_);
    events_.clear();
    return out;
  }
  std::vector<std::string> Reasons(const std::string& kind) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.kind == kind) out.push_back(e.name + " " + e.reason);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<RecordedEvent> events_;
};

}  // namespace kpc::controller::fakes
