#include "policy/verdict.h"

#include <algorithm>

namespace kpc::policy {

std::string TruncateMessage(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

NodeVerdict VerdictOf(const std::vector<RuleEvaluation>& rules, size_t max_message) {
  NodeVerdict v;
  std::string failures, errors;
  for (const auto& r : rules) {
    if (r.result == RuleResult::kFail) {
      v.failed_rules.push_back(r.rule_id);
      failures += (failures.empty() ? "" : "; ") + r.message;
    } else if (r.result == RuleResult::kError) {
      errors += (errors.empty() ? "" : "; ") + r.message;
    }
  }
  if (!v.failed_rules.empty()) {
    v.verdict = Verdict::kNonCompliant;
    v.message = TruncateMessage(std::move(failures), max_message);
  } else if (std::any_of(rules.begin(), rules.end(),
                         [](const RuleEvaluation& r) { return r.result == RuleResult::kError; })) {
    v.verdict = Verdict::kUnknown;
    v.message = TruncateMessage(std::move(errors), max_message);
  }
  return v;
}

}  // namespace kpc::policy
