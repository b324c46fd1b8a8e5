#include "policy/evaluate.h"

#include <algorithm>
#include <cmath>

#include "policy/catalog.h"
#include "policy/units.h"

namespace kpc::policy {
namespace {

// The effective comparison type when the catalog does not know the field: from the JSON types.
ValueType InferType(const nlohmann::json& observed, const nlohmann::json& want) {
  const nlohmann::json& probe = want.is_array() && !want.empty() ? want.front() : want;
  if (probe.is_boolean()) return ValueType::kBool;
  if (probe.is_number()) return ValueType::kFloat;
  if (probe.is_string()) {
    // Two Go durations compare as durations, two quantities as quantities.
    const auto& s = probe.get_ref<const std::string&>();
    bool obs_str = observed.is_string();
    if (ParseGoDuration(s) && s != "0" &&
        (!obs_str || ParseGoDuration(observed.get_ref<const std::string&>()))) {
      return ValueType::kDuration;
    }
    return ValueType::kString;
  }
  if (observed.is_array()) return ValueType::kStringList;
  if (observed.is_object()) return ValueType::kMap;
  return ValueType::kUnknown;
}

// A scalar as a comparable key: numbers and durations as long double, others as string.
struct Scalar {
  bool numeric = false;
  long double num = 0;
  std::string text;
  bool operator==(const Scalar& o) const {
    return numeric == o.numeric && (numeric ? num == o.num : text == o.text);
  }
};

std::optional<Scalar> ToScalar(ValueType type, const nlohmann::json& v, std::string& err) {
  Scalar s;
  switch (type) {
    case ValueType::kBool:
      if (v.is_boolean()) {
        s.text = v.get<bool>() ? "true" : "false";
        return s;
      }
      if (v.is_string() && (v == "true" || v == "false")) {
        s.text = v.get<std::string>();
        return s;
      }
      err = DisplayValue(v) + " is not a boolean";
      return std::nullopt;
    case ValueType::kInt:
    case ValueType::kFloat:
      if (v.is_number()) {
        s.numeric = true;
        s.num = v.get<long double>();
        return s;
      }
      if (v.is_string()) {
        if (auto q = ParseQuantity(v.get_ref<const std::string&>()); q && v.get_ref<const std::string&>().find_first_not_of("+-0123456789.eE") == std::string::npos) {
          s.numeric = true;
          s.num = *q;
          return s;
        }
      }
      err = DisplayValue(v) + " is not a number";
      return std::nullopt;
    case ValueType::kDuration:
      if (auto d = DurationFromJson(v)) {
        s.numeric = true;
        s.num = static_cast<long double>(*d);
        return s;
      }
      err = DisplayValue(v) + " is not a duration (examples: 0s, 30m, 4h0m0s)";
      return std::nullopt;
    case ValueType::kQuantity:
      if (auto q = QuantityFromJson(v)) {
        s.numeric = true;
        s.num = *q;
        return s;
      }
      err = DisplayValue(v) + " is not a resource quantity (examples: 100Mi, 1Gi, 500m)";
      return std::nullopt;
    default:
      if (v.is_string()) s.text = v.get<std::string>();
      else s.text = v.dump();
      return s;
  }
}

bool IsEmptyValue(const nlohmann::json& v) {
  if (v.is_null()) return true;
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

}  // namespace

std::string_view RuleResultName(RuleResult r) {
  switch (r) {
    case RuleResult::kPass: return "Pass";
    case RuleResult::kFail: return "Fail";
    case RuleResult::kExempt: return "Exempt";
    case RuleResult::kNotApplicable: return "NotApplicable";
    case RuleResult::kError: return "Error";
  }
  return "Error";
}

std::string DisplayValue(const nlohmann::json& v) {
  if (v.is_null()) return "not set";
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return s.empty() ? "\"\"" : s;
  }
  return v.dump();
}

std::string ValueTypeProblem(ValueType type, const nlohmann::json& v) {
  if (type == ValueType::kUnknown || type == ValueType::kObject) return "";
  if (type == ValueType::kStringList) {
    if (!v.is_array()) return "must be a list of strings";
    for (const auto& e : v) {
      if (!e.is_string()) return "must be a list of strings";
    }
    return "";
  }
  if (type == ValueType::kMap) return v.is_object() ? "" : "must be a map";
  if (type == ValueType::kString) {
    return v.is_string() ? "" : "must be a string";
  }
  if (type == ValueType::kInt) {
    if (v.is_number_integer() || v.is_number_unsigned()) return "";
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return "";
    return "must be an integer";
  }
  std::string err;
  if (!ToScalar(type, v, err)) return err;
  if (type == ValueType::kBool && !v.is_boolean()) return "must be a boolean (true or false)";
  if (type == ValueType::kFloat && !v.is_number()) return "must be a number";
  return "";
}

Comparison Compare(Operator op, ValueType type, const nlohmann::json& observed,
                   const nlohmann::json& want) {
  Comparison c;
  switch (op) {
    case Operator::kExists:
      c.matches = !observed.is_null();
      return c;
    case Operator::kNotExists:
      c.matches = observed.is_null();
      return c;
    case Operator::kNotEmpty:
      c.matches = !IsEmptyValue(observed);
      return c;
    default:
      break;
  }
  if (type == ValueType::kUnknown) type = InferType(observed, want);

  // Lists and maps: Equals/NotEquals compare as sets/objects; In/NotIn test every element.
  if (type == ValueType::kStringList || type == ValueType::kMap || type == ValueType::kObject) {
    if (IsOrderingOperator(op)) {
      c.ok = false;
      c.error = std::string(OperatorName(op)) + " cannot compare a " +
                std::string(ValueTypeName(type));
      return c;
    }
    if (observed.is_null()) {
      c.matches = op == Operator::kNotEquals || op == Operator::kNotIn;
      return c;
    }
    if (type == ValueType::kStringList && observed.is_array()) {
      auto set_of = [](const nlohmann::json& a) {
        std::vector<std::string> v;
        for (const auto& e : a) v.push_back(DisplayValue(e));
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
      };
      auto obs = set_of(observed);
      if (op == Operator::kEquals || op == Operator::kNotEquals) {
        bool eq = want.is_array() && obs == set_of(want);
        c.matches = (op == Operator::kEquals) == eq;
        return c;
      }
      auto allowed = set_of(want.is_array() ? want : nlohmann::json::array({want}));
      bool all_in = std::all_of(obs.begin(), obs.end(), [&](const std::string& e) {
        return std::binary_search(allowed.begin(), allowed.end(), e);
      });
      bool none_in = std::none_of(obs.begin(), obs.end(), [&](const std::string& e) {
        return std::binary_search(allowed.begin(), allowed.end(), e);
      });
      c.matches = op == Operator::kIn ? all_in : none_in;
      return c;
    }
    bool eq = observed == want;
    if (op == Operator::kEquals || op == Operator::kIn) c.matches = eq;
    else c.matches = !eq;
    return c;
  }

  // Scalars.
  if (observed.is_null()) {
    // "not set" equals nothing, so it is NotEquals/NotIn anything and fails ordering.
    c.matches = op == Operator::kNotEquals || op == Operator::kNotIn;
    return c;
  }
  std::string err;
  auto obs = ToScalar(type, observed, err);
  if (!obs) {
    c.ok = false;
    c.error = "observed value " + err;
    return c;
  }
  if (op == Operator::kIn || op == Operator::kNotIn) {
    bool found = false;
    const nlohmann::json list = want.is_array() ? want : nlohmann::json::array({want});
    for (const auto& w : list) {
      auto ws = ToScalar(type, w, err);
      if (!ws) {
        c.ok = false;
        c.error = "rule value " + err;
        return c;
      }
      if (*ws == *obs) found = true;
    }
    c.matches = (op == Operator::kIn) == found;
    return c;
  }
  auto ws = ToScalar(type, want, err);
  if (!ws) {
    c.ok = false;
    c.error = "rule value " + err;
    return c;
  }
  if (op == Operator::kEquals || op == Operator::kNotEquals) {
    bool eq = *ws == *obs;
    // Strings of enum-like fields are case-sensitive in the kubelet; keep exact comparison.
    c.matches = (op == Operator::kEquals) == eq;
    return c;
  }
  if (!obs->numeric || !ws->numeric) {
    c.ok = false;
    c.error = std::string(OperatorName(op)) + " needs numbers, durations or quantities, not " +
              std::string(ValueTypeName(type));
    return c;
  }
  switch (op) {
    case Operator::kGreaterThan: c.matches = obs->num > ws->num; break;
    case Operator::kGreaterThanOrEqual: c.matches = obs->num >= ws->num; break;
    case Operator::kLessThan: c.matches = obs->num < ws->num; break;
    case Operator::kLessThanOrEqual: c.matches = obs->num <= ws->num; break;
    default: break;
  }
  return c;
}

RuleEvaluation EvaluateConfigRule(const Rule& rule, const EffectiveConfig& config,
                                  std::optional<int> kubelet_minor) {
  RuleEvaluation ev;
  ev.rule_id = rule.id;
  const ConfigCheck& check = *rule.config;
  const std::string path_text = check.path.ToString();

  const nlohmann::json* found = check.path.Find(config.config);
  if (found != nullptr && !found->is_null()) {
    ev.observed = *found;
    auto it = config.sources.find(path_text);
    if (it != config.sources.end()) ev.source = it->second;
    else ev.source = config.live ? ValueSource::kConfigz : ValueSource::kConfigFile;
  } else if (check.default_value) {
    ev.observed = *check.default_value;
    ev.source = ValueSource::kRuleDefault;
  } else {
    // Absent: a feature gate takes its default for the kubelet's version; anything else is
    // its Go zero value (configz omits zero values; file defaults were applied already).
    auto match = LookupField(check.path);
    if (match && match->map_key && match->field->path == "featureGates") {
      int minor = kubelet_minor.value_or(config.kubelet_minor.value_or(DefaultKubeletMinor()));
      if (auto d = FeatureGateDefault(*match->map_key, minor)) {
        ev.observed = *d;
        ev.source = ValueSource::kDefault;
      } else {
        ev.source = ValueSource::kZeroValue;  // unknown gate: not set
      }
    } else if (match && !match->map_key) {
      ev.observed = match->field->zero;
      ev.source = ValueSource::kZeroValue;
    } else {
      ev.source = ValueSource::kZeroValue;  // unknown field or map key: not set
    }
  }

  const nlohmann::json want = check.value.value_or(nlohmann::json());
  // Exists/NotExists ask about presence, not about the zero value that stands in for absence.
  const nlohmann::json& subject =
      (check.op == Operator::kExists || check.op == Operator::kNotExists) &&
              ev.source == ValueSource::kZeroValue
          ? nlohmann::json()
          : ev.observed;
  Comparison cmp = Compare(check.op, check.type, subject, want);
  std::string where = ev.source ? std::string(ValueSourceName(*ev.source)) : "";
  std::string observed_text = DisplayValue(ev.observed);
  std::string want_text = std::string(OperatorName(check.op));
  if (OperatorTakesValue(check.op)) want_text += " " + DisplayValue(want);
  if (!cmp.ok) {
    ev.result = RuleResult::kError;
    ev.message = check.path_text + ": " + cmp.error + " (" + where + ")";
    return ev;
  }
  ev.result = cmp.matches ? RuleResult::kPass : RuleResult::kFail;
  ev.message = check.path_text + " is " + observed_text + " (" + where + "), want " + want_text;
  return ev;
}

namespace {

bool OwnerMatches(const std::string& want, const std::string& name, uint32_t id) {
  if (want.empty()) return true;
  if (want.find_first_not_of("0123456789") == std::string::npos) return std::to_string(id) == want;
  // root is uid/gid 0 on every Linux node, also when the audit could not resolve names (no
  // /etc/passwd under the host root).
  if (want == "root" && name.empty()) return id == 0;
  return name == want;
}

std::string FormatMode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

RuleEvaluation EvaluateFileRule(const Rule& rule, const NodeFacts& node) {
  RuleEvaluation ev;
  ev.rule_id = rule.id;
  const FileCheck& fc = *rule.file;
  std::string path = fc.path;
  if (fc.target != FileTarget::kPath) {
    auto it = node.file_targets.find(std::string(FileTargetName(fc.target)));
    if (it == node.file_targets.end()) {
      ev.result = RuleResult::kNotApplicable;
      ev.message = "file rules are evaluated on the node by an audit Job; no audit result";
      return ev;
    }
    path = it->second;
  }
  auto it = node.files.find(path);
  if (it == node.files.end()) {
    ev.result = RuleResult::kNotApplicable;
    ev.message = "file rules are evaluated on the node by an audit Job; no audit result for " + path;
    return ev;
  }
  const FileFacts& f = it->second;
  if (!f.error.empty()) {
    ev.result = RuleResult::kError;
    ev.message = path + ": " + f.error;
    return ev;
  }
  if (!f.exists) {
    ev.result = fc.must_exist ? RuleResult::kFail : RuleResult::kNotApplicable;
    ev.message = path + " does not exist" + (fc.must_exist ? " (mustExist)" : "");
    return ev;
  }
  ev.observed = {{"path", path}, {"mode", FormatMode(f.mode)}, {"owner", f.owner.empty() ? std::to_string(f.uid) : f.owner},
                 {"group", f.group.empty() ? std::to_string(f.gid) : f.group}};
  std::vector<std::string> problems;
  if (fc.max_mode && (f.mode & 07777 & ~*fc.max_mode) != 0) {
    problems.push_back("mode " + FormatMode(f.mode) + " exceeds " + FormatMode(*fc.max_mode));
  }
  if (!OwnerMatches(fc.owner, f.owner, f.uid)) {
    problems.push_back("owner " + ev.observed["owner"].get<std::string>() + ", want " + fc.owner);
  }
  if (!OwnerMatches(fc.group, f.group, f.gid)) {
    problems.push_back("group " + ev.observed["group"].get<std::string>() + ", want " + fc.group);
  }
  ev.result = problems.empty() ? RuleResult::kPass : RuleResult::kFail;
  if (problems.empty()) {
    ev.message = path + " is " + FormatMode(f.mode) + " " + ev.observed["owner"].get<std::string>() +
                 ":" + ev.observed["group"].get<std::string>();
  } else {
    ev.message = path + ": ";
    for (size_t i = 0; i < problems.size(); ++i) ev.message += (i ? "; " : "") + problems[i];
  }
  return ev;
}

}  // namespace

bool NodeEvaluation::Compliant() const {
  return std::none_of(rules.begin(), rules.end(), [](const RuleEvaluation& r) {
    return r.result == RuleResult::kFail || r.result == RuleResult::kError;
  });
}

bool NodeEvaluation::HasErrors() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const RuleEvaluation& r) { return r.result == RuleResult::kError; });
}

std::vector<std::string> NodeEvaluation::FailedRules() const {
  std::vector<std::string> out;
  for (const auto& r : rules) {
    if (r.result == RuleResult::kFail) out.push_back(r.rule_id);
  }
  return out;
}

NodeEvaluation EvaluateNode(const KubeletPolicy& policy, const NodeFacts& node,
                            const EffectiveConfig& config, int64_t now_unix) {
  NodeEvaluation out;
  out.node = node.name;
  for (const Rule& rule : policy.rules) {
    RuleEvaluation ev = rule.config ? EvaluateConfigRule(rule, config, node.kubelet_minor)
                                    : EvaluateFileRule(rule, node);
    for (const PolicyException& ex : policy.exceptions) {
      if (ex.expires_unix && *ex.expires_unix <= now_unix) continue;
      if (std::find(ex.rules.begin(), ex.rules.end(), rule.id) == ex.rules.end()) continue;
      if (!ex.node_selector.Matches(node.labels)) continue;
      ev.message = "exempt (" + ex.reason + "); actual: " + std::string(RuleResultName(ev.result)) +
                   ", " + ev.message;
      ev.result = RuleResult::kExempt;
      break;
    }
    out.rules.push_back(std::move(ev));
  }
  return out;
}

}  // namespace kpc::policy
