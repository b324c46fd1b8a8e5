#pragma once
// Computes a KubeletPolicy's status (api.md "Status") from the evaluation of its selected
// nodes: conditions with kstatus semantics, summary counts, per-rule failing counts, and the
// capped, sorted list of nodes that are not compliant. Pure; thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpc::controller {

enum class NodeState {
  kCompliant,
  kNonCompliant,
  kUnknown,
  kPending,  // selected, not yet checked for the current generation
  kRemediating,
  kRemediationPlanned,
  kRemediationFailed,
  kBlocked,
};
const char* NodeStateName(NodeState s);

struct NodeResult {
  std::string node;
  NodeState state = NodeState::kPending;
  std::vector<std::string> failed_rules;
  std::string message;
  int64_t last_checked_unix = 0;  // 0 = never
  nlohmann::json remediation;     // null, or {job, phase, attempts, ...}
};

struct StatusInput {
  int64_t generation = 0;
  std::vector<std::string> rule_ids;          // in policy order
  std::optional<std::string> invalid_spec;    // set: the spec cannot be evaluated (Stalled)
  bool suspended = false;
  // Enforce rollouts: set when the rollout stopped at failureThreshold (Stalled=True until the
  // spec changes); `remediating` while Jobs run, wait for verification, or wait for a slot.
  std::optional<std::string> rollout_stalled;
  bool remediating = false;
  std::string remediating_message;
  std::vector<NodeResult> nodes;              // every selected node
  std::map<std::string, int> failing_by_rule;  // rule id -> nodes failing it
  int64_t now_unix = 0;
};

inline constexpr size_t kMaxStatusNodes = 100;

// `previous` is the object's current .status (may be null); lastTransitionTime of a condition is
// kept when its status does not change.
nlohmann::json ComputeStatus(const StatusInput& in, const nlohmann::json& previous);

// Whether writing `next` over `current` changes anything a reader cares about: every field
// except nodes[].lastChecked (refreshed with the next meaningful write, or when older than
// `refresh_after_seconds`).
bool StatusNeedsWrite(const nlohmann::json& current, const nlohmann::json& next, int64_t now_unix,
                      int64_t refresh_after_seconds);

// The condition of `type` in a status (null when absent).
nlohmann::json FindCondition(const nlohmann::json& status, const std::string& type);

}  // namespace kpc::controller
