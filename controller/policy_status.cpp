#include "controller/policy_status.h"

#include <algorithm>

#include "base/clock.h"
#include "policy/units.h"

namespace kpc::controller {

const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kCompliant: return "Compliant";
    case NodeState::kNonCompliant: return "NonCompliant";
    case NodeState::kUnknown: return "Unknown";
    case NodeState::kPending: return "Pending";
    case NodeState::kRemediating: return "Remediating";
    case NodeState::kRemediationPlanned: return "RemediationPlanned";
    case NodeState::kRemediationFailed: return "RemediationFailed";
    case NodeState::kBlocked: return "Blocked";
  }
  return "Unknown";
}

nlohmann::json FindCondition(const nlohmann::json& status, const std::string& type) {
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array()) return nullptr;
  for (const auto& c : status["conditions"]) {
    if (c.is_object() && c.value("type", "") == type) return c;
  }
  return nullptr;
}

namespace {

nlohmann::json Condition(const nlohmann::json& previous, const std::string& type, const std::string& status,
                         const std::string& reason, const std::string& message, int64_t generation, int64_t now) {
  nlohmann::json prev = FindCondition(previous, type);
  std::string ltt = FormatRfc3339(now);
  if (prev.is_object() && prev.value("status", "") == status && prev.contains("lastTransitionTime")) {
    ltt = prev["lastTransitionTime"];
  }
  return {{"type", type},         {"status", status},   {"reason", reason},
          {"message", message},   {"lastTransitionTime", ltt}, {"observedGeneration", generation}};
}

std::string Plural(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

nlohmann::json ComputeStatus(const StatusInput& in, const nlohmann::json& previous) {
  int compliant = 0, noncompliant = 0, unknown = 0, pending = 0, remediating = 0;
  for (const auto& n : in.nodes) {
    switch (n.state) {
      case NodeState::kCompliant: ++compliant; break;
      case NodeState::kUnknown: ++unknown; break;
      case NodeState::kPending: ++pending; break;
      case NodeState::kRemediating: ++remediating; ++noncompliant; break;
      default: ++noncompliant; break;
    }
  }
  const int selected = static_cast<int>(in.nodes.size());
  nlohmann::json status;
  status["observedGeneration"] = in.generation;
  status["summary"] = {{"selectedNodes", selected},
                       {"compliantNodes", compliant},
                       {"nonCompliantNodes", noncompliant},
                       {"unknownNodes", unknown + pending},
                       {"remediatingNodes", remediating}};
  auto& rules = status["rules"] = nlohmann::json::array();
  for (const auto& id : in.rule_ids) {
    auto it = in.failing_by_rule.find(id);
    rules.push_back({{"id", id}, {"failingNodes", it == in.failing_by_rule.end() ? 0 : it->second}});
  }

  std::vector<const NodeResult*> listed;
  for (const auto& n : in.nodes) {
    if (n.state != NodeState::kCompliant && n.state != NodeState::kPending) listed.push_back(&n);
  }
  std::sort(listed.begin(), listed.end(), [](const NodeResult* a, const NodeResult* b) { return a->node < b->node; });
  auto& nodes = status["nodes"] = nlohmann::json::array();
  for (size_t i = 0; i < listed.size() && i < kMaxStatusNodes; ++i) {
    const NodeResult& n = *listed[i];
    nlohmann::json e = {{"name", n.node}, {"state", NodeStateName(n.state)}, {"message", n.message}};
    if (!n.failed_rules.empty()) e["failedRules"] = n.failed_rules;
    if (n.last_checked_unix > 0) e["lastChecked"] = FormatRfc3339(n.last_checked_unix);
    if (!n.remediation.is_null()) e["remediation"] = n.remediation;
    nodes.push_back(std::move(e));
  }
  status["nodesTruncated"] = listed.size() > kMaxStatusNodes;

  const int64_t g = in.generation;
  const int64_t now = in.now_unix;
  auto& conds = status["conditions"] = nlohmann::json::array();
  std::string counts = Plural(selected, "node", "nodes") + " selected: " + std::to_string(compliant) +
                       " compliant, " + std::to_string(noncompliant) + " non-compliant, " +
                       std::to_string(unknown) + " unknown";
  if (in.invalid_spec) {
    conds.push_back(Condition(previous, "Ready", "False", "InvalidSpec", *in.invalid_spec, g, now));
    conds.push_back(Condition(previous, "Reconciling", "False", "InvalidSpec", "", g, now));
    conds.push_back(Condition(previous, "Stalled", "True", "InvalidSpec", *in.invalid_spec, g, now));
    conds.push_back(Condition(previous, "Compliant", "Unknown", "InvalidSpec", "the policy cannot be evaluated", g, now));
    return status;
  }
  if (in.suspended) {
    conds.push_back(Condition(previous, "Ready", "True", "Suspended", "spec.suspend is true: no checks run", g, now));
    conds.push_back(Condition(previous, "Reconciling", "False", "Suspended", "", g, now));
    conds.push_back(Condition(previous, "Stalled", "False", "Suspended", "", g, now));
    conds.push_back(Condition(previous, "Compliant", "Unknown", "Suspended", "checks are suspended", g, now));
    return status;
  }
  bool reconciling = pending > 0;
  if (in.rollout_stalled) {
    conds.push_back(Condition(previous, "Ready", "False", "RolloutStalled", *in.rollout_stalled, g, now));
    conds.push_back(Condition(previous, "Reconciling", "False", "RolloutStalled", "", g, now));
    conds.push_back(Condition(previous, "Stalled", "True", "RolloutStalled", *in.rollout_stalled, g, now));
  } else if (reconciling) {
    std::string msg = "checking nodes: " + std::to_string(selected - pending) + "/" + std::to_string(selected) + " checked";
    conds.push_back(Condition(previous, "Ready", "False", "Checking", msg, g, now));
    conds.push_back(Condition(previous, "Reconciling", "True", "Checking", msg, g, now));
  } else if (in.remediating) {
    std::string msg = in.remediating_message.empty() ? "remediating nodes" : in.remediating_message;
    conds.push_back(Condition(previous, "Ready", "False", "Remediating", msg, g, now));
    conds.push_back(Condition(previous, "Reconciling", "True", "Remediating", msg, g, now));
  } else {
    conds.push_back(Condition(previous, "Ready", "True", "Checked", counts, g, now));
    conds.push_back(Condition(previous, "Reconciling", "False", "Checked", "", g, now));
  }
  if (!in.rollout_stalled) conds.push_back(Condition(previous, "Stalled", "False", "AsExpected", "", g, now));
  if (noncompliant > 0) {
    conds.push_back(Condition(previous, "Compliant", "False", "NonCompliantNodes",
                              Plural(noncompliant, "node does", "nodes do") + " not comply: " + counts, g, now));
  } else if (unknown > 0 || pending > 0) {
    conds.push_back(Condition(previous, "Compliant", "Unknown", unknown > 0 ? "UnknownNodes" : "Checking",
                              unknown > 0 ? Plural(unknown, "node", "nodes") + " could not be checked: " + counts
                                          : "checking nodes",
                              g, now));
  } else if (selected == 0) {
    conds.push_back(Condition(previous, "Compliant", "True", "NoNodesSelected", "spec.nodeSelector selects no node", g, now));
  } else {
    conds.push_back(Condition(previous, "Compliant", "True", "AllNodesCompliant", "every selected node complies: " + counts, g, now));
  }
  return status;
}

bool StatusNeedsWrite(const nlohmann::json& current, const nlohmann::json& next, int64_t now_unix,
                      int64_t refresh_after_seconds) {
  auto strip = [](nlohmann::json s) {
    if (s.is_object() && s.contains("nodes") && s["nodes"].is_array()) {
      for (auto& n : s["nodes"]) {
        if (n.is_object()) n.erase("lastChecked");
      }
    }
    return s;
  };
  if (strip(current) != strip(next)) return true;
  // Same content: refresh lastChecked only when the written one has grown old, so a policy
  // costs about one status write per check interval rather than one per node check.
  if (current.is_object() && current.contains("nodes") && current["nodes"].is_array()) {
    for (const auto& n : current["nodes"]) {
      if (!n.is_object() || !n.contains("lastChecked") || !n["lastChecked"].is_string()) continue;
      auto t = policy::ParseRfc3339(n["lastChecked"].get<std::string>());
      if (!t || *t + refresh_after_seconds <= now_unix) return true;
    }
  }
  return false;
}

}  // namespace kpc::controller
