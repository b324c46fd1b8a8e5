#include "policy/model.h"

#include <algorithm>
#include <ctime>
#include <set>

#include "policy/catalog.h"
#include "policy/compare.h"
#include "policy/limits.h"
#include "policy/text_match.h"
#include "policy/units.h"
#include "policy/yaml_json.h"

namespace kpc::policy {
namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

// The bounds of the KubeletPolicy CRD (crds/kubeletpolicy.io_kubeletpolicies.yaml), enforced
// here too so that a policy `check` accepts is one the API server accepts. Lengths are checked
// before any pattern sees the text.
constexpr size_t kMaxRules = 100;
constexpr size_t kMaxNameChars = 63;
constexpr size_t kMaxTitleChars = 256;
constexpr size_t kMaxReferences = 16;
constexpr size_t kMaxReferenceChars = 256;
constexpr size_t kMaxRulePathChars = 256;
constexpr size_t kMaxFilePathChars = 1024;
constexpr size_t kMaxUserChars = 32;  // file.owner, file.group
constexpr size_t kMaxDurationChars = 32;
constexpr size_t kMaxExceptions = 32;
constexpr size_t kMaxExceptionRules = 50;
constexpr size_t kMaxReasonChars = 1024;
constexpr size_t kMaxKubeletConfigFileChars = 1024;
// Reported problems per policy: a hostile object with a million unknown keys makes a bounded
// answer, not a million lines.
constexpr size_t kMaxReportedIssues = 100;
constexpr size_t kMaxUnknownFieldsPerObject = 16;

std::string JoinQuoted(std::initializer_list<const char*> items) {
  std::string out;
  for (const char* i : items) out += (out.empty() ? "" : ", ") + std::string(i);
  return out;
}

// A value that is not what a field takes, for "got ..." in messages: never whole.
std::string Describe(const nlohmann::json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  return Shortened(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// What is wrong with the length of `s` (in characters, as the API server counts), or nullopt.
std::optional<std::string> LengthProblem(const std::string& s, size_t min_chars, size_t max_chars) {
  const size_t n = CharCount(s);
  if (n > max_chars) {
    return "must be at most " + std::to_string(max_chars) + " characters, got " + std::to_string(n);
  }
  if (n < min_chars) {
    return min_chars == 1 ? std::string("must not be empty")
                          : "must be at least " + std::to_string(min_chars) + " characters, got " +
                                std::to_string(n);
  }
  return std::nullopt;
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
  // Flags every key not in `allowed`, like the API server's strict field validation (the first
  // few by name, then how many more).
  void RejectUnknown(std::initializer_list<const char*> allowed) {
    if (!obj_.is_object()) return;
    size_t unknown = 0;
    for (const auto& [k, v] : obj_.items()) {
      bool ok = std::any_of(allowed.begin(), allowed.end(),
                            [&key = k](const char* a) { return key == a; });
      if (ok || ++unknown > kMaxUnknownFieldsPerObject) continue;
      Error(Field(Shortened(k)),
            "unknown field " + Quoted(k) + "; allowed here: " + JoinQuoted(allowed));
    }
    if (unknown > kMaxUnknownFieldsPerObject) {
      Error(field_, std::to_string(unknown - kMaxUnknownFieldsPerObject) +
                        " more unknown fields; allowed here: " + JoinQuoted(allowed));
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
      Error(Field(key), "must be a string, got " + Describe(*v));
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  // A string of min_chars..max_chars characters; any other length is an error and nullopt, so
  // that no pattern or parser sees it.
  std::optional<std::string> BoundedString(std::string_view key, size_t min_chars, size_t max_chars,
                                           bool required = false) {
    auto s = String(key, required);
    if (!s) return s;
    if (auto p = LengthProblem(*s, min_chars, max_chars)) {
      Error(Field(key), *p);
      return std::nullopt;
    }
    return s;
  }
  std::optional<bool> Bool(std::string_view key) {
    const auto* v = Get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      Error(Field(key), "must be true or false, got " + Describe(*v));
      return std::nullopt;
    }
    return v->get<bool>();
  }
  std::optional<int64_t> Int(std::string_view key, int64_t min, int64_t max) {
    const auto* v = Get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) {
      Error(Field(key), "must be an integer, got " + Describe(*v));
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
    auto s = BoundedString(key, 0, kMaxDurationChars);
    if (!s) return std::nullopt;
    auto d = ParseGoDuration(*s);
    if (!d) {
      Error(Field(key), Quoted(*s) + " is not a duration; write it like 30s, 5m or 1h30m");
      return std::nullopt;
    }
    if (*d < min_ns) {
      Error(Field(key), "must be at least " + FormatGoDuration(min_ns) + ", got " + *s);
      return std::nullopt;
    }
    if (!MatchesDurationShape(*s)) {  // Go reads "+5m", ".5h" and "5.m"; the API server does not
      Error(Field(key), Quoted(*s) +
                            " is not a duration the API server accepts: numbers with units "
                            "(ns, us, ms, s, m, h), like 30s, 5m or 1h30m, without a sign");
      return std::nullopt;
    }
    return d;
  }
  // Items over max_chars are errors and left out; past max_items, only the count is reported.
  std::vector<std::string> StringList(std::string_view key, size_t max_items, size_t max_chars) {
    std::vector<std::string> out;
    const auto* v = Get(key);
    if (v == nullptr) return out;
    if (!v->is_array()) {
      Error(Field(key), "must be a list of strings");
      return out;
    }
    if (v->size() > max_items) {
      Error(Field(key), "must have at most " + std::to_string(max_items) + " items, got " +
                            std::to_string(v->size()));
      return out;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string item = Field(key) + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_string()) {
        Error(item, "must be a string");
        continue;
      }
      if (auto p = LengthProblem((*v)[i].get_ref<const std::string&>(), 0, max_chars)) {
        Error(item, *p);
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

// config.path: its text, the parsed path and its catalog type. Returns whether it is valid.
bool ParseRulePath(ObjectReader& r, ConfigCheck& c, std::vector<FieldIssue>& warnings) {
  auto path = r.BoundedString("path", 1, kMaxRulePathChars, true);
  if (!path) return false;
  c.path_text = *path;
  auto p = FieldPath::Parse(*path);
  if (!p.ok()) {
    r.Error(r.Field("path"), p.status().message());
    return false;
  }
  if (!MatchesRulePathShape(*path)) {
    r.Error(r.Field("path"),
            Quoted(*path) +
                " is not a path the API server accepts: field names of "
                "letters, digits, '_' and '-' joined by '.', a name with other "
                "characters in brackets and quotes (evictionHard[\"memory.available\"])");
    return false;
  }
  c.path = *p;
  if (auto m = LookupField(c.path)) {
    c.type = m->type;
  } else {
    warnings.push_back({r.Field("path"), Quoted(*path) +
                                             " is not a KubeletConfiguration field this "
                                             "controller knows; check the spelling (v1beta1 "
                                             "JSON names, e.g. streamingConnectionIdleTimeout)"});
  }
  return true;
}

// A free-form value (config.value, config.default, remediation.value), or nullptr when absent or
// nested too deeply to be a kubelet configuration value (an error then).
const nlohmann::json* FreeFormValue(ObjectReader& r, std::string_view key) {
  const nlohmann::json* v = r.Get(key);
  if (v != nullptr && NestsDeeperThan(*v, kMaxPolicyValueDepth)) {
    r.Error(r.Field(key), "nests deeper than " + std::to_string(kMaxPolicyValueDepth) +
                              " levels; kubelet configuration values are scalars, lists and maps");
    return nullptr;
  }
  return v;
}

void ParseConfigCheck(const nlohmann::json& j, const std::string& field, Rule& rule,
                      std::vector<FieldIssue>& errors, std::vector<FieldIssue>& warnings) {
  ObjectReader r(j, field, errors);
  if (!r.IsObject("path, operator, value")) return;
  r.RejectUnknown({"path", "operator", "value", "default"});
  ConfigCheck c;
  const bool path_ok = ParseRulePath(r, c, warnings);
  auto op_text = r.String("operator", true);
  std::optional<Operator> op;
  if (op_text) {
    op = ParseOperator(*op_text);
    if (!op) {
      r.Error(r.Field("operator"), "unknown operator " + Quoted(*op_text) +
                                       "; use one of Equals, NotEquals, In, NotIn, GreaterThan, "
                                       "GreaterThanOrEqual, LessThan, LessThanOrEqual, Exists, "
                                       "NotExists, NotEmpty");
    }
  }
  const size_t errors_before = errors.size();
  const nlohmann::json* value = FreeFormValue(r, "value");
  const nlohmann::json* def = FreeFormValue(r, "default");
  if (errors.size() != errors_before) {  // too deep to look at further
    rule.config = std::move(c);
    return;
  }
  if (value) c.value = *value;
  if (def) c.default_value = *def;
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

// What is wrong with a file rule's path (absolute, no "..", under an allowed directory, the
// CRD's characters), or an empty string.
std::string FilePathProblem(const std::string& path) {
  bool has_dotdot = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0) has_dotdot = true;
    start = end + 1;
  }
  if (path.front() != '/') return "must be an absolute path";
  if (has_dotdot) return "must not contain \"..\" segments";
  if (!UnderAllowedFilePrefix(path)) {
    std::string allowed;
    for (const auto& p : AllowedFilePrefixes()) allowed += (allowed.empty() ? "" : ", ") + p;
    return Quoted(path) + " is outside the directories file rules may check (" + allowed + ")";
  }
  if (!MatchesFilePathShape(path)) {
    return Quoted(path) +
           " has characters the API server does not accept in a path: letters, digits "
           "and - . _ @ + = , : / only";
  }
  return "";
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
      r.Error(r.Field("target"), "unknown target " + Quoted(*target) +
                                     "; use KubeletConfigFile, KubeletKubeconfig, "
                                     "KubeletServiceFile or Path");
    } else {
      f.target = *t;
    }
  }
  const size_t errors_before = errors.size();
  auto path = r.BoundedString("path", 0, kMaxFilePathChars);
  const bool path_too_long = errors.size() != errors_before;
  if (target && *target == "Path") {
    if ((!path || path->empty()) && !path_too_long) {
      r.Error(r.Field("path"), "required when target is Path: an absolute file path");
    }
  } else if (path) {
    r.Error(r.Field("path"), "only allowed when target is Path");
  }
  if (path && !path->empty()) {
    f.path = *path;
    if (auto problem = FilePathProblem(*path); !problem.empty()) r.Error(r.Field("path"), problem);
  }
  if (const auto* m = r.Get("maxMode")) {
    if (!m->is_string()) {
      r.Error(r.Field("maxMode"), "must be an octal string such as \"0600\" (quote it: unquoted "
                                  "0600 is read as a number)");
    } else if (!MatchesOctalMode(m->get<std::string>())) {
      r.Error(r.Field("maxMode"),
              Quoted(m->get_ref<const std::string&>()) + " is not an octal mode such as \"0600\"");
    } else {
      f.max_mode = static_cast<uint32_t>(std::stoul(m->get<std::string>(), nullptr, 8));
    }
  }
  for (const char* key : {"owner", "group"}) {
    auto v = r.String(key);
    if (!v) continue;
    if (const size_t n = CharCount(*v); n > kMaxUserChars) {  // before the pattern sees it
      r.Error(r.Field(key), Quoted(*v) + " is not a user/group name or numeric id: at most " +
                                std::to_string(kMaxUserChars) + " characters, got " +
                                std::to_string(n));
    } else if (!MatchesUserOrGroup(*v)) {
      r.Error(r.Field(key), Quoted(*v) + " is not a user/group name or numeric id");
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
      r.Error(r.Field("id"),
              Quoted(*id) +
                  " is not a DNS-1123 label: lowercase letters, digits and '-', "
                  "starting and ending with a letter or digit, at most 63 characters");
    }
  }
  if (auto t = r.BoundedString("title", 0, kMaxTitleChars)) rule.title = *t;
  if (auto s = r.String("severity")) {
    auto sev = ParseEnum<Severity>(*s, {{"Critical", Severity::kCritical}, {"High", Severity::kHigh},
                                        {"Medium", Severity::kMedium}, {"Low", Severity::kLow},
                                        {"Info", Severity::kInfo}});
    if (!sev)
      r.Error(r.Field("severity"),
              "unknown severity " + Quoted(*s) + "; use Critical, High, Medium, Low or Info");
    else rule.severity = *sev;
  }
  rule.references = r.StringList("references", kMaxReferences, kMaxReferenceChars);
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
      if (const auto* v = FreeFormValue(rr, "value")) {
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

void ParseException(const nlohmann::json& j, const std::string& field, KubeletPolicy& policy,
                    std::vector<FieldIssue>& errors) {
  ObjectReader e(j, field, errors);
  if (!e.IsObject("rules, nodeSelector, reason, expires")) return;
  e.RejectUnknown({"rules", "nodeSelector", "reason", "expires"});
  PolicyException ex;
  const auto* rules = e.Get("rules");
  ex.rules = e.StringList("rules", kMaxExceptionRules, kMaxNameChars);
  if (rules == nullptr || (rules->is_array() && rules->empty())) {
    e.Error(e.Field("rules"), "required: the ids of the rules this exception covers");
  }
  for (size_t k = 0; k < ex.rules.size(); ++k) {
    if (!IsDnsLabel(ex.rules[k])) {
      e.Error(e.Field("rules") + "[" + std::to_string(k) + "]",
              Quoted(ex.rules[k]) + " is not a rule id: lowercase letters, digits and '-'");
    } else if (policy.FindRule(ex.rules[k]) == nullptr) {
      e.Error(e.Field("rules") + "[" + std::to_string(k) + "]",
              "no rule with id " + Quoted(ex.rules[k]) + " in spec.rules");
    }
  }
  if (const auto* sel = e.Get("nodeSelector")) {
    ex.node_selector = ParseLabelSelector(*sel, e.Field("nodeSelector"), errors);
  }
  // Blank as CEL's trim() sees it (the CRD: self.trim() != '').
  const size_t errors_before = errors.size();
  auto reason = e.BoundedString("reason", 0, kMaxReasonChars);
  if (errors.size() != errors_before) {
    // too long: reported
  } else if (!reason || reason->find_first_not_of(" \t\n\r\v\f") == std::string::npos) {
    e.Error(e.Field("reason"), "required: say why these nodes are exempt (it is shown in reports)");
  } else {
    ex.reason = *reason;
  }
  if (auto exp = e.String("expires")) {
    ex.expires_unix = ParseRfc3339(*exp);
    if (!ex.expires_unix) {
      e.Error(e.Field("expires"),
              Quoted(*exp) + " is not an RFC 3339 time such as 2027-01-31T00:00:00Z");
    }
  }
  policy.exceptions.push_back(std::move(ex));
}

void ParseExceptions(const nlohmann::json& exs, KubeletPolicy& policy,
                     std::vector<FieldIssue>& errors) {
  if (!exs.is_array()) {
    errors.push_back({"spec.exceptions", "must be a list", 0});
    return;
  }
  if (exs.size() > kMaxExceptions) {
    errors.push_back({"spec.exceptions",
                      "must have at most " + std::to_string(kMaxExceptions) + " entries, got " +
                          std::to_string(exs.size()),
                      0});
  }
  for (size_t i = 0; i < std::min(exs.size(), kMaxExceptions); ++i) {
    ParseException(exs[i], "spec.exceptions[" + std::to_string(i) + "]", policy, errors);
  }
}

void ParseMaxUnavailable(ObjectReader& r, RemediationSettings& out) {
  const auto* mu = r.Get("maxUnavailable");
  if (mu == nullptr) return;
  if (mu->is_number_integer() && mu->get<int64_t>() >= 1 && mu->get<int64_t>() <= 100000) {
    out.max_unavailable = {static_cast<int>(mu->get<int64_t>()), false};
  } else if (mu->is_string() && MatchesPercentShape(mu->get_ref<const std::string&>())) {
    out.max_unavailable = {*MatchPercent(mu->get_ref<const std::string&>()), true};
  } else {
    r.Error("spec.remediation.maxUnavailable",
            "must be an integer of at least 1 or a percentage from \"1%\" to \"100%\", got " +
                Describe(*mu));
  }
}

void ParseRemediationSettings(const nlohmann::json& rem, RemediationSettings& out,
                              std::vector<FieldIssue>& errors) {
  ObjectReader r(rem, "spec.remediation", errors);
  if (!r.IsObject("maxUnavailable, failureThreshold, ...")) return;
  r.RejectUnknown(
      {"maxUnavailable", "failureThreshold", "restartKubelet", "timeout", "kubeletConfigFile"});
  ParseMaxUnavailable(r, out);
  if (auto ft = r.Int("failureThreshold", 1, 100)) out.failure_threshold = static_cast<int>(*ft);
  if (auto rk = r.Bool("restartKubelet")) out.restart_kubelet = *rk;
  if (auto t = r.Duration("timeout", 10 * kSecondNs)) {
    if (*t > 24 * 3600 * kSecondNs) {
      r.Error("spec.remediation.timeout", "must be at most 24h");
    } else {
      out.timeout_ns = *t;
    }
  }
  if (auto kcf = r.BoundedString("kubeletConfigFile", 0, kMaxKubeletConfigFileChars)) {
    static const std::vector<std::string> kConfigDirs = {"/etc/kubernetes/", "/var/lib/kubelet/",
                                                         "/etc/default/", "/etc/sysconfig/"};
    if (!kcf->empty() &&
        std::none_of(kConfigDirs.begin(), kConfigDirs.end(),
                     [&](const std::string& d) { return kcf->rfind(d, 0) == 0; })) {
      r.Error(
          "spec.remediation.kubeletConfigFile",
          "must be empty (detect it from the kubelet's --config flag) or an absolute path under "
          "/etc/kubernetes/, /var/lib/kubelet/, /etc/default/ or /etc/sysconfig/");
    } else if (kcf->find("/../") != std::string::npos ||
               (kcf->size() >= 3 && kcf->compare(kcf->size() - 3, 3, "/..") == 0)) {
      r.Error("spec.remediation.kubeletConfigFile", "must not contain a \"..\" segment");
    }
    out.kubelet_config_file = *kcf;
  }
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
    top.Error("apiVersion",
              "must be " + std::string(kApiVersion) + ", got " + Quoted(*api_version));
  }
  auto kind = top.String("kind", true);
  if (kind && *kind != kKind) top.Error("kind", "must be KubeletPolicy, got " + Quoted(*kind));

  if (const auto* md = top.Get("metadata"); md && md->is_object()) {
    ObjectReader m(*md, "metadata", errors);
    if (auto name = m.String("name", true)) {
      policy.name = *name;
      if (name->size() > kMaxNameChars || !IsDnsSubdomain(*name)) {
        m.Error("metadata.name",
                Quoted(*name) +
                    " is not a valid name: lowercase letters, digits, "
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
    if (!en)
      s.Error("spec.enforcement", "unknown mode " + Quoted(*e) + "; use Audit, DryRun or Enforce");
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
        s.Error("spec.rules[" + std::to_string(i) + "].id", "duplicate rule id " + Quoted(id) +
                                                                " (also spec.rules[" +
                                                                std::to_string(it->second) + "])");
      }
    }
  }

  if (const auto* exs = s.Get("exceptions")) ParseExceptions(*exs, policy, errors);
  if (const auto* rem = s.Get("remediation"))
    ParseRemediationSettings(*rem, policy.remediation, errors);
  if (errors.size() > kMaxReportedIssues) {
    const size_t more = errors.size() - kMaxReportedIssues;
    errors.resize(kMaxReportedIssues);
    errors.push_back({"", std::to_string(more) + " more problems not shown; fix these first", 0});
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

const std::vector<std::string>& AllowedFilePrefixes() {
  static const std::vector<std::string> k = {
      "/etc/kubernetes/", "/var/lib/kubelet/", "/etc/systemd/system/", "/lib/systemd/system/",
      "/usr/lib/systemd/system/", "/etc/default/", "/etc/sysconfig/"};
  return k;
}

bool UnderAllowedFilePrefix(std::string_view path) {
  return std::any_of(AllowedFilePrefixes().begin(), AllowedFilePrefixes().end(),
                     [&](const std::string& p) {
                       return path.size() > p.size() && path.compare(0, p.size(), p) == 0;
                     });
}

}  // namespace kpc::policy
