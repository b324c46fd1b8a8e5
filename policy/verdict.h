#pragma once
// The verdict on one node for one policy, from its rule evaluations: any Fail makes the node
// NonCompliant; otherwise any Error makes it Unknown (it could not be checked); otherwise it is
// Compliant (Pass, Exempt and NotApplicable all count as compliant). The one place this rule is
// written down: the operator's status and `check`'s summary both use it.
// Pure; thread-safe.

#include <cstddef>
#include <string>
#include <vector>

#include "policy/evaluate.h"

namespace kpc::policy {

enum class Verdict { kCompliant, kNonCompliant, kUnknown };

struct NodeVerdict {
  Verdict verdict = Verdict::kCompliant;
  std::vector<std::string> failed_rules;  // ids of the Fail rules, in policy order
  // NonCompliant: the failing rules' messages; Unknown: the errors'; joined with "; " and cut to
  // `max_message` bytes (ending in "...").
  std::string message;
};

NodeVerdict VerdictOf(const std::vector<RuleEvaluation>& rules, size_t max_message = 1024);

// `s` cut to at most `max` bytes, ending in "..." when cut. REQUIRES: max >= 3.
std::string TruncateMessage(std::string s, size_t max);

}  // namespace kpc::policy
