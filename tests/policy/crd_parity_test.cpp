// `check` and the admission webhook accept a policy only if the API server does: every bound of
// the KubeletPolicy CRD (lengths, item counts, patterns, enums, minimums, required fields and
// CEL rules) is read from crds/kubeletpolicy.io_kubeletpolicies.yaml and tried on ParsePolicy —
// at, just under and just over each bound. A bound added to the CRD without a case here fails
// the test, so the CRD and the parser cannot drift apart.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "policy/model.h"

namespace kpc::policy {
namespace {

using nlohmann::json;

// ---- the bounds, from the CRD ----

struct Bound {
  std::string path;   // ".spec.rules[].title": "[]" an array's items, "{}" a map's values
  std::string kind;   // maxLength, minLength, maxItems, minItems, maxProperties, minimum,
                      // maximum, pattern, enum, required, cel, format
  std::string value;  // the number, pattern, required property, or "#i" for the i-th CEL rule
  std::vector<std::string> choices;  // enum
};

void Collect(const YAML::Node& n, const std::string& path, std::vector<Bound>& out) {
  for (const char* k : {"maxLength", "minLength", "maxItems", "minItems", "maxProperties",
                        "minimum", "maximum", "pattern", "format"}) {
    if (n[k]) out.push_back({path, k, n[k].as<std::string>(), {}});
  }
  if (n["enum"]) {
    Bound b{path, "enum", "", {}};
    for (const auto& v : n["enum"]) b.choices.push_back(v.as<std::string>());
    out.push_back(b);
  }
  if (n["required"]) {
    for (const auto& r : n["required"]) out.push_back({path, "required", r.as<std::string>(), {}});
  }
  if (n["x-kubernetes-validations"]) {
    for (size_t i = 0; i < n["x-kubernetes-validations"].size(); ++i) {
      out.push_back({path, "cel", "#" + std::to_string(i), {}});
    }
  }
  if (n["properties"]) {
    for (const auto& kv : n["properties"])
      Collect(kv.second, path + "." + kv.first.as<std::string>(), out);
  }
  if (n["items"]) Collect(n["items"], path + "[]", out);
  if (n["additionalProperties"] && n["additionalProperties"].IsMap()) {
    Collect(n["additionalProperties"], path + "{}", out);
  }
}

std::vector<Bound> CrdBounds() {
  YAML::Node crd =
      YAML::LoadFile(std::string(KPC_SOURCE_DIR) + "/crds/kubeletpolicy.io_kubeletpolicies.yaml");
  std::vector<Bound> out;
  Collect(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "", out);
  std::vector<Bound> policy_bounds;
  for (auto& b : out) {
    // status is the controller's to write; the API server ignores it on create and update.
    if (b.path.rfind(".status", 0) == 0) continue;
    policy_bounds.push_back(std::move(b));
  }
  return policy_bounds;
}

// ---- building policies ----

std::string A(size_t n, char c = 'a') { return std::string(n, c); }

json Rule(size_t i) {
  return {
      {"id", "r" + std::to_string(i)},
      {"config",
       {{"path", "streamingConnectionIdleTimeout"}, {"operator", "NotEquals"}, {"value", "0s"}}}};
}

json Base() {
  return json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "p"},
    "spec": {"rules": [
      {"id": "stream", "config": {"path": "streamingConnectionIdleTimeout", "operator": "NotEquals", "value": "0s"},
       "remediation": {"value": "4h0m0s"}}
    ]}})");
}

json WithFileRule() {
  json p = Base();
  p["spec"]["rules"][0] = {
      {"id", "stream"},
      {"file", {{"target", "Path"}, {"path", "/etc/kubernetes/x.conf"}, {"maxMode", "0600"}}}};
  return p;
}

json WithException() {
  json p = Base();
  p["spec"]["exceptions"] = json::array({{{"rules", {"stream"}}, {"reason", "legacy nodes"}}});
  return p;
}

json WithSelector(json p, const std::string& pointer) {
  p[json::json_pointer(pointer)] = {
      {"matchLabels", {{"pool", "a"}}},
      {"matchExpressions", json::array({{{"key", "k"}, {"operator", "In"}, {"values", {"v"}}}})}};
  return p;
}

// Where each object of the schema sits in a valid policy that has it.
struct Site {
  std::function<json()> policy;
  std::string pointer;
};
const std::map<std::string, Site>& Objects() {
  static const auto* sites = new std::map<std::string, Site>{
      {"", {Base, ""}},
      {".metadata", {Base, "/metadata"}},
      {".spec", {Base, "/spec"}},
      {".spec.nodeSelector",
       {[] { return WithSelector(Base(), "/spec/nodeSelector"); }, "/spec/nodeSelector"}},
      {".spec.nodeSelector.matchExpressions[]",
       {[] { return WithSelector(Base(), "/spec/nodeSelector"); },
        "/spec/nodeSelector/matchExpressions/0"}},
      {".spec.rules[]", {Base, "/spec/rules/0"}},
      {".spec.rules[].config", {Base, "/spec/rules/0/config"}},
      {".spec.rules[].file", {WithFileRule, "/spec/rules/0/file"}},
      {".spec.rules[].remediation", {Base, "/spec/rules/0/remediation"}},
      {".spec.exceptions[]", {WithException, "/spec/exceptions/0"}},
      {".spec.exceptions[].nodeSelector",
       {[] { return WithSelector(WithException(), "/spec/exceptions/0/nodeSelector"); },
        "/spec/exceptions/0/nodeSelector"}},
      {".spec.exceptions[].nodeSelector.matchExpressions[]",
       {[] { return WithSelector(WithException(), "/spec/exceptions/0/nodeSelector"); },
        "/spec/exceptions/0/nodeSelector/matchExpressions/0"}},
      {".spec.remediation",
       {[] {
          json p = Base();
          p["spec"]["remediation"] = json::object();
          return p;
        },
        "/spec/remediation"}},
  };
  return *sites;
}

// A policy with `value` at the CRD path `field` ("[]": as the only item, "{}": as the only map
// value), and what the parser's error field for it starts with.
struct Placed {
  json policy;
  std::string error_prefix;
};
Placed Place(const std::string& field, const json& value) {
  std::string object_path = field;
  json v = value;
  if (field.ends_with("[]")) {
    object_path = field.substr(0, field.size() - 2);
    v = json::array({value});
  } else if (field.ends_with("{}")) {
    object_path = field.substr(0, field.size() - 2);
    v = {{"k", value}};
  }
  const auto dot = object_path.rfind('.');
  const std::string parent = object_path.substr(0, dot), key = object_path.substr(dot + 1);
  const Site& site = Objects().at(parent);
  json p = site.policy();
  p[json::json_pointer(site.pointer)][key] = v;
  std::string prefix = field.substr(1);
  for (size_t i; (i = prefix.find("[]")) != std::string::npos;) prefix.replace(i, 2, "[0]");
  if (auto i = prefix.find("{}"); i != std::string::npos) prefix.resize(i);
  if (prefix.ends_with("[0]")) prefix.resize(prefix.size() - 3);
  return {std::move(p), prefix};
}

// Changes some fields need to stay valid otherwise once `value` is placed.
void FixUp(const std::string& field, const json& value, json& p) {
  json& rule = p["spec"]["rules"][0];
  if (field == ".spec.rules[].config.path") {
    rule["config"]["operator"] = "Exists";
    rule["config"].erase("value");
    rule.erase("remediation");
  } else if (field == ".spec.rules[].config.operator") {
    rule.erase("remediation");
    const std::string op = value.get<std::string>();
    rule["config"].erase("value");
    if (op == "In" || op == "NotIn")
      rule["config"]["value"] = {"4h0m0s"};
    else if (op != "Exists" && op != "NotExists" && op != "NotEmpty")
      rule["config"]["value"] = "4h0m0s";
  } else if (field == ".spec.rules[].file.target") {
    if (value != "Path") rule["file"].erase("path");
  } else if (field == ".spec.exceptions[].rules[]" && value.is_string()) {
    rule["id"] = value;  // an exception names an existing rule
  } else if (field.ends_with("matchExpressions[].operator")) {
    json& e = field.starts_with(".spec.exceptions")
                  ? p["spec"]["exceptions"][0]["nodeSelector"]["matchExpressions"][0]
                  : p["spec"]["nodeSelector"]["matchExpressions"][0];
    if (value != "In" && value != "NotIn") e.erase("values");
  }
}

// A value of `n` characters (or items, or map entries) for the field, valid in every other
// way; nullopt when there is none (the bound is then only tried from the failing side).
std::optional<json> OfSize(const std::string& field, size_t n) {
  auto items = [n](const std::function<json(size_t)>& item) {
    json a = json::array();
    for (size_t i = 0; i < n; ++i) a.push_back(item(i));
    return a;
  };
  auto duration = [n]() -> std::optional<json> {
    return n >= 3 ? json(A(n - 3, '0') + "10s") : std::optional<json>();
  };
  if (field.ends_with(".matchLabels")) {
    json m = json::object();
    for (size_t i = 0; i < n; ++i) m["k" + std::to_string(i)] = "v";
    return m;
  }
  if (field.ends_with(".matchExpressions")) {
    return items([](size_t i) {
      return json{{"key", "k" + std::to_string(i)}, {"operator", "Exists"}};
    });
  }
  if (field.ends_with("matchExpressions[].values")) {
    if (n == 0) return std::nullopt;
    return items([](size_t i) { return json("v" + std::to_string(i)); });
  }
  if (field.ends_with("matchExpressions[].key")) {
    if (n == 0) return json("");
    if (n <= 63) return json(A(n));
    const size_t name = std::min<size_t>(63, n - 2);
    return json(A(n - 1 - name) + "/" + A(name, 'b'));
  }
  if (field == ".spec.checkInterval" || field == ".spec.remediation.timeout") return duration();
  if (field == ".spec.rules") return items(Rule);
  if (field == ".spec.rules[].references") return items([](size_t) { return json("CIS 4.2.1"); });
  if (field == ".spec.rules[].file.path" || field == ".spec.remediation.kubeletConfigFile") {
    if (n < 17) return std::nullopt;
    return json("/etc/kubernetes/" + A(n - 16));
  }
  if (field == ".spec.rules[].file.maxMode") {
    if (n < 3 || n > 5) return std::nullopt;
    return json(A(n - 3, '0') + "600");
  }
  if (field == ".spec.exceptions") {
    return items([](size_t) { return json{{"rules", {"stream"}}, {"reason", "legacy"}}; });
  }
  if (field == ".spec.exceptions[].rules") return items([](size_t) { return json("stream"); });
  if (field == ".spec.remediation.maxUnavailable") {
    if (n < 2 || n > 4) return std::nullopt;
    return json(std::string(n == 4 ? "100" : n == 3 ? "10" : "1") + "%");
  }
  if (field == ".spec.rules[].id" || field == ".spec.exceptions[].rules[]" ||
      field.ends_with(".owner") || field.ends_with(".group")) {
    if (n == 0) return json("");
  }
  return json(A(n));
}

// A value of `n` that breaks only the size bound, for the failing side.
json TooBig(const std::string& field, size_t n) {
  if (auto v = OfSize(field, n)) return *v;
  if (field == ".spec.rules[].file.path" || field == ".spec.remediation.kubeletConfigFile") {
    return "/etc/kubernetes/" + A(n > 16 ? n - 16 : 0);
  }
  return A(n, '0');
}
json TooSmall(const std::string& field, size_t n) {
  if (auto v = OfSize(field, n)) return *v;
  if (field == ".spec.rules[].file.path") return A(n, '/');
  return json::array();
}

// Pattern samples (enough to cover each pattern's edges), tried against the CRD's own pattern.
const std::map<std::string, std::vector<std::string>>& PatternSamples() {
  static const auto* samples = new std::map<std::string, std::vector<std::string>>{
      {".spec.checkInterval",
       {"10s", "1h30m", "1.5h", "20000000us", "20000000\xC2\xB5s", "0010s", "+10s", "-10s", ".5h",
        "5.m", "10", "10 s", "10S", "10d", "1h 30m"}},
      {".spec.rules[].id", {"a", "a-b", "a1", "1a", "-a", "a-", "A", "a_b", "a.b", "\xC3\xA9"}},
      {".spec.rules[].config.path",
       {"a", "a.b", "evictionHard[\"memory.available\"]", "a[\"b\\\"c\"].d", "a[\"x\"][\"y\"]",
        "[\"a\"]", "a.", ".a", "a..b", "a b", "a/b", "a[\"\"]", "a[b]", "a$b", "\xC3\xA9",
        "a[\"b\\\nc\"]"}},
      {".spec.rules[].file.path",
       {"/etc/kubernetes/a.conf", "/var/lib/kubelet/x@y+z=w,v:u", "/etc/kubernetes/a b",
        "/etc/kubernetes/a;b", "/etc/kubernetes/\xC3\xA9", "/etc/kubernetes/$x",
        "etc/kubernetes/a"}},
      {".spec.rules[].file.maxMode",
       {"600", "0600", "4755", "00600", "800", "0o600", "60", "06000", "0600 "}},
      {".spec.rules[].file.owner",
       {"root", "_x", "a.b", "a-b", "x$", "A", "1000", "-a", "a b", "$", "a$b", ".a"}},
      {".spec.rules[].file.group", {"root", "_x", "a.b", "A", "1000", "-a", "a b", "$"}},
      {".spec.exceptions[].rules[]", {"stream", "a-b", "-a", "A", "a_b", "a.b"}},
      {".spec.remediation.maxUnavailable",
       {"1%", "10%", "100%", "0%", "01%", "101%", "1000%", "%", "5", "x%"}},
      {".spec.remediation.timeout", {"10s", "1h", "24h", "1.5h", "+1h", ".5h", "1h 0m", "10"}},
  };
  return *samples;
}

// A policy that breaks the i-th CEL rule of a path, and nothing else.
const std::map<std::string, std::function<json()>>& CelBreakers() {
  static const auto* breakers = new std::map<std::string, std::function<json()>>{
      {"#0",
       [] {
         json p = Base();
         p["metadata"]["name"] = A(64);
         return p;
       }},
      {".spec#0",
       [] {
         json p = WithException();
         p["spec"]["exceptions"][0]["rules"] = {"no-such-rule"};
         return p;
       }},
      {".spec.nodeSelector.matchExpressions[]#0",
       [] {
         json p = WithSelector(Base(), "/spec/nodeSelector");
         p["spec"]["nodeSelector"]["matchExpressions"][0].erase("values");
         return p;
       }},
      {".spec.exceptions[].nodeSelector.matchExpressions[]#0",
       [] {
         json p = WithSelector(WithException(), "/spec/exceptions/0/nodeSelector");
         p["spec"]["exceptions"][0]["nodeSelector"]["matchExpressions"][0] = {
             {"key", "k"}, {"operator", "Exists"}, {"values", {"v"}}};
         return p;
       }},
      {".spec.checkInterval#0",
       [] {
         json p = Base();
         p["spec"]["checkInterval"] = "9s";
         return p;
       }},
      {".spec.rules[]#0",
       [] {
         json p = Base();
         p["spec"]["rules"][0] = {{"id", "stream"}};
         return p;
       }},
      {".spec.rules[].file#0",
       [] {
         json p = WithFileRule();
         p["spec"]["rules"][0]["file"].erase("path");
         return p;
       }},
      {".spec.rules[].file#1",
       [] {
         json p = WithFileRule();
         p["spec"]["rules"][0]["file"]["target"] = "KubeletConfigFile";
         return p;
       }},
      {".spec.rules[].file#2",
       [] {
         json p = WithFileRule();
         p["spec"]["rules"][0]["file"].erase("maxMode");
         return p;
       }},
      {".spec.rules[].file.path#0",
       [] {
         json p = WithFileRule();
         p["spec"]["rules"][0]["file"]["path"] = "/tmp/kubelet.conf";
         return p;
       }},
      {".spec.rules[].file.path#1",
       [] {
         json p = WithFileRule();
         p["spec"]["rules"][0]["file"]["path"] = "/etc/kubernetes/../shadow";
         return p;
       }},
      {".spec.exceptions[].reason#0",
       [] {
         json p = WithException();
         p["spec"]["exceptions"][0]["reason"] = " \t ";
         return p;
       }},
      {".spec.remediation.timeout#0",
       [] {
         json p = Base();
         p["spec"]["remediation"] = {{"timeout", "25h"}};
         return p;
       }},
      {".spec.remediation.kubeletConfigFile#0",
       [] {
         json p = Base();
         p["spec"]["remediation"] = {{"kubeletConfigFile", "/tmp/config.yaml"}};
         return p;
       }},
      {".spec.remediation.kubeletConfigFile#1",
       [] {
         json p = Base();
         p["spec"]["remediation"] = {{"kubeletConfigFile", "/etc/kubernetes/.."}};
         return p;
       }},
  };
  return *breakers;
}

std::string Describe(const std::vector<FieldIssue>& issues) {
  std::string out;
  for (const auto& i : issues) out += "\n  " + i.field + ": " + i.message;
  return out.empty() ? " (none)" : out;
}

bool HasErrorAt(const std::vector<FieldIssue>& errors, const std::string& prefix) {
  for (const auto& e : errors) {
    if (e.field.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

void ExpectAccepted(const json& p, const std::string& what) {
  auto r = ParsePolicy(p);
  EXPECT_TRUE(r.errors.empty()) << what << ": rejected:" << Describe(r.errors) << "\n" << p.dump();
}

void ExpectRejected(const json& p, const std::string& prefix, const std::string& what) {
  auto r = ParsePolicy(p);
  EXPECT_TRUE(HasErrorAt(r.errors, prefix))
      << what << ": no error at " << prefix << ":" << Describe(r.errors);
  for (const auto& e : r.errors)
    EXPECT_LT(e.message.size(), 400u) << what << ": " << e.message.substr(0, 400);
}

void CheckSize(const Bound& b) {
  const size_t bound = std::stoul(b.value);
  const bool is_max = b.kind.rfind("max", 0) == 0;
  const std::string what = b.path + " " + b.kind + " " + b.value;
  for (size_t n : is_max ? std::vector<size_t>{bound > 0 ? bound - 1 : 0, bound}
                         : std::vector<size_t>{bound, bound + 1}) {
    if (auto v = OfSize(b.path, n)) {
      Placed at = Place(b.path, *v);
      FixUp(b.path, *v, at.policy);
      ExpectAccepted(at.policy, what + " (size " + std::to_string(n) + ")");
    }
  }
  if (!is_max && bound == 0) return;
  const size_t bad = is_max ? bound + 1 : bound - 1;
  const json v = is_max ? TooBig(b.path, bad) : TooSmall(b.path, bad);
  Placed over = Place(b.path, v);
  FixUp(b.path, v, over.policy);
  ExpectRejected(over.policy, over.error_prefix, what + " (size " + std::to_string(bad) + ")");
}

void CheckPattern(const Bound& b) {
  ASSERT_TRUE(PatternSamples().count(b.path))
      << "no pattern samples for " << b.path << " (" << b.value << ")";
  const std::regex crd(b.value, std::regex::ECMAScript);  // test-only: short, trusted samples
  int crd_accepts = 0, crd_refuses = 0;
  for (const std::string& s : PatternSamples().at(b.path)) {
    const bool matches = std::regex_search(s, crd);
    (matches ? crd_accepts : crd_refuses)++;
    Placed at = Place(b.path, s);
    FixUp(b.path, s, at.policy);
    auto r = ParsePolicy(at.policy);
    if (!matches) {
      EXPECT_TRUE(HasErrorAt(r.errors, at.error_prefix))
          << b.path << ": " << json(s).dump()
          << " does not match the CRD's pattern, but the parser took it";
    } else if (b.path != ".spec.rules[].file.owner" && b.path != ".spec.rules[].file.group") {
      // Owners and groups are checked more strictly than the CRD (lowercase names, as Linux
      // tools create them); anything else the pattern takes, the parser takes.
      EXPECT_FALSE(HasErrorAt(r.errors, at.error_prefix))
          << b.path << ": " << json(s).dump()
          << " matches the CRD's pattern, but:" << Describe(r.errors);
    }
  }
  EXPECT_GT(crd_accepts, 0) << b.path;
  EXPECT_GT(crd_refuses, 0) << b.path;
}

void CheckEnum(const Bound& b) {
  for (const std::string& c : b.choices) {
    Placed at = Place(b.path, c);
    FixUp(b.path, c, at.policy);
    ExpectAccepted(at.policy, b.path + " = " + c);
  }
  for (std::string bad : {std::string("Bogus"), b.choices.front() + " ", std::string("")}) {
    Placed at = Place(b.path, bad);
    FixUp(b.path, bad, at.policy);
    ExpectRejected(at.policy, at.error_prefix, b.path + " = " + json(bad).dump());
  }
  std::string lower = b.choices.front();
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower != b.choices.front()) {
    Placed at = Place(b.path, lower);
    FixUp(b.path, lower, at.policy);
    ExpectRejected(at.policy, at.error_prefix, b.path + " = " + lower);
  }
}

void CheckNumber(const Bound& b) {
  const int64_t bound = std::stoll(b.value);
  const bool is_min = b.kind == "minimum";
  ExpectAccepted(Place(b.path, bound).policy, b.path + " = " + b.value);
  const int64_t inside = is_min ? bound + 1 : bound - 1;
  ExpectAccepted(Place(b.path, inside).policy, b.path + " = " + std::to_string(inside));
  Placed out = Place(b.path, is_min ? bound - 1 : bound + 1);
  ExpectRejected(out.policy, out.error_prefix, b.path + " " + b.kind + " " + b.value);
}

void CheckRequired(const Bound& b) {
  const Site& site = Objects().at(b.path);
  json p = site.policy();
  p[json::json_pointer(site.pointer)].erase(b.value);
  std::string prefix = b.path.empty() ? "" : b.path.substr(1);
  for (size_t i; (i = prefix.find("[]")) != std::string::npos;) prefix.replace(i, 2, "[0]");
  ExpectRejected(p, prefix, b.path + " requires " + b.value);
}

void CheckFormat(const Bound& b) {
  if (b.value == "int32") {
    Placed at = Place(b.path, int64_t{1} << 31);
    ExpectRejected(at.policy, at.error_prefix, b.path + " int32");
    return;
  }
  ASSERT_EQ(b.value, "date-time") << b.path;
  ASSERT_EQ(b.path, ".spec.exceptions[].expires");
  ExpectAccepted(Place(b.path, "2027-01-31T00:00:00Z").policy, "expires");
  ExpectAccepted(Place(b.path, "2027-01-31T02:00:00.5+02:00").policy, "expires");
  for (const char* bad :
       {"tomorrow", "2027-01-31", "2027-13-01T00:00:00Z", "2027-01-31 00:00:00Z"}) {
    Placed at = Place(b.path, bad);
    ExpectRejected(at.policy, at.error_prefix, std::string("expires ") + bad);
  }
}

TEST(CrdParityTest, EveryBoundOfTheCrdIsEnforcedByTheParser) {
  const std::vector<Bound> bounds = CrdBounds();
  ASSERT_GT(bounds.size(), 60u);  // the file was read
  std::set<std::string> kinds;
  for (const Bound& b : bounds) {
    SCOPED_TRACE(b.path + " " + b.kind + " " + b.value);
    kinds.insert(b.kind);
    if (b.kind == "maxLength" || b.kind == "minLength" || b.kind == "maxItems" ||
        b.kind == "minItems" || b.kind == "maxProperties") {
      CheckSize(b);
    } else if (b.kind == "pattern") {
      CheckPattern(b);
    } else if (b.kind == "enum") {
      CheckEnum(b);
    } else if (b.kind == "minimum" || b.kind == "maximum") {
      CheckNumber(b);
    } else if (b.kind == "required") {
      CheckRequired(b);
    } else if (b.kind == "format") {
      CheckFormat(b);
    } else if (b.kind == "cel") {
      auto it = CelBreakers().find(b.path + b.value);
      ASSERT_NE(it, CelBreakers().end()) << "no case for CEL rule " << b.value << " of " << b.path;
      std::string prefix = b.path.empty() ? "" : b.path.substr(1);
      for (size_t i; (i = prefix.find("[]")) != std::string::npos;) prefix.replace(i, 2, "[0]");
      ExpectRejected(it->second(), prefix, "CEL rule " + b.value + " of " + b.path);
    } else {
      ADD_FAILURE() << "a kind of bound this test does not know: " << b.kind;
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"maxLength", "minLength", "maxItems", "minItems",
                                          "maxProperties", "minimum", "maximum", "pattern", "enum",
                                          "required", "cel", "format"}));
}

// The numbers of the issue: `check` took a 120,000-character rule path with a warning.
TEST(CrdParityTest, HugeFieldsAreRefusedWithShortMessages) {
  for (const char* field :
       {".spec.rules[].config.path", ".spec.rules[].file.owner", ".spec.rules[].file.path",
        ".spec.rules[].id", ".spec.rules[].title", ".spec.exceptions[].reason"}) {
    Placed at = Place(field, A(120'000));
    FixUp(field, A(120'000), at.policy);
    auto r = ParsePolicy(at.policy);
    ASSERT_TRUE(HasErrorAt(r.errors, at.error_prefix)) << field << Describe(r.errors);
    for (const auto& e : r.errors) EXPECT_LT(e.message.size() + e.field.size(), 300u) << field;
  }
  json p = Base();
  p["metadata"]["name"] = A(100'000);
  auto r = ParsePolicy(p);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].field, "metadata.name");
  EXPECT_LT(r.errors[0].message.size(), 300u);
  EXPECT_NE(r.errors[0].message.find("(100000 bytes)"), std::string::npos) << r.errors[0].message;
}

}  // namespace
}  // namespace kpc::policy
