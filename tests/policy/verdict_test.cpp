#include "policy/verdict.h"

#include <gtest/gtest.h>

namespace kpc::policy {
namespace {

RuleEvaluation Rule(const std::string& id, RuleResult r) {
  RuleEvaluation e;
  e.rule_id = id;
  e.result = r;
  e.message = id + " says so";
  return e;
}

TEST(VerdictTest, FailBeatsErrorBeatsEverythingElse) {
  struct Case {
    std::vector<RuleEvaluation> rules;
    Verdict verdict;
    std::vector<std::string> failed;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, Verdict::kCompliant, {}, ""},
      {{Rule("a", RuleResult::kPass), Rule("b", RuleResult::kExempt),
        Rule("c", RuleResult::kNotApplicable)},
       Verdict::kCompliant,
       {},
       ""},
      {{Rule("a", RuleResult::kError), Rule("b", RuleResult::kPass)},
       Verdict::kUnknown,
       {},
       "a says so"},
      {{Rule("a", RuleResult::kError), Rule("b", RuleResult::kFail), Rule("c", RuleResult::kFail)},
       Verdict::kNonCompliant,
       {"b", "c"},
       "b says so; c says so"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    NodeVerdict v = VerdictOf(cases[i].rules);
    EXPECT_EQ(v.verdict, cases[i].verdict);
    EXPECT_EQ(v.failed_rules, cases[i].failed);
    EXPECT_EQ(v.message, cases[i].message);
  }
}

TEST(VerdictTest, MessagesAreCut) {
  std::vector<RuleEvaluation> rules;
  for (int i = 0; i < 200; ++i)
    rules.push_back(Rule("rule-" + std::to_string(i), RuleResult::kFail));
  NodeVerdict v = VerdictOf(rules, 100);
  EXPECT_EQ(v.message.size(), 100u);
  EXPECT_EQ(v.message.substr(97), "...");
  EXPECT_EQ(v.failed_rules.size(), 200u);
  EXPECT_EQ(TruncateMessage("short", 10), "short");
}

}  // namespace
}  // namespace kpc::policy
