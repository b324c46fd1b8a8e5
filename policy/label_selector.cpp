#include "policy/label_selector.h"

#include <algorithm>
#include <optional>

#include "policy/field_issue.h"
#include "policy/limits.h"
#include "policy/text_match.h"

namespace kpc::policy {

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [k, v] : match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& req : match_expressions) {
    auto it = labels.find(req.key);
    bool has = it != labels.end();
    bool in = has && std::find(req.values.begin(), req.values.end(), it->second) != req.values.end();
    if (req.op == "In" && !in) return false;
    if (req.op == "NotIn" && in) return false;
    if (req.op == "Exists" && !has) return false;
    if (req.op == "DoesNotExist" && has) return false;
  }
  return true;
}

nlohmann::json LabelSelector::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (!match_labels.empty()) j["matchLabels"] = match_labels;
  if (!match_expressions.empty()) {
    auto& arr = j["matchExpressions"] = nlohmann::json::array();
    for (const auto& r : match_expressions) {
      nlohmann::json e = {{"key", r.key}, {"operator", r.op}};
      if (!r.values.empty()) e["values"] = r.values;
      arr.push_back(e);
    }
  }
  return j;
}

namespace {

// The bounds of a label selector in the KubeletPolicy CRD (spec.nodeSelector and
// spec.exceptions[].nodeSelector).
constexpr size_t kMaxMatchLabels = 64;
constexpr size_t kMaxMatchExpressions = 32;
constexpr size_t kMaxKeyChars = 317;  // prefix (253) + '/' + name (63)
constexpr size_t kMaxValues = 64;
constexpr size_t kMaxValueChars = 63;

}  // namespace

std::string LabelKeyProblem(const std::string& key) {
  if (key.empty()) return "a label key must not be empty";
  if (key.size() > kMaxKeyChars) {
    return "label key " + Quoted(key) + " is too long: at most " + std::to_string(kMaxKeyChars) +
           " characters (a 253-character prefix, '/', a 63-character name)";
  }
  std::string_view name = key;
  auto slash = key.find('/');
  if (slash != std::string::npos) {
    std::string_view prefix = name.substr(0, slash);
    name = name.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 253 || !MatchesDnsSubdomainShape(prefix)) {
      return "label key prefix " + Quoted(prefix) + " must be a DNS subdomain (e.g. example.com)";
    }
  }
  if (name.empty() || name.size() > 63 || !MatchesQualifiedNameShape(name)) {
    return "label key " + Quoted(key) +
           " is not valid: the name part must be 1-63 characters of [A-Za-z0-9-_.], starting "
           "and ending with a letter or digit";
  }
  return "";
}

std::string LabelValueProblem(const std::string& value) {
  if (value.size() > kMaxValueChars || (!value.empty() && !MatchesQualifiedNameShape(value))) {
    return "label value " + Quoted(value) +
           " is not valid: at most 63 characters of [A-Za-z0-9-_.], starting and ending with a "
           "letter or digit";
  }
  return "";
}

namespace {

void ParseMatchLabels(const nlohmann::json& labels, const std::string& field, LabelSelector& sel,
                      std::vector<FieldIssue>& issues) {
  if (!labels.is_object()) {
    issues.push_back({field, "must be a map of label keys to values"});
    return;
  }
  if (labels.size() > kMaxMatchLabels) {
    issues.push_back({field, "must have at most " + std::to_string(kMaxMatchLabels) +
                                 " labels, got " + std::to_string(labels.size())});
    return;
  }
  for (const auto& [k, v] : labels.items()) {
    std::string f = field + "[\"" + Shortened(k) + "\"]";
    if (auto p = LabelKeyProblem(k); !p.empty()) issues.push_back({f, p});
    if (!v.is_string()) {
      issues.push_back({f, "label values must be strings (quote numbers and booleans)"});
      continue;
    }
    if (auto p = LabelValueProblem(v.get<std::string>()); !p.empty()) issues.push_back({f, p});
    sel.match_labels[k] = v.get<std::string>();
  }
}

void ParseValues(const nlohmann::json& values, const std::string& field,
                 LabelSelectorRequirement& req, std::vector<FieldIssue>& issues) {
  if (!values.is_array()) {
    issues.push_back({field, "must be a list of strings"});
    return;
  }
  if (values.size() > kMaxValues) {
    issues.push_back({field, "must have at most " + std::to_string(kMaxValues) + " values, got " +
                                 std::to_string(values.size())});
    return;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    if (!v.is_string()) {
      issues.push_back({field, "must be a list of strings (quote numbers and booleans)"});
      break;
    }
    const auto& text = v.get_ref<const std::string&>();
    if (CharCount(text) > kMaxValueChars) {
      issues.push_back({field + "[" + std::to_string(i) + "]",
                        "must be at most " + std::to_string(kMaxValueChars) + " characters, got " +
                            std::to_string(CharCount(text))});
      continue;
    }
    req.values.push_back(text);
  }
}

std::optional<LabelSelectorRequirement> ParseRequirement(const nlohmann::json& e,
                                                         const std::string& f,
                                                         std::vector<FieldIssue>& issues) {
  if (!e.is_object()) {
    issues.push_back({f, "must be an object with key, operator and values"});
    return std::nullopt;
  }
  LabelSelectorRequirement req;
  for (const auto& [k, v] : e.items()) {
    if (k != "key" && k != "operator" && k != "values") {
      issues.push_back({f + "." + Shortened(k), "unknown field; allowed: key, operator, values"});
    }
  }
  if (!e.contains("key") || !e["key"].is_string()) {
    issues.push_back({f + ".key", "required: the label key"});
  } else {
    req.key = e["key"].get<std::string>();
    if (auto p = LabelKeyProblem(req.key); !p.empty()) issues.push_back({f + ".key", p});
  }
  if (!e.contains("operator") || !e["operator"].is_string()) {
    issues.push_back({f + ".operator", "required: one of In, NotIn, Exists, DoesNotExist"});
  } else {
    req.op = e["operator"].get<std::string>();
    if (req.op != "In" && req.op != "NotIn" && req.op != "Exists" && req.op != "DoesNotExist") {
      issues.push_back(
          {f + ".operator",
           Quoted(req.op) +
               " is not a label selector operator; use In, NotIn, Exists or DoesNotExist"});
    }
  }
  if (e.contains("values") && !e["values"].is_null())
    ParseValues(e["values"], f + ".values", req, issues);
  if ((req.op == "In" || req.op == "NotIn") && req.values.empty()) {
    issues.push_back({f + ".values", "must not be empty for operator " + req.op});
  }
  if ((req.op == "Exists" || req.op == "DoesNotExist") && !req.values.empty()) {
    issues.push_back({f + ".values", "must be empty for operator " + req.op});
  }
  return req;
}

}  // namespace

LabelSelector ParseLabelSelector(const nlohmann::json& j, const std::string& field,
                                 std::vector<FieldIssue>& issues) {
  LabelSelector sel;
  if (j.is_null()) return sel;
  if (!j.is_object()) {
    issues.push_back({field, "must be a label selector object (matchLabels / matchExpressions)"});
    return sel;
  }
  for (const auto& [k, v] : j.items()) {
    if (k != "matchLabels" && k != "matchExpressions") {
      issues.push_back({field + "." + Shortened(k),
                        "unknown field; a label selector has matchLabels and matchExpressions"});
    }
  }
  if (auto it = j.find("matchLabels"); it != j.end() && !it->is_null()) {
    ParseMatchLabels(*it, field + ".matchLabels", sel, issues);
  }
  if (auto it = j.find("matchExpressions"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      issues.push_back({field + ".matchExpressions", "must be a list"});
      return sel;
    }
    if (it->size() > kMaxMatchExpressions) {
      issues.push_back({field + ".matchExpressions",
                        "must have at most " + std::to_string(kMaxMatchExpressions) +
                            " requirements, got " + std::to_string(it->size())});
      return sel;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      auto req = ParseRequirement((*it)[i], field + ".matchExpressions[" + std::to_string(i) + "]",
                                  issues);
      if (req) sel.match_expressions.push_back(std::move(*req));
    }
  }
  return sel;
}

}  // namespace kpc::policy
