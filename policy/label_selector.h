#pragma once
// metav1.LabelSelector: matchLabels AND matchExpressions (In, NotIn, Exists, DoesNotExist).
// An empty selector matches everything. Pure; thread-compatible.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/field_issue.h"

namespace kpc::policy {

struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In | NotIn | Exists | DoesNotExist
  std::vector<std::string> values;
};

struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;

  bool Empty() const { return match_labels.empty() && match_expressions.empty(); }
  bool Matches(const std::map<std::string, std::string>& labels) const;
  // Back to the JSON form (as the API server stores it).
  nlohmann::json ToJson() const;
};

// Parses and validates a LabelSelector at `field` (e.g. "spec.nodeSelector"); every problem
// is appended to `issues`. Returns the selector (possibly partial when issues were added).
LabelSelector ParseLabelSelector(const nlohmann::json& j, const std::string& field,
                                 std::vector<FieldIssue>& issues);

// Validates a label key (optional DNS-subdomain prefix + '/' + name) / value; empty = valid.
std::string LabelKeyProblem(const std::string& key);
std::string LabelValueProblem(const std::string& value);

}  // namespace kpc::policy
