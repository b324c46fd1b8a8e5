#include "policy/evaluate.h"

#include <algorithm>
#include <cmath>

#include "policy/catalog.h"
#include "policy/compare.h"
#include "policy/limits.h"
#include "policy/units.h"

namespace kpc::policy {
namespace {
constexpr size_t kShownValueChars = 128;
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
  // Values in messages are cut: the observed one comes from a node.
  std::string observed_text = Shortened(DisplayValue(ev.observed), kShownValueChars);
  std::string want_text = std::string(OperatorName(check.op));
  if (OperatorTakesValue(check.op))
    want_text += " " + Shortened(DisplayValue(want), kShownValueChars);
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
