#include "policy/label_selector.h"

#include <algorithm>
#include <regex>

#include "policy/field_issue.h"

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

std::string LabelKeyProblem(const std::string& key) {
  static const std::regex kName(R"(^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$)");
  static const std::regex kPrefix(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)");
  if (key.empty()) return "a label key must not be empty";
  std::string name = key;
  auto slash = key.find('/');
  if (slash != std::string::npos) {
    std::string prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 253 || !std::regex_match(prefix, kPrefix)) {
      return "label key prefix \"" + prefix + "\" must be a DNS subdomain (e.g. example.com)";
    }
  }
  if (name.empty() || name.size() > 63 || !std::regex_match(name, kName)) {
    return "label key \"" + key +
           "\" is not valid: the name part must be 1-63 characters of [A-Za-z0-9-_.], starting "
           "and ending with a letter or digit";
  }
  return "";
}

std::string LabelValueProblem(const std::string& value) {
  static const std::regex kValue(R"(^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$)");
  if (value.size() > 63 || !std::regex_match(value, kValue)) {
    return "label value \"" + value +
           "\" is not valid: at most 63 characters of [A-Za-z0-9-_.], starting and ending with a "
           "letter or digit";
  }
  return "";
}

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
      issues.push_back({field + "." + k, "unknown field; a label selector has matchLabels and matchExpressions"});
    }
  }
  if (auto it = j.find("matchLabels"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      issues.push_back({field + ".matchLabels", "must be a map of label keys to values"});
    } else {
      for (const auto& [k, v] : it->items()) {
        std::string f = field + ".matchLabels[\"" + k + "\"]";
        if (auto p = LabelKeyProblem(k); !p.empty()) issues.push_back({f, p});
        if (!v.is_string()) {
          issues.push_back({f, "label values must be strings (quote numbers and booleans)"});
          continue;
        }
        if (auto p = LabelValueProblem(v.get<std::string>()); !p.empty()) issues.push_back({f, p});
        sel.match_labels[k] = v.get<std::string>();
      }
    }
  }
  if (auto it = j.find("matchExpressions"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      issues.push_back({field + ".matchExpressions", "must be a list"});
      return sel;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& e = (*it)[i];
      std::string f = field + ".matchExpressions[" + std::to_string(i) + "]";
      if (!e.is_object()) {
        issues.push_back({f, "must be an object with key, operator and values"});
        continue;
      }
      LabelSelectorRequirement req;
      for (const auto& [k, v] : e.items()) {
        if (k != "key" && k != "operator" && k != "values") {
          issues.push_back({f + "." + k, "unknown field; allowed: key, operator, values"});
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
          issues.push_back({f + ".operator", "\"" + req.op + "\" is not a label selector operator; use In, NotIn, Exists or DoesNotExist"});
        }
      }
      if (e.contains("values") && !e["values"].is_null()) {
        if (!e["values"].is_array()) {
          issues.push_back({f + ".values", "must be a list of strings"});
        } else {
          for (const auto& v : e["values"]) {
            if (!v.is_string()) {
              issues.push_back({f + ".values", "must be a list of strings (quote numbers and booleans)"});
              break;
            }
            req.values.push_back(v.get<std::string>());
          }
        }
      }
      if ((req.op == "In" || req.op == "NotIn") && req.values.empty()) {
        issues.push_back({f + ".values", "must not be empty for operator " + req.op});
      }
      if ((req.op == "Exists" || req.op == "DoesNotExist") && !req.values.empty()) {
        issues.push_back({f + ".values", "must be empty for operator " + req.op});
      }
      sel.match_expressions.push_back(std::move(req));
    }
  }
  return sel;
}

}  // namespace kpc::policy
