#include "controller/manager.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

namespace kpc::controller {

void Manager::StartShared() {
  for (auto& c : components_) {
    if (!c.needs_leader && c.start) c.start();
  }
}

void Manager::RunLeader(const std::function<bool()>& stop, const std::function<bool()>& done) {
  for (auto& c : components_) {
    if (!c.needs_leader) continue;
    spdlog::debug("leading: starting {}", c.name);
    if (c.start) c.start();
  }
  while (!stop() && !done()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  StopWhere(true);
}

void Manager::StopWhere(bool needs_leader) {
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) {
    if (it->needs_leader == needs_leader && it->stop) it->stop();
  }
}

void Manager::StopAll() {
  StopWhere(true);
  StopWhere(false);
}

}  // namespace kpc::controller
