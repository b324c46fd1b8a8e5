#include "policy/model.h"

#include <algorithm>
#include <ctime>
#include <set>

#include "policy/catalog.h"
#include "policy/compare.h"
#include "policy/text_match.h"
#include "policy/units.h"
#include "policy/yaml_json.h"

namespace kpc::policy {
namespace {

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr size_t kMaxRules = 100;

// The directories file rules may name (api.md): the kubelet's own files and its service units.
const std::vector<std::string>& AllowedFilePrefixes() {
  static const std::vector<std::string> k = {
      "/etc/kubernetes/", "/var/lib/kubelet/", "/etc/systemd/system/", "/lib/systemd/system/",
      "/usr/lib/systemd/system/", "/etc/default/", "/etc/sysconfig/"};
  return k;
}

std::string JoinQuoted(std::initializer_list<const char*> items) {
  std::string out;
  for (const char* i : items) out += (out.empty() ? "" : ", ") + std::string(i);
  return out;
}

// Reads fields of one JSON object, collecting problems instead of stopping at the first.
class ObjectReader {
 public:
  ObjectReader(const nlohmann::json& obj, std::string field, std::vector<FieldIssue>& errors)
      : obj_(obj), field_(std::move(field)), errors_(errors) {}

  bool IsObject(std::string_view what) {
    if (obj_.is_object()) return true;
    Error(field_, "must be an object (" + std::string(what) + ")");
    return false;
  }
  std::string Field(std::string_view key) const {
    return field_.empty() ? std::string(key) : field_ + "." + std::string(key);
  }
  void Error(std::string field, std::string message) {
    errors_.push_back({std::move(field), std::move(message), 0});
  }
  // Flags every key not in `allowed`, like the API server's strict field validation.
  void RejectUnknown(std::initializer_list<const char*> allowed) {
    if (!obj_.is_object()) return;
    for (const auto& [k, v] : obj_.items()) {
      bool ok = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; });
      if (!ok) Error(Field(k), "unknown field \"" + k + "\"; allowed here: " + JoinQuoted(allowed));
    }
  }
  const nlohmann::json* Get(std::string_view key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::optional<std::string> String(std::string_view key, bool required = false) {
    const auto* v = Get(key);
    if (v == nullptr) {
      if (required) Error(Field(key), "required");
      return std::nullopt;
    }
    if (!v->is_string()) {
      Error(Field(key), "must be a string, got " + v->dump());
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  std::optional<bool> Bool(std::string_view key) {
    const auto* v = Get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      Error(Field(key), "must be true or false, got " + v->dump());
      return std::nullopt;
    }
    return v->get<bool>();
  }
  std::optional<int64_t> Int(std::string_view key, int64_t min, int64_t max) {
    const auto* v = Get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) {
      Error(Field(key), "must be an integer, got " + v->dump());
      return std::nullopt;
    }
    auto n = v->get<int64_t>();
    if (n < min || n > max) {
      Error(Field(key), "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                            ", got " + std::to_string(n));
      return std::nullopt;
    }
    return n;
  }
  std::optional<int64_t> Duration(std::string_view key, int64_t min_ns) {
    auto s = String(key);
    if (!s) return std::nullopt;
    auto d = ParseGoDuration(*s);
    if (!d) {
      Error(Field(key), "\"" + *s + "\" is not a duration; write it like 30s, 5m or 1h30m");
      return std::nullopt;
    }
    if (*d < min_ns) {
      Error(Field(key), "must be at least " + FormatGoDuration(min_ns) + ", got " + *s);
      return std::nullopt;
    }
    return d;
  }
  std::vector<std::string> StringList(std::string_view key, size_t max_items) {
    std::vector<std::string> out;
    const auto* v = Get(key);
    if (v == nullptr) return out;
    if (!v->is_array()) {
      Error(Field(key), "must be a list of strings");
      return out;
    }
    if (v->size() > max_items) {
      Error(Field(key), "must have at most " + std::to_string(max_items) + " items");
    }
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        Error(Field(key) + "[" + std::to_string(i) + "]", "must be a string");
        continue;
      }
      out.push_back((*v)[i].get<std::string>());
    }
    return out;
  }

 private:
  const nlohmann::json& obj_;
  std::string field_;
  std::vector<FieldIssue>& errors_;
};

bool IsDnsLabel(const std::string& s) { return s.size() <= 63 && MatchesDnsLabelShape(s); }

bool IsDnsSubdomain(const std::string& s) { return s.size() <= 253 && MatchesDnsSubdomainShape(s); }

template <typename E>
std::optional<E> ParseEnum(const std::string& s, std::initializer_list<std::pair<const char*, E>> values) {
  for (const auto& [name, e] : values) {
    if (s == name) return e;
  }
  return std::nullopt;
}

void ParseConfigCheck(const nlohmann::json& j, const std::string& field, Rule& rule,
                      std::vector<FieldIssue>& errors, std::vector<FieldIssue>& warnings) {
  ObjectReader r(j, field, errors);
  if (!r.IsObject("path, operator, value")) return;
  r.RejectUnknown({"path", "operator", "value", "default"});
  ConfigCheck c;
  auto path = r.String("path", true);
  bool path_ok = false;
  if (path) {
    c.path_text = *path;
    auto p = FieldPath::Parse(*path);
    if (!p.ok()) {
      r.Error(r.Field("path"), p.status().message());
    } else {
      c.path = *p;
      path_ok = true;
      if (auto m = LookupField(c.path)) {
        c.type = m->type;
      } else {
        warnings.push_back({r.Field("path"), "\"" + *path +
                                                 "\" is not a KubeletConfiguration field this "
                                                 "controller knows; check the spelling (v1beta1 "
                                                 "JSON names, e.g. streamingConnectionIdleTimeout)"});
      }
    }
  }
  auto op_text = r.String("operator", true);
  std::optional<Operator> op;
  if (op_text) {
    op = ParseOperator(*op_text);
    if (!op) {
      r.Error(r.Field("operator"), "unknown operator \"" + *op_text +
                                       "\"; use one of Equals, NotEquals, In, NotIn, GreaterThan, "
                                       "GreaterThanOrEqual, LessThan, LessThanOrEqual, Exists, "
                                       "NotExists, NotEmpty");
    }
  }
  const nlohmann::json* value = r.Get("value");
  if (value) c.value = *value;
  if (const auto* d = r.Get("default")) c.default_value = *d;
  if (!op) {
    rule.config = std::move(c);
    return;
  }
  c.op = *op;
  std::string op_name(OperatorName(*op));
  if (!OperatorTakesValue(*op)) {
    if (value) r.Error(r.Field("value"), "must not be set for operator " + op_name);
  } else if (!value) {
    r.Error(r.Field("value"), "required for operator " + op_name);
  } else if (*op == Operator::kIn || *op == Operator::kNotIn) {
    if (!value->is_array() || value->empty()) {
      r.Error(r.Field("value"), "must be a non-empty list for operator " + op_name);
    } else if (path_ok && c.type != ValueType::kStringList) {
      for (size_t i = 0; i < value->size(); ++i) {
        if (auto p = ValueTypeProblem(c.type, (*value)[i]); !p.empty()) {
          r.Error(r.Field("value") + "[" + std::to_string(i) + "]",
                  c.path_text + " is a " + std::string(ValueTypeName(c.type)) + ": " + p);
        }
      }
    }
  } else if (value->is_array() && c.type != ValueType::kStringList) {
    r.Error(r.Field("value"), "a list is only allowed for In and NotIn");
  } else if (value->is_object() && c.type != ValueType::kMap && c.type != ValueType::kObject) {
    r.Error(r.Field("value"), "must be a scalar (string, number or boolean)");
  } else if (path_ok) {
    if (auto p = ValueTypeProblem(c.type, *value); !p.empty()) {
      r.Error(r.Field("value"), c.path_text + " is a " + std::string(ValueTypeName(c.type)) + ": " + p);
    }
  }
  if (IsOrderingOperator(*op) && path_ok) {
    ValueType t = c.type;
    if (t == ValueType::kUnknown && value) {
      // Unknown field: the value itself must be orderable.
      if (!value->is_number() &&
          !(value->is_string() && (ParseGoDuration(value->get<std::string>()) ||
                                   ParseQuantity(value->get<std::string>())))) {
        r.Error(r.Field("operator"), op_name + " needs a number, duration or quantity value");
      }
    } else if (t != ValueType::kUnknown && !IsOrdered(t)) {
      r.Error(r.Field("operator"), op_name + " cannot be used on " + c.path_text + ", a " +
                                       std::string(ValueTypeName(t)) +
                                       "; use Equals, NotEquals, In or NotIn");
    }
  }
  if (c.default_value && path_ok) {
    if (auto p = ValueTypeProblem(c.type, *c.default_value); !p.empty()) {
      r.Error(r.Field("default"), c.path_text + " is a " + std::string(ValueTypeName(c.type)) + ": " + p);
    }
  }
  rule.config = std::move(c);
}

void ParseFileCheck(const nlohmann::json& j, const std::string& field, Rule& rule,
                    std::vector<FieldIssue>& errors) {
  ObjectReader r(j, field, errors);
  if (!r.IsObject("target, path, maxMode, owner, group")) return;
  r.RejectUnknown({"target", "path", "maxMode", "owner", "group", "mustExist"});
  FileCheck f;
  auto target = r.String("target", true);
  if (target) {
    auto t = ParseEnum<FileTarget>(*target, {{"KubeletConfigFile", FileTarget::kKubeletConfigFile},
                                             {"KubeletKubeconfig", FileTarget::kKubeletKubeconfig},
                                             {"KubeletServiceFile", FileTarget::kKubeletServiceFile},
                                             {"Path", FileTarget::kPath}});
    if (!t) {
      r.Error(r.Field("target"), "unknown target \"" + *target +
                                     "\"; use KubeletConfigFile, KubeletKubeconfig, "
                                     "KubeletServiceFile or Path");
    } else {
      f.target = *t;
    }
  }
  auto path = r.String("path");
  if (target && *target == "Path") {
    if (!path || path->empty()) {
      r.Error(r.Field("path"), "required when target is Path: an absolute file path");
    }
  } else if (path) {
    r.Error(r.Field("path"), "only allowed when target is Path");
  }
  if (path && !path->empty()) {
    f.path = *path;
    bool has_dotdot = false;
    size_t start = 0;
    while (start <= path->size()) {
      size_t end = path->find('/', start);
      if (end == std::string::npos) end = path->size();
      if (path->compare(start, end - start, "..") == 0) has_dotdot = true;
      start = end + 1;
    }
    if (path->front() != '/') {
      r.Error(r.Field("path"), "must be an absolute path");
    } else if (has_dotdot) {
      r.Error(r.Field("path"), "must not contain \"..\" segments");
    } else if (std::none_of(AllowedFilePrefixes().begin(), AllowedFilePrefixes().end(),
                            [&](const std::string& p) { return path->rfind(p, 0) == 0 && path->size() > p.size(); })) {
      std::string allowed;
      for (const auto& p : AllowedFilePrefixes()) allowed += (allowed.empty() ? "" : ", ") + p;
      r.Error(r.Field("path"), "\"" + *path + "\" is outside the directories file rules may check (" +
                                   allowed + ")");
    }
  }
  if (const auto* m = r.Get("maxMode")) {
    if (!m->is_string()) {
      r.Error(r.Field("maxMode"), "must be an octal string such as \"0600\" (quote it: unquoted "
                                  "0600 is read as a number)");
    } else if (!MatchesOctalMode(m->get<std::string>())) {
      r.Error(r.Field("maxMode"), "\"" + m->get<std::string>() + "\" is not an octal mode such as \"0600\"");
    } else {
      f.max_mode = static_cast<uint32_t>(std::stoul(m->get<std::string>(), nullptr, 8));
    }
  }
  for (const char* key : {"owner", "group"}) {
    auto v = r.String(key);
    if (!v) continue;
    if (v->size() > 32 || !MatchesUserOrGroup(*v)) {
      r.Error(r.Field(key), "\"" + *v + "\" is not a user/group name or numeric id");
    }
    (std::string_view(key) == "owner" ? f.owner : f.group) = *v;
  }
  if (auto me = r.Bool("mustExist")) f.must_exist = *me;
  if (!f.max_mode && f.owner.empty() && f.group.empty() && !f.must_exist) {
    r.Error(field, "checks nothing: set maxMode, owner, group or mustExist");
  }
  rule.file = std::move(f);
}

void ParseRule(const nlohmann::json& j, const std::string& field, KubeletPolicy& policy,
               std::vector<FieldIssue>& errors, std::vector<FieldIssue>& warnings) {
  ObjectReader r(j, field, errors);
  if (!r.IsObject("a rule with id and config or file")) return;
  r.RejectUnknown({"id", "title", "severity", "references", "config", "file", "remediation"});
  Rule rule;
  if (auto id = r.String("id", true)) {
    rule.id = *id;
    if (!IsDnsLabel(*id)) {
      r.Error(r.Field("id"), "\"" + *id +
                                 "\" is not a DNS-1123 label: lowercase letters, digits and '-', "
                                 "starting and ending with a letter or digit, at most 63 characters");
    }
  }
  if (auto t = r.String("title")) rule.title = *t;
  if (auto s = r.String("severity")) {
    auto sev = ParseEnum<Severity>(*s, {{"Critical", Severity::kCritical}, {"High", Severity::kHigh},
                                        {"Medium", Severity::kMedium}, {"Low", Severity::kLow},
                                        {"Info", Severity::kInfo}});
    if (!sev) r.Error(r.Field("severity"), "unknown severity \"" + *s + "\"; use Critical, High, Medium, Low or Info");
    else rule.severity = *sev;
  }
  rule.references = r.StringList("references", 16);
  const auto* config = r.Get("config");
  const auto* file = r.Get("file");
  if (config && file) {
    r.Error(field, "set exactly one of config or file, not both");
  } else if (!config && !file) {
    r.Error(field, "set exactly one of config (a kubelet configuration check) or file (a file "
                   "permission check)");
  }
  if (config) ParseConfigCheck(*config, r.Field("config"), rule, errors, warnings);
  if (file) ParseFileCheck(*file, r.Field("file"), rule, errors);

  if (const auto* rem = r.Get("remediation")) {
    ObjectReader rr(*rem, r.Field("remediation"), errors);
    if (rr.IsObject("value, enabled")) {
      rr.RejectUnknown({"value", "enabled"});
      if (auto e = rr.Bool("enabled")) rule.remediation.enabled = *e;
      if (const auto* v = rr.Get("value")) {
        rule.remediation.value = *v;
        if (file) {
          rr.Error(rr.Field("value"), "file rules remediate with chmod/chown to maxMode/owner/group; "
                                      "remove value");
        } else if (rule.config && rule.config->path.size() > 0) {
          const ConfigCheck& c = *rule.config;
          if (c.op == Operator::kNotExists) {
            rr.Error(rr.Field("value"), "a NotExists rule cannot be remediated by setting a value");
          } else if (auto p = ValueTypeProblem(c.type, *v); !p.empty()) {
            rr.Error(rr.Field("value"), c.path_text + " is a " + std::string(ValueTypeName(c.type)) + ": " + p);
          } else if (!OperatorTakesValue(c.op) || c.value) {
            Comparison cmp = Compare(c.op, c.type, *v, c.value.value_or(nlohmann::json()));
            if (cmp.ok && !cmp.matches) {
              std::string want = std::string(OperatorName(c.op));
              if (c.value) want += " " + DisplayValue(*c.value);
              rr.Error(rr.Field("value"), DisplayValue(*v) + " does not satisfy the rule itself (" +
                                              c.path_text + " " + want +
                                              "); choose a value that passes the rule");
            }
          }
        }
      }
    }
  }
  policy.rules.push_back(std::move(rule));
}

}  // namespace

std::string_view EnforcementName(Enforcement e) {
  switch (e) {
    case Enforcement::kAudit: return "Audit";
    case Enforcement::kDryRun: return "DryRun";
    case Enforcement::kEnforce: return "Enforce";
  }
  return "Audit";
}

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kCritical: return "Critical";
    case Severity::kHigh: return "High";
    case Severity::kMedium: return "Medium";
    case Severity::kLow: return "Low";
    case Severity::kInfo: return "Info";
  }
  return "Medium";
}

std::string_view FileTargetName(FileTarget t) {
  switch (t) {
    case FileTarget::kKubeletConfigFile: return "KubeletConfigFile";
    case FileTarget::kKubeletKubeconfig: return "KubeletKubeconfig";
    case FileTarget::kKubeletServiceFile: return "KubeletServiceFile";
    case FileTarget::kPath: return "Path";
  }
  return "Path";
}

int IntOrPercent::Resolve(int total) const {
  if (!percent) return std::max(1, value);
  return std::max(1, total * value / 100);
}

const Rule* KubeletPolicy::FindRule(std::string_view id) const {
  for (const auto& r : rules) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

bool KubeletPolicy::HasFileRules() const {
  return std::any_of(rules.begin(), rules.end(), [](const Rule& r) { return r.file.has_value(); });
}

PolicyParseResult ParsePolicy(const nlohmann::json& object) {
  PolicyParseResult result;
  auto& errors = result.errors;
  KubeletPolicy policy;
  ObjectReader top(object, "", errors);
  if (!top.IsObject("a KubeletPolicy")) return result;
  top.RejectUnknown({"apiVersion", "kind", "metadata", "spec", "status"});
  auto api_version = top.String("apiVersion", true);
  if (api_version && *api_version != kApiVersion) {
    top.Error("apiVersion", "must be " + std::string(kApiVersion) + ", got \"" + *api_version + "\"");
  }
  auto kind = top.String("kind", true);
  if (kind && *kind != kKind) top.Error("kind", "must be KubeletPolicy, got \"" + *kind + "\"");

  if (const auto* md = top.Get("metadata"); md && md->is_object()) {
    ObjectReader m(*md, "metadata", errors);
    if (auto name = m.String("name", true)) {
      policy.name = *name;
      if (!IsDnsSubdomain(*name) || name->size() > 63) {
        m.Error("metadata.name", "\"" + *name + "\" is not a valid name: lowercase letters, digits, "
                                 "'-' and '.', at most 63 characters (it names Jobs and labels)");
      }
    }
    if (auto uid = md->find("uid"); uid != md->end() && uid->is_string()) policy.uid = *uid;
    if (auto g = md->find("generation"); g != md->end() && g->is_number_integer()) policy.generation = *g;
    if (auto rv = md->find("resourceVersion"); rv != md->end() && rv->is_string()) policy.resource_version = *rv;
    if (md->contains("namespace") && (*md)["namespace"].is_string() && !(*md)["namespace"].get<std::string>().empty()) {
      m.Error("metadata.namespace", "KubeletPolicy is cluster-scoped; remove metadata.namespace");
    }
  } else {
    top.Error("metadata", "required: metadata.name");
  }

  const auto* spec = top.Get("spec");
  if (spec == nullptr) {
    top.Error("spec", "required: a KubeletPolicy needs spec.rules");
    return result;
  }
  ObjectReader s(*spec, "spec", errors);
  if (!s.IsObject("nodeSelector, rules, ...")) return result;
  s.RejectUnknown({"nodeSelector", "checkInterval", "enforcement", "suspend", "rules", "exceptions",
                   "remediation"});
  if (const auto* sel = s.Get("nodeSelector")) {
    policy.node_selector = ParseLabelSelector(*sel, "spec.nodeSelector", errors);
  }
  if (auto d = s.Duration("checkInterval", 10 * kSecondNs)) policy.check_interval_ns = *d;
  if (auto e = s.String("enforcement")) {
    auto en = ParseEnum<Enforcement>(*e, {{"Audit", Enforcement::kAudit}, {"DryRun", Enforcement::kDryRun},
                                          {"Enforce", Enforcement::kEnforce}});
    if (!en) s.Error("spec.enforcement", "unknown mode \"" + *e + "\"; use Audit, DryRun or Enforce");
    else policy.enforcement = *en;
  }
  if (auto b = s.Bool("suspend")) policy.suspend = *b;

  const auto* rules = s.Get("rules");
  if (rules == nullptr) {
    s.Error("spec.rules", "required: 1 to 100 rules");
  } else if (!rules->is_array()) {
    s.Error("spec.rules", "must be a list of rules");
  } else {
    if (rules->empty() || rules->size() > kMaxRules) {
      s.Error("spec.rules", "must have 1 to 100 rules, got " + std::to_string(rules->size()));
    }
    size_t n = std::min(rules->size(), kMaxRules * 2);  // bounded work on hostile input
    for (size_t i = 0; i < n; ++i) {
      ParseRule((*rules)[i], "spec.rules[" + std::to_string(i) + "]", policy, errors, result.warnings);
    }
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const auto& id = policy.rules[i].id;
      if (id.empty()) continue;
      auto [it, inserted] = seen.emplace(id, i);
      if (!inserted) {
        s.Error("spec.rules[" + std::to_string(i) + "].id",
                "duplicate rule id \"" + id + "\" (also spec.rules[" + std::to_string(it->second) + "])");
      }
    }
  }

  if (const auto* exs = s.Get("exceptions")) {
    if (!exs->is_array()) {
      s.Error("spec.exceptions", "must be a list");
    } else {
      if (exs->size() > 32) s.Error("spec.exceptions", "must have at most 32 entries");
      for (size_t i = 0; i < std::min<size_t>(exs->size(), 64); ++i) {
        std::string f = "spec.exceptions[" + std::to_string(i) + "]";
        ObjectReader e((*exs)[i], f, errors);
        if (!e.IsObject("rules, nodeSelector, reason, expires")) continue;
        e.RejectUnknown({"rules", "nodeSelector", "reason", "expires"});
        PolicyException ex;
        ex.rules = e.StringList("rules", 50);
        if (ex.rules.empty()) e.Error(e.Field("rules"), "required: the ids of the rules this exception covers");
        for (size_t k = 0; k < ex.rules.size(); ++k) {
          if (policy.FindRule(ex.rules[k]) == nullptr) {
            e.Error(e.Field("rules") + "[" + std::to_string(k) + "]",
                    "no rule with id \"" + ex.rules[k] + "\" in spec.rules");
          }
        }
        if (const auto* sel = e.Get("nodeSelector")) {
          ex.node_selector = ParseLabelSelector(*sel, e.Field("nodeSelector"), errors);
        }
        auto reason = e.String("reason");
        if (!reason || reason->find_first_not_of(" \t\n") == std::string::npos) {
          e.Error(e.Field("reason"), "required: say why these nodes are exempt (it is shown in reports)");
        } else {
          ex.reason = *reason;
        }
        if (auto exp = e.String("expires")) {
          ex.expires_unix = ParseRfc3339(*exp);
          if (!ex.expires_unix) {
            e.Error(e.Field("expires"), "\"" + *exp + "\" is not an RFC 3339 time such as 2027-01-31T00:00:00Z");
          }
        }
        policy.exceptions.push_back(std::move(ex));
      }
    }
  }

  if (const auto* rem = s.Get("remediation")) {
    ObjectReader r(*rem, "spec.remediation", errors);
    if (r.IsObject("maxUnavailable, failureThreshold, ...")) {
      r.RejectUnknown({"maxUnavailable", "failureThreshold", "restartKubelet", "timeout", "kubeletConfigFile"});
      if (const auto* mu = r.Get("maxUnavailable")) {
        // 0: not a percentage (out of range, like "0%")
        const int percent = mu->is_string() ? MatchPercent(mu->get<std::string>()).value_or(0) : 0;
        if (mu->is_number_integer() && mu->get<int64_t>() >= 1 && mu->get<int64_t>() <= 100000) {
          policy.remediation.max_unavailable = {static_cast<int>(mu->get<int64_t>()), false};
        } else if (percent >= 1 && percent <= 100) {
          policy.remediation.max_unavailable = {percent, true};
        } else {
          r.Error("spec.remediation.maxUnavailable",
                  "must be an integer of at least 1 or a percentage from \"1%\" to \"100%\", got " + mu->dump());
        }
      }
      if (auto ft = r.Int("failureThreshold", 1, 100)) policy.remediation.failure_threshold = static_cast<int>(*ft);
      if (auto rk = r.Bool("restartKubelet")) policy.remediation.restart_kubelet = *rk;
      if (auto t = r.Duration("timeout", 10 * kSecondNs)) {
        if (*t > 24 * 3600 * kSecondNs) {
          r.Error("spec.remediation.timeout", "must be at most 24h");
        } else {
          policy.remediation.timeout_ns = *t;
        }
      }
      if (auto kcf = r.String("kubeletConfigFile")) {
        static const std::vector<std::string> kConfigDirs = {"/etc/kubernetes/", "/var/lib/kubelet/",
                                                             "/etc/default/", "/etc/sysconfig/"};
        if (!kcf->empty() && std::none_of(kConfigDirs.begin(), kConfigDirs.end(),
                                          [&](const std::string& d) { return kcf->rfind(d, 0) == 0; })) {
          r.Error("spec.remediation.kubeletConfigFile",
                  "must be empty (detect it from the kubelet's --config flag) or an absolute path under "
                  "/etc/kubernetes/, /var/lib/kubelet/, /etc/default/ or /etc/sysconfig/");
        } else if (kcf->find("/../") != std::string::npos ||
                   (kcf->size() >= 3 && kcf->compare(kcf->size() - 3, 3, "/..") == 0)) {
          r.Error("spec.remediation.kubeletConfigFile", "must not contain a \"..\" segment");
        }
        policy.remediation.kubelet_config_file = *kcf;
      }
    }
  }

  if (errors.empty()) result.policy = std::move(policy);
  return result;
}

std::string FieldToPointer(const std::string& field) {
  std::string out;
  size_t i = 0;
  while (i < field.size()) {
    char c = field[i];
    if (c == '.') {
      ++i;
      continue;
    }
    if (c == '[') {
      size_t end = field.find(']', i);
      if (end == std::string::npos) break;
      std::string inner = field.substr(i + 1, end - i - 1);
      if (inner.size() >= 2 && inner.front() == '"') inner = inner.substr(1, inner.size() - 2);
      out += "/" + inner;
      i = end + 1;
      continue;
    }
    size_t end = field.find_first_of(".[", i);
    if (end == std::string::npos) end = field.size();
    out += "/" + field.substr(i, end - i);
    i = end;
  }
  return out;
}

StatusOr<std::vector<SourcedPolicy>> ParsePolicies(std::string_view text, std::string_view source_name) {
  const std::string src(source_name);
  auto docs = ParseYamlStream(text);
  if (!docs.ok()) return InvalidArgument(src + ": " + docs.status().message());
  std::vector<SourcedPolicy> out;
  std::string problems;
  auto add_issue = [&](const YamlDocument& doc, const std::string& prefix, const FieldIssue& is) {
    int line = LineOf(doc, prefix + FieldToPointer(is.field));
    problems += src + ":" + std::to_string(line) + ": " + (is.field.empty() ? "" : is.field + ": ") + is.message + "\n";
  };
  auto parse_one = [&](const YamlDocument& doc, const nlohmann::json& obj, const std::string& prefix) {
    PolicyParseResult r = ParsePolicy(obj);
    for (const auto& e : r.errors) add_issue(doc, prefix, e);
    if (r.policy) {
      SourcedPolicy sp{std::move(*r.policy), r.warnings, LineOf(doc, prefix)};
      for (auto& w : sp.warnings) w.line = LineOf(doc, prefix + FieldToPointer(w.field));
      out.push_back(std::move(sp));
    }
  };
  for (const auto& doc : *docs) {
    const auto& v = doc.value;
    if (v.is_object() && v.contains("kind") && v["kind"].is_string() &&
        (v["kind"] == "List" || v["kind"] == "KubeletPolicyList")) {
      if (!v.contains("items") || !v["items"].is_array()) {
        problems += src + ":" + std::to_string(doc.first_line) + ": items: a List needs an items list\n";
        continue;
      }
      for (size_t i = 0; i < v["items"].size(); ++i) {
        parse_one(doc, v["items"][i], "/items/" + std::to_string(i));
      }
      continue;
    }
    parse_one(doc, v, "");
  }
  if (!problems.empty()) {
    problems.pop_back();
    return InvalidArgument(problems);
  }
  if (out.empty()) return InvalidArgument(src + ": no KubeletPolicy found");
  return out;
}

}  // namespace kpc::policy
