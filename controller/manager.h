#pragma once
// Runs an operator's components and knows which of them need the leader: informers keep warm
// caches on every replica; schedulers and reconcile workers run only while this replica leads.
// Components start in the order added and stop in reverse. Not thread-safe: one thread drives it.

#include <functional>
#include <string>
#include <vector>

namespace kpc::controller {

struct Component {
  std::string name;
  bool needs_leader = false;
  std::function<void()> start;
  std::function<void()> stop;  // must be safe to call when not started, and more than once
};

class Manager {
 public:
  void Add(Component c) { components_.push_back(std::move(c)); }
  // Starts every component that does not need the leader.
  void StartShared();
  // Starts the components that need the leader, blocks until `stop` returns true (polled every
  // 100 ms) or `done` does, then stops them.
  void RunLeader(const std::function<bool()>& stop, const std::function<bool()>& done);
  // Stops everything.
  void StopAll();

 private:
  void StopWhere(bool needs_leader);
  std::vector<Component> components_;
};

}  // namespace kpc::controller
