#pragma once
// ParsePolicy memoized by object name and resourceVersion: informer caches hand out the same
// objects over and over (every node event, every admission review), and a policy only needs
// parsing again when it changed. Thread-safe; no I/O.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "policy/model.h"

namespace kpc::policy {

class PolicyParseCache {
 public:
  // ParsePolicy(object), from the cache when the object's name and resourceVersion were parsed
  // before (objects without a resourceVersion are always parsed).
  std::shared_ptr<const PolicyParseResult> Parse(const nlohmann::json& object);
  // Drops a deleted policy.
  void Forget(const std::string& name);

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::shared_ptr<const PolicyParseResult>>> entries_;
};

}  // namespace kpc::policy
