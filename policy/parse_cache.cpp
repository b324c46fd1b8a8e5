#include "policy/parse_cache.h"

namespace kpc::policy {

std::shared_ptr<const PolicyParseResult> PolicyParseCache::Parse(const nlohmann::json& object) {
  std::string name, rv;
  if (object.is_object() && object.contains("metadata") && object["metadata"].is_object()) {
    name = object["metadata"].value("name", "");
    rv = object["metadata"].value("resourceVersion", "");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end() && !rv.empty() && it->second.first == rv) return it->second.second;
  }
  auto parsed = std::make_shared<const PolicyParseResult>(ParsePolicy(object));
  std::lock_guard<std::mutex> l(mu_);
  entries_[name] = {rv, parsed};
  return parsed;
}

void PolicyParseCache::Forget(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  entries_.erase(name);
}

}  // namespace kpc::policy
