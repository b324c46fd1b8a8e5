#pragma once
// The KubeletPolicies of the policy cache, parsed (memoized per resourceVersion), as the
// controllers ask for them: valid ones, and the ones that select a node. Thread-safe.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/node_info.h"
#include "kube/store.h"
#include "policy/model.h"
#include "policy/parse_cache.h"

namespace kpc::controller {

inline constexpr const char* kPolicyPath = "/apis/kubeletpolicy.io/v1alpha1/kubeletpolicies";

class PolicyIndex {
 public:
  // Both must outlive the index.
  PolicyIndex(const kube::Store& policies, policy::PolicyParseCache& cache)
      : policies_(policies), cache_(cache) {}

  std::shared_ptr<const policy::PolicyParseResult> Parsed(const nlohmann::json& obj) const {
    return cache_.Parse(obj);
  }
  // Valid policies that are not suspended.
  std::vector<policy::KubeletPolicy> Active() const;
  // Names of the valid policies (suspended ones too) whose nodeSelector matches the node.
  std::vector<std::string> Selecting(const NodeInfo& node) const;

 private:
  const kube::Store& policies_;
  policy::PolicyParseCache& cache_;
};

// metadata.name / metadata.generation of an object ("" / 0 when absent).
std::string NameOf(const nlohmann::json& obj);
int64_t GenerationOf(const nlohmann::json& obj);

}  // namespace kpc::controller
