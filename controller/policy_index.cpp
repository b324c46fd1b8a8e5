#include "controller/policy_index.h"

namespace kpc::controller {

std::vector<policy::KubeletPolicy> PolicyIndex::Active() const {
  std::vector<policy::KubeletPolicy> out;
  for (const auto& obj : policies_.List()) {
    auto r = cache_.Parse(obj);
    if (r->policy && !r->policy->suspend) out.push_back(*r->policy);
  }
  return out;
}

std::vector<std::string> PolicyIndex::Selecting(const NodeInfo& node) const {
  std::vector<std::string> out;
  for (const auto& obj : policies_.List()) {
    auto r = cache_.Parse(obj);
    if (r->policy && r->policy->node_selector.Matches(node.labels)) out.push_back(r->policy->name);
  }
  return out;
}

std::string NameOf(const nlohmann::json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  return obj["metadata"].value("name", "");
}

int64_t GenerationOf(const nlohmann::json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return 0;
  const auto& md = obj["metadata"];
  return md.contains("generation") && md["generation"].is_number_integer()
             ? md["generation"].get<int64_t>()
             : 0;
}

}  // namespace kpc::controller
