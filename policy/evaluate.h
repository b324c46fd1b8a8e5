#pragma once
// Rule evaluation: a policy's rules against a node's effective kubelet configuration (and,
// for file rules, the facts an agent reported about the node's files).
// Pure (time is passed in); thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/compare.h"
#include "policy/effective_config.h"
#include "policy/model.h"

namespace kpc::policy {

enum class RuleResult { kPass, kFail, kExempt, kNotApplicable, kError };
std::string_view RuleResultName(RuleResult r);  // "Pass", "Fail", ...

// What an agent found about one file on a node.
struct FileFacts {
  bool exists = false;
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string owner;  // name, when resolvable
  std::string group;
  std::string error;  // non-empty: could not be audited
};

struct NodeFacts {
  std::string name;
  std::map<std::string, std::string> labels;
  std::optional<int> kubelet_minor;
  // Resolved file targets (KubeletConfigFile -> "/var/lib/kubelet/config.yaml") and the facts
  // per absolute path; empty when no audit has run (file rules are then NotApplicable).
  std::map<std::string, std::string> file_targets;
  std::map<std::string, FileFacts> files;
};

struct RuleEvaluation {
  std::string rule_id;
  RuleResult result = RuleResult::kNotApplicable;
  nlohmann::json observed;  // null when not set
  std::optional<ValueSource> source;
  std::string message;  // "streamingConnectionIdleTimeout is 0s (configz), want NotEquals 0s"
};

struct NodeEvaluation {
  std::string node;
  std::vector<RuleEvaluation> rules;  // in policy order
  // No rule is Fail or Error.
  bool Compliant() const;
  // Some rule is Error.
  bool HasErrors() const;
  std::vector<std::string> FailedRules() const;
};

// Evaluates one config rule against a configuration.
RuleEvaluation EvaluateConfigRule(const Rule& rule, const EffectiveConfig& config,
                                  std::optional<int> kubelet_minor);

// Evaluates every rule of `policy` for one node. `now_unix` decides whether exceptions expired.
NodeEvaluation EvaluateNode(const KubeletPolicy& policy, const NodeFacts& node,
                            const EffectiveConfig& config, int64_t now_unix);

}  // namespace kpc::policy
