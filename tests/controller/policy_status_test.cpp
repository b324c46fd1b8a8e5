#include "controller/policy_status.h"

#include <gtest/gtest.h>

namespace kpc::controller {
namespace {

NodeResult Node(const std::string& name, NodeState s, std::vector<std::string> failed = {}) {
  NodeResult n;
  n.node = name;
  n.state = s;
  n.failed_rules = std::move(failed);
  n.message = name + " message";
  n.last_checked_unix = 1795000000;
  return n;
}

std::string Cond(const nlohmann::json& st, const std::string& type, const char* field = "status") {
  auto c = FindCondition(st, type);
  return c.is_null() ? "<none>" : c[field].get<std::string>();
}

StatusInput Input(std::vector<NodeResult> nodes) {
  StatusInput in;
  in.generation = 3;
  in.rule_ids = {"a", "b"};
  in.nodes = std::move(nodes);
  in.now_unix = 1795000100;
  for (const auto& n : in.nodes) {
    for (const auto& r : n.failed_rules) in.failing_by_rule[r]++;
  }
  return in;
}

TEST(PolicyStatusTest, AllCompliant) {
  auto st = ComputeStatus(Input({Node("w1", NodeState::kCompliant), Node("w2", NodeState::kCompliant)}), nullptr);
  EXPECT_EQ(st["observedGeneration"], 3);
  EXPECT_EQ(st["summary"]["selectedNodes"], 2);
  EXPECT_EQ(st["summary"]["compliantNodes"], 2);
  EXPECT_EQ(Cond(st, "Ready"), "True");
  EXPECT_EQ(Cond(st, "Reconciling"), "False");
  EXPECT_EQ(Cond(st, "Stalled"), "False");
  EXPECT_EQ(Cond(st, "Compliant"), "True");
  EXPECT_EQ(Cond(st, "Compliant", "reason"), "AllNodesCompliant");
  EXPECT_TRUE(st["nodes"].empty());
  EXPECT_EQ(st["rules"], nlohmann::json::parse(R"([{"id":"a","failingNodes":0},{"id":"b","failingNodes":0}])"));
  for (const auto& c : st["conditions"]) EXPECT_EQ(c["observedGeneration"], 3);
}

TEST(PolicyStatusTest, NonComplianceUnderAuditIsAFindingNotAFailure) {
  auto st = ComputeStatus(Input({Node("w2", NodeState::kNonCompliant, {"a"}), Node("w1", NodeState::kCompliant),
                                 Node("w0", NodeState::kUnknown)}),
                          nullptr);
  EXPECT_EQ(Cond(st, "Ready"), "True");
  EXPECT_EQ(Cond(st, "Stalled"), "False");
  EXPECT_EQ(Cond(st, "Compliant"), "False");
  EXPECT_EQ(st["summary"]["nonCompliantNodes"], 1);
  EXPECT_EQ(st["summary"]["unknownNodes"], 1);
  ASSERT_EQ(st["nodes"].size(), 2u);
  EXPECT_EQ(st["nodes"][0]["name"], "w0");  // sorted by name
  EXPECT_EQ(st["nodes"][0]["state"], "Unknown");
  EXPECT_EQ(st["nodes"][1]["failedRules"], nlohmann::json::array({"a"}));
  EXPECT_EQ(st["nodes"][1]["lastChecked"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(st["rules"][0]["failingNodes"], 1);
}

TEST(PolicyStatusTest, UnknownOnlyMakesCompliantUnknown) {
  auto st = ComputeStatus(Input({Node("w1", NodeState::kCompliant), Node("w2", NodeState::kUnknown)}), nullptr);
  EXPECT_EQ(Cond(st, "Compliant"), "Unknown");
  EXPECT_EQ(Cond(st, "Compliant", "reason"), "UnknownNodes");
}

TEST(PolicyStatusTest, PendingNodesMeanReconciling) {
  auto st = ComputeStatus(Input({Node("w1", NodeState::kCompliant), Node("w2", NodeState::kPending)}), nullptr);
  EXPECT_EQ(Cond(st, "Reconciling"), "True");
  EXPECT_EQ(Cond(st, "Ready"), "False");
  EXPECT_EQ(Cond(st, "Reconciling", "message"), "checking nodes: 1/2 checked");
}

TEST(PolicyStatusTest, InvalidSpecIsStalled) {
  auto in = Input({});
  in.invalid_spec = "spec.rules[0].config.value: not a duration";
  auto st = ComputeStatus(in, nullptr);
  EXPECT_EQ(Cond(st, "Stalled"), "True");
  EXPECT_EQ(Cond(st, "Ready"), "False");
  EXPECT_EQ(Cond(st, "Stalled", "message"), "spec.rules[0].config.value: not a duration");
}

TEST(PolicyStatusTest, NoNodesSelected) {
  auto st = ComputeStatus(Input({}), nullptr);
  EXPECT_EQ(Cond(st, "Ready"), "True");
  EXPECT_EQ(Cond(st, "Compliant", "reason"), "NoNodesSelected");
}

TEST(PolicyStatusTest, LastTransitionTimeChangesOnlyWithStatus) {
  auto in = Input({Node("w1", NodeState::kCompliant)});
  auto first = ComputeStatus(in, nullptr);
  in.now_unix += 600;
  auto second = ComputeStatus(in, first);
  EXPECT_EQ(FindCondition(second, "Ready")["lastTransitionTime"], FindCondition(first, "Ready")["lastTransitionTime"]);
  in.nodes[0].state = NodeState::kNonCompliant;
  auto third = ComputeStatus(in, second);
  EXPECT_NE(FindCondition(third, "Compliant")["lastTransitionTime"], FindCondition(second, "Compliant")["lastTransitionTime"]);
  EXPECT_EQ(FindCondition(third, "Ready")["lastTransitionTime"], FindCondition(second, "Ready")["lastTransitionTime"]);
}

TEST(PolicyStatusTest, NodeListIsCappedAndFlagged) {
  std::vector<NodeResult> nodes;
  for (int i = 0; i < 150; ++i) nodes.push_back(Node("n" + std::to_string(1000 + i), NodeState::kNonCompliant, {"a"}));
  auto st = ComputeStatus(Input(nodes), nullptr);
  EXPECT_EQ(st["nodes"].size(), kMaxStatusNodes);
  EXPECT_TRUE(st["nodesTruncated"].get<bool>());
  EXPECT_EQ(st["summary"]["nonCompliantNodes"], 150);
  EXPECT_EQ(st["rules"][0]["failingNodes"], 150);
}

TEST(PolicyStatusTest, WritesOnlyWhenSomethingChanged) {
  auto in = Input({Node("w1", NodeState::kNonCompliant, {"a"})});
  auto current = ComputeStatus(in, nullptr);
  in.now_unix += 30;
  in.nodes[0].last_checked_unix += 30;
  auto next = ComputeStatus(in, current);
  EXPECT_FALSE(StatusNeedsWrite(current, next, in.now_unix, 300)) << "only lastChecked moved";
  EXPECT_TRUE(StatusNeedsWrite(current, next, in.now_unix + 400, 300)) << "lastChecked grew old";
  in.nodes[0].failed_rules = {"a", "b"};
  auto changed = ComputeStatus(in, current);
  EXPECT_TRUE(StatusNeedsWrite(current, changed, in.now_unix, 300));
  EXPECT_TRUE(StatusNeedsWrite(nullptr, next, in.now_unix, 300));
}

}  // namespace
}  // namespace kpc::controller
