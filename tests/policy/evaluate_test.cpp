#include "policy/evaluate.h"

#include <gtest/gtest.h>

#include "policy/catalog.h"

namespace kpc::policy {
namespace {

using nlohmann::json;

Rule ConfigRule(const std::string& path, Operator op, std::optional<json> value = std::nullopt,
                std::optional<json> def = std::nullopt) {
  Rule r;
  r.id = "r";
  ConfigCheck c;
  c.path_text = path;
  c.path = *FieldPath::Parse(path);
  if (auto m = LookupField(c.path)) c.type = m->type;
  c.op = op;
  c.value = std::move(value);
  c.default_value = std::move(def);
  r.config = c;
  return r;
}

EffectiveConfig Live(json cfg) {
  EffectiveConfig e;
  e.config = std::move(cfg);
  e.live = true;
  return e;
}

// ---- Compare: every operator on every type -------------------------------------------------

struct CompareCase {
  const char* name;
  Operator op;
  ValueType type;
  json observed;
  json want;
  bool matches;
};

class CompareTest : public ::testing::TestWithParam<CompareCase> {};

TEST_P(CompareTest, Verdict) {
  const auto& c = GetParam();
  Comparison r = Compare(c.op, c.type, c.observed, c.want);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.matches, c.matches);
}

INSTANTIATE_TEST_SUITE_P(
    Operators, CompareTest,
    ::testing::Values(
        // durations
        CompareCase{"dur_zero_spellings_equal", Operator::kEquals, ValueType::kDuration, "0h0m0s", 0, true},
        CompareCase{"dur_zero_string_equal", Operator::kEquals, ValueType::kDuration, "0s", "0", true},
        CompareCase{"dur_4h_equals_4h0m0s", Operator::kEquals, ValueType::kDuration, "4h0m0s", "4h", true},
        CompareCase{"dur_not_equals", Operator::kNotEquals, ValueType::kDuration, "4h0m0s", "0s", true},
        CompareCase{"dur_not_equals_zero_fails", Operator::kNotEquals, ValueType::kDuration, "0s", "0", false},
        CompareCase{"dur_gt", Operator::kGreaterThan, ValueType::kDuration, "1h30m", "90s", true},
        CompareCase{"dur_ge_equal", Operator::kGreaterThanOrEqual, ValueType::kDuration, "90m", "1h30m", true},
        CompareCase{"dur_lt", Operator::kLessThan, ValueType::kDuration, "5m", "1h", true},
        CompareCase{"dur_le_fails", Operator::kLessThanOrEqual, ValueType::kDuration, "2h", "1h", false},
        CompareCase{"dur_in", Operator::kIn, ValueType::kDuration, "240m", json::array({"1h", "4h"}), true},
        CompareCase{"dur_not_in", Operator::kNotIn, ValueType::kDuration, "0s", json::array({"0", "1s"}), false},
        // ints / floats
        CompareCase{"int_equals", Operator::kEquals, ValueType::kInt, 0, 0, true},
        CompareCase{"int_equals_float_form", Operator::kEquals, ValueType::kInt, 5, 5.0, true},
        CompareCase{"int_gte", Operator::kGreaterThanOrEqual, ValueType::kInt, 0, 0, true},
        CompareCase{"int_gt_fails", Operator::kGreaterThan, ValueType::kInt, 0, 0, false},
        CompareCase{"int_lt", Operator::kLessThan, ValueType::kInt, 50, 100, true},
        CompareCase{"int_le", Operator::kLessThanOrEqual, ValueType::kInt, 100, 100, true},
        CompareCase{"int_not_equals", Operator::kNotEquals, ValueType::kInt, 10255, 0, true},
        CompareCase{"int_in", Operator::kIn, ValueType::kInt, 0, json::array({0, 10255}), true},
        CompareCase{"int_not_in", Operator::kNotIn, ValueType::kInt, 10255, json::array({10255}), false},
        CompareCase{"float_gt", Operator::kGreaterThan, ValueType::kFloat, 0.5, 0.25, true},
        // booleans
        CompareCase{"bool_equals", Operator::kEquals, ValueType::kBool, false, false, true},
        CompareCase{"bool_equals_fails", Operator::kEquals, ValueType::kBool, true, false, false},
        CompareCase{"bool_not_equals", Operator::kNotEquals, ValueType::kBool, true, false, true},
        CompareCase{"bool_in", Operator::kIn, ValueType::kBool, true, json::array({true}), true},
        CompareCase{"bool_not_in", Operator::kNotIn, ValueType::kBool, true, json::array({false}), true},
        // strings
        CompareCase{"str_equals", Operator::kEquals, ValueType::kString, "Webhook", "Webhook", true},
        CompareCase{"str_case_sensitive", Operator::kEquals, ValueType::kString, "webhook", "Webhook", false},
        CompareCase{"str_not_equals", Operator::kNotEquals, ValueType::kString, "Webhook", "AlwaysAllow", true},
        CompareCase{"str_in", Operator::kIn, ValueType::kString, "Webhook", json::array({"Webhook", "RBAC"}), true},
        CompareCase{"str_not_in", Operator::kNotIn, ValueType::kString, "AlwaysAllow", json::array({"AlwaysAllow"}), false},
        // quantities
        CompareCase{"qty_equals", Operator::kEquals, ValueType::kQuantity, "1Gi", "1024Mi", true},
        CompareCase{"qty_gt", Operator::kGreaterThan, ValueType::kQuantity, "1Gi", "1000Mi", true},
        CompareCase{"qty_lt", Operator::kLessThan, ValueType::kQuantity, "100Mi", "1G", true},
        // lists
        CompareCase{"list_equals_as_set", Operator::kEquals, ValueType::kStringList, json::array({"a", "b"}), json::array({"b", "a"}), true},
        CompareCase{"list_in_all_elements", Operator::kIn, ValueType::kStringList, json::array({"a", "b"}), json::array({"a", "b", "c"}), true},
        CompareCase{"list_in_fails_on_extra", Operator::kIn, ValueType::kStringList, json::array({"a", "x"}), json::array({"a", "b"}), false},
        CompareCase{"list_not_in", Operator::kNotIn, ValueType::kStringList, json::array({"a"}), json::array({"x"}), true},
        // presence
        CompareCase{"exists", Operator::kExists, ValueType::kString, "x", nullptr, true},
        CompareCase{"exists_absent", Operator::kExists, ValueType::kString, nullptr, nullptr, false},
        CompareCase{"not_exists", Operator::kNotExists, ValueType::kString, nullptr, nullptr, true},
        CompareCase{"not_empty", Operator::kNotEmpty, ValueType::kString, "/etc/ca.crt", nullptr, true},
        CompareCase{"not_empty_empty_string", Operator::kNotEmpty, ValueType::kString, "", nullptr, false},
        CompareCase{"not_empty_empty_list", Operator::kNotEmpty, ValueType::kStringList, json::array(), nullptr, false},
        // not set
        CompareCase{"unset_not_equals", Operator::kNotEquals, ValueType::kString, nullptr, "x", true},
        CompareCase{"unset_equals", Operator::kEquals, ValueType::kString, nullptr, "x", false},
        CompareCase{"unset_ordering_fails", Operator::kGreaterThan, ValueType::kInt, nullptr, 1, false},
        // unknown type: inferred
        CompareCase{"unknown_durations", Operator::kEquals, ValueType::kUnknown, "4h0m0s", "4h", true},
        CompareCase{"unknown_numbers", Operator::kGreaterThan, ValueType::kUnknown, 7, 3, true},
        CompareCase{"unknown_bool", Operator::kEquals, ValueType::kUnknown, true, true, true}),
    [](const ::testing::TestParamInfo<CompareCase>& info) { return std::string(info.param.name); });

TEST(CompareErrorTest, GarbageObservedValueIsAnError) {
  auto r = Compare(Operator::kEquals, ValueType::kDuration, "forever", "4h");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("not a duration"), std::string::npos);
  r = Compare(Operator::kGreaterThan, ValueType::kInt, json::object(), 1);
  EXPECT_FALSE(r.ok);
  r = Compare(Operator::kGreaterThan, ValueType::kStringList, json::array(), 1);
  EXPECT_FALSE(r.ok);
}

// ---- Value sources -------------------------------------------------------------------------

TEST(EvaluateTest, AbsentConfigzFieldIsItsZeroValue) {
  auto ev = EvaluateConfigRule(ConfigRule("rotateCertificates", Operator::kEquals, true), Live(json::object()), 34);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  EXPECT_EQ(ev.observed, false);
  EXPECT_EQ(ev.source, ValueSource::kZeroValue);
  EXPECT_EQ(ev.message, "rotateCertificates is false (zero-value), want Equals true");

  ev = EvaluateConfigRule(ConfigRule("readOnlyPort", Operator::kEquals, 0), Live(json::object()), 34);
  EXPECT_EQ(ev.result, RuleResult::kPass);
  EXPECT_EQ(ev.observed, 0);
}

TEST(EvaluateTest, PresentConfigzValue) {
  auto ev = EvaluateConfigRule(ConfigRule("streamingConnectionIdleTimeout", Operator::kNotEquals, "0s"),
                               Live({{"streamingConnectionIdleTimeout", "0s"}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  EXPECT_EQ(ev.source, ValueSource::kConfigz);
  EXPECT_EQ(ev.message, "streamingConnectionIdleTimeout is 0s (configz), want NotEquals 0s");
}

TEST(EvaluateTest, RuleDefaultReplacesAbsentValue) {
  auto ev = EvaluateConfigRule(ConfigRule("someCustomField", Operator::kEquals, "x", json("x")), Live(json::object()), 34);
  EXPECT_EQ(ev.result, RuleResult::kPass);
  EXPECT_EQ(ev.source, ValueSource::kRuleDefault);
}

TEST(EvaluateTest, AbsentFeatureGateIsItsDefaultNotFalse) {
  auto ev = EvaluateConfigRule(ConfigRule("featureGates.RotateKubeletServerCertificate", Operator::kEquals, true),
                               Live(json::object()), 30);
  EXPECT_EQ(ev.result, RuleResult::kPass) << ev.message;
  EXPECT_EQ(ev.source, ValueSource::kDefault);
  ev = EvaluateConfigRule(ConfigRule("featureGates.RotateKubeletServerCertificate", Operator::kEquals, true),
                          Live({{"featureGates", {{"RotateKubeletServerCertificate", false}}}}), 30);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  EXPECT_EQ(ev.source, ValueSource::kConfigz);
}

TEST(EvaluateTest, BracketedMapPath) {
  auto cfg = Live({{"evictionHard", {{"memory.available", "100Mi"}}}});
  auto ev = EvaluateConfigRule(ConfigRule(R"(evictionHard["memory.available"])", Operator::kEquals, "100Mi"), cfg, 34);
  EXPECT_EQ(ev.result, RuleResult::kPass) << ev.message;
  EXPECT_EQ(ev.observed, "100Mi");
}

TEST(EvaluateTest, SourcesFromFileModeAreReported) {
  EffectiveConfig e;
  e.config = {{"eventRecordQPS", 0}, {"streamingConnectionIdleTimeout", "4h0m0s"}};
  e.sources["eventRecordQPS"] = ValueSource::kFlag;
  e.sources["streamingConnectionIdleTimeout"] = ValueSource::kDefault;
  auto ev = EvaluateConfigRule(ConfigRule("eventRecordQPS", Operator::kGreaterThan, 0), e, 34);
  EXPECT_EQ(ev.source, ValueSource::kFlag);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  ev = EvaluateConfigRule(ConfigRule("streamingConnectionIdleTimeout", Operator::kNotEquals, 0), e, 34);
  EXPECT_EQ(ev.source, ValueSource::kDefault);
  EXPECT_EQ(ev.result, RuleResult::kPass);
  e.config["rotateCertificates"] = true;
  ev = EvaluateConfigRule(ConfigRule("rotateCertificates", Operator::kEquals, true), e, 34);
  EXPECT_EQ(ev.source, ValueSource::kConfigFile);
}

TEST(EvaluateTest, GarbageObservedValueIsError) {
  auto ev = EvaluateConfigRule(ConfigRule("streamingConnectionIdleTimeout", Operator::kNotEquals, "0s"),
                               Live({{"streamingConnectionIdleTimeout", json::array({1})}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kError);
}

// A list or a map where the catalog expects one value (or a value of the wrong container kind
// where it expects a list or a map) is an Error result: never compared as text, never a crash.
struct ShapeCase {
  const char* name;
  const char* path;
  Operator op;
  json want;
  json observed;
};

class NonScalarObservedTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(NonScalarObservedTest, IsAnErrorResult) {
  const auto& c = GetParam();
  const bool takes_value = OperatorTakesValue(c.op);
  auto ev = EvaluateConfigRule(
      ConfigRule(c.path, c.op, takes_value ? std::optional<json>(c.want) : std::nullopt),
      Live({{std::string(c.path), c.observed}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kError) << ev.message;
  EXPECT_NE(ev.message.find("observed value"), std::string::npos) << ev.message;
  EXPECT_LT(ev.message.size(), 400u) << ev.message;
}

json Deep(size_t depth) {
  json v = 1;
  for (size_t i = 0; i < depth; ++i) v = json::array({v});
  return v;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, NonScalarObservedTest,
    ::testing::Values(
        ShapeCase{"string_is_map", "cgroupDriver", Operator::kEquals, "systemd", {{"a", 1}}},
        ShapeCase{"string_is_list_not_equals", "cgroupDriver", Operator::kNotEquals, "cgroupfs",
                  json::array({"systemd"})},
        ShapeCase{"string_is_map_in",
                  "cgroupDriver",
                  Operator::kIn,
                  json::array({"systemd"}),
                  {{"a", 1}}},
        ShapeCase{"bool_is_map", "rotateCertificates", Operator::kEquals, true, {{"a", true}}},
        ShapeCase{"bool_is_list", "rotateCertificates", Operator::kNotEquals, false,
                  json::array({true})},
        ShapeCase{"int_is_list", "maxPods", Operator::kLessThanOrEqual, 110, json::array({1})},
        ShapeCase{"int_is_map", "maxPods", Operator::kEquals, 110, {{"a", 1}}},
        ShapeCase{"duration_is_map",
                  "streamingConnectionIdleTimeout",
                  Operator::kNotEquals,
                  "0s",
                  {{"a", "4h"}}},
        ShapeCase{"duration_is_deep", "streamingConnectionIdleTimeout", Operator::kGreaterThan,
                  "1h", Deep(60)},
        ShapeCase{"list_is_string", "tlsCipherSuites", Operator::kEquals, json::array({"a"}), "a"},
        ShapeCase{
            "list_is_map", "tlsCipherSuites", Operator::kNotIn, json::array({"a"}), {{"a", "b"}}},
        ShapeCase{"list_has_a_list", "tlsCipherSuites", Operator::kIn, json::array({"a"}),
                  json::array({json::array({"a"})})},
        ShapeCase{"map_is_list",
                  "evictionHard",
                  Operator::kEquals,
                  {{"memory.available", "100Mi"}},
                  json::array({1})},
        ShapeCase{"map_is_string",
                  "evictionHard",
                  Operator::kNotEquals,
                  {{"memory.available", "100Mi"}},
                  "100Mi"}),
    [](const ::testing::TestParamInfo<ShapeCase>& info) { return std::string(info.param.name); });

TEST(EvaluateTest, HugeObservedValuesAreCutInMessages) {
  auto ev = EvaluateConfigRule(ConfigRule("cgroupDriver", Operator::kEquals, "systemd"),
                               Live({{"cgroupDriver", std::string(1u << 20, 'x')}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  EXPECT_LT(ev.message.size(), 400u);
  EXPECT_NE(ev.message.find("(1048576 bytes)"), std::string::npos) << ev.message;
  ev = EvaluateConfigRule(ConfigRule("maxPods", Operator::kEquals, 110),
                          Live({{"maxPods", std::string(1u << 20, 'x')}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kError);
  EXPECT_LT(ev.message.size(), 400u) << ev.message.substr(0, 400);
}

TEST(EvaluateTest, ExistsIgnoresZeroValueStandIn) {
  auto ev = EvaluateConfigRule(ConfigRule("authentication.x509.clientCAFile", Operator::kExists), Live(json::object()), 34);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  ev = EvaluateConfigRule(ConfigRule("authentication.x509.clientCAFile", Operator::kNotEmpty), Live(json::object()), 34);
  EXPECT_EQ(ev.result, RuleResult::kFail);
  ev = EvaluateConfigRule(ConfigRule("authentication.x509.clientCAFile", Operator::kNotEmpty),
                          Live({{"authentication", {{"x509", {{"clientCAFile", "/etc/ca.crt"}}}}}}), 34);
  EXPECT_EQ(ev.result, RuleResult::kPass);
}

// ---- Exceptions and file rules -------------------------------------------------------------

NodeFacts Node(const std::string& name, std::map<std::string, std::string> labels) {
  NodeFacts n;
  n.name = name;
  n.labels = std::move(labels);
  return n;
}

KubeletPolicy PolicyWithException(std::optional<int64_t> expires) {
  KubeletPolicy p;
  p.name = "p";
  Rule r = ConfigRule("authentication.anonymous.enabled", Operator::kEquals, false);
  r.id = "anon";
  p.rules.push_back(r);
  PolicyException ex;
  ex.rules = {"anon"};
  ex.node_selector.match_labels["pool"] = "legacy";
  ex.reason = "legacy scraper";
  ex.expires_unix = expires;
  p.exceptions.push_back(ex);
  return p;
}

TEST(EvaluateTest, ExceptionExemptsMatchingNodesUntilExpiry) {
  auto cfg = Live({{"authentication", {{"anonymous", {{"enabled", true}}}}}});
  NodeFacts legacy = Node("n1", {{"pool", "legacy"}});
  NodeFacts other = Node("n2", {{"pool", "main"}});
  auto p = PolicyWithException(2000);
  auto ev = EvaluateNode(p, legacy, cfg, 1000);
  EXPECT_EQ(ev.rules[0].result, RuleResult::kExempt);
  EXPECT_NE(ev.rules[0].message.find("legacy scraper"), std::string::npos);
  EXPECT_TRUE(ev.Compliant());
  EXPECT_EQ(EvaluateNode(p, other, cfg, 1000).rules[0].result, RuleResult::kFail);
  // expired
  EXPECT_EQ(EvaluateNode(p, legacy, cfg, 2000).rules[0].result, RuleResult::kFail);
  EXPECT_FALSE(EvaluateNode(p, legacy, cfg, 2001).Compliant());
  // never expires
  EXPECT_EQ(EvaluateNode(PolicyWithException(std::nullopt), legacy, cfg, 1LL << 40).rules[0].result, RuleResult::kExempt);
}

TEST(EvaluateTest, FileRules) {
  KubeletPolicy p;
  Rule r;
  r.id = "perm";
  r.file = FileCheck{FileTarget::kKubeletConfigFile, "", 0600, "root", "root", false};
  p.rules.push_back(r);
  NodeFacts n = Node("n", {});
  EffectiveConfig cfg = Live(json::object());
  EXPECT_EQ(EvaluateNode(p, n, cfg, 0).rules[0].result, RuleResult::kNotApplicable);  // no audit yet
  n.file_targets["KubeletConfigFile"] = "/var/lib/kubelet/config.yaml";
  n.files["/var/lib/kubelet/config.yaml"] = FileFacts{true, 0644, 1000, 0, "ubuntu", "root", ""};
  auto ev = EvaluateNode(p, n, cfg, 0).rules[0];
  EXPECT_EQ(ev.result, RuleResult::kFail);
  EXPECT_NE(ev.message.find("mode 0644 exceeds 0600"), std::string::npos) << ev.message;
  EXPECT_NE(ev.message.find("owner ubuntu, want root"), std::string::npos) << ev.message;
  n.files["/var/lib/kubelet/config.yaml"] = FileFacts{true, 0400, 0, 0, "root", "root", ""};
  EXPECT_EQ(EvaluateNode(p, n, cfg, 0).rules[0].result, RuleResult::kPass);
  n.files["/var/lib/kubelet/config.yaml"] = FileFacts{false, 0, 0, 0, "", "", ""};
  EXPECT_EQ(EvaluateNode(p, n, cfg, 0).rules[0].result, RuleResult::kNotApplicable);
  p.rules[0].file->must_exist = true;
  EXPECT_EQ(EvaluateNode(p, n, cfg, 0).rules[0].result, RuleResult::kFail);
  // numeric owner
  p.rules[0].file->must_exist = false;
  p.rules[0].file->owner = "0";
  n.files["/var/lib/kubelet/config.yaml"] = FileFacts{true, 0600, 0, 0, "", "", ""};
  p.rules[0].file->group = "";
  EXPECT_EQ(EvaluateNode(p, n, cfg, 0).rules[0].result, RuleResult::kPass);
}

}  // namespace
}  // namespace kpc::policy
