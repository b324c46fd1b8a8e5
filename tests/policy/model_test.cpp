#include "policy/model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "policy/limits.h"

namespace kpc::policy {
namespace {

std::string ReadTestFile(const std::string& rel) {
  std::ifstream in(std::string(KPC_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A minimal valid policy; tests patch it.
nlohmann::json Base() {
  return nlohmann::json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "p"},
    "spec": {"rules": [
      {"id": "stream", "config": {"path": "streamingConnectionIdleTimeout", "operator": "NotEquals", "value": "0s"},
       "remediation": {"value": "4h0m0s"}}
    ]}})");
}

TEST(ModelTest, ParsesTheApiExampleWithDefaults) {
  auto parsed = ParsePolicies(ReadTestFile("tests/testdata/api-example.yaml"), "api-example.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->size(), 1u);
  const KubeletPolicy& p = (*parsed)[0].policy;
  EXPECT_EQ(p.name, "cis-worker-kubelet");
  EXPECT_EQ(p.enforcement, Enforcement::kAudit);
  EXPECT_EQ(p.check_interval_ns, 5LL * 60 * 1'000'000'000);
  ASSERT_EQ(p.rules.size(), 10u);
  EXPECT_EQ(p.rules[0].severity, Severity::kLow);
  EXPECT_EQ(p.rules[1].severity, Severity::kMedium);  // default
  EXPECT_EQ(p.rules[0].config->op, Operator::kNotEquals);
  EXPECT_EQ(p.rules[0].config->type, ValueType::kDuration);
  EXPECT_EQ(*p.rules[0].remediation.value, "4h0m0s");
  EXPECT_EQ(p.rules[7].file->target, FileTarget::kKubeletConfigFile);
  EXPECT_EQ(*p.rules[7].file->max_mode, 0600u);
  EXPECT_EQ(p.rules[8].file->path, "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf");
  ASSERT_EQ(p.exceptions.size(), 1u);
  EXPECT_EQ(*p.exceptions[0].expires_unix, 1801353600);  // 2027-01-31T00:00:00Z
  EXPECT_EQ(p.exceptions[0].node_selector.match_labels.at("pool"), "legacy-monitoring");
  EXPECT_EQ(p.remediation.max_unavailable.value, 1);
  EXPECT_EQ(p.remediation.failure_threshold, 3);
  EXPECT_TRUE(p.remediation.restart_kubelet);
  EXPECT_EQ(p.remediation.timeout_ns, 10LL * 60 * 1'000'000'000);
  EXPECT_TRUE((*parsed)[0].warnings.empty());
}

TEST(ModelTest, ParsesMultiDocumentStreamAndList) {
  std::string one = Base().dump();
  nlohmann::json second = Base();
  second["metadata"]["name"] = "q";
  auto stream = ParsePolicies(one + "\n---\n" + second.dump() + "\n", "s.yaml");
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  EXPECT_EQ(stream->size(), 2u);
  nlohmann::json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", {Base(), second}}};
  auto l = ParsePolicies(list.dump(), "l.json");
  ASSERT_TRUE(l.ok()) << l.status().message();
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[1].policy.name, "q");
}

struct InvalidCase {
  const char* name;
  std::function<void(nlohmann::json&)> patch;
  const char* field;
  const char* message_part;
};

class InvalidPolicyTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidPolicyTest, IsRejectedWithFieldPath) {
  nlohmann::json obj = Base();
  GetParam().patch(obj);
  PolicyParseResult r = ParsePolicy(obj);
  EXPECT_FALSE(r.policy.has_value());
  bool found = false;
  std::string all;
  for (const auto& e : r.errors) {
    all += e.field + ": " + e.message + "\n";
    if (e.field == GetParam().field && e.message.find(GetParam().message_part) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << "want " << GetParam().field << " ~ " << GetParam().message_part << "\ngot:\n" << all;
}

nlohmann::json& Rule0(nlohmann::json& o) { return o["spec"]["rules"][0]; }

INSTANTIATE_TEST_SUITE_P(
    Validation, InvalidPolicyTest,
    ::testing::Values(
        InvalidCase{"wrong_api_version", [](auto& o) { o["apiVersion"] = "v1"; }, "apiVersion", "kubeletpolicy.io/v1alpha1"},
        InvalidCase{"wrong_kind", [](auto& o) { o["kind"] = "Pod"; }, "kind", "KubeletPolicy"},
        InvalidCase{"missing_name", [](auto& o) { o["metadata"].erase("name"); }, "metadata.name", "required"},
        InvalidCase{"namespaced", [](auto& o) { o["metadata"]["namespace"] = "x"; }, "metadata.namespace", "cluster-scoped"},
        InvalidCase{"unknown_top_field", [](auto& o) { o["spec"]["enforcment"] = "Audit"; }, "spec.enforcment", "unknown field"},
        InvalidCase{"no_rules", [](auto& o) { o["spec"]["rules"] = nlohmann::json::array(); }, "spec.rules", "1 to 100"},
        InvalidCase{"too_many_rules", [](auto& o) {
                      auto r = Rule0(o);
                      o["spec"]["rules"] = nlohmann::json::array();
                      for (int i = 0; i < 101; ++i) { r["id"] = "r" + std::to_string(i); o["spec"]["rules"].push_back(r); }
                    }, "spec.rules", "1 to 100"},
        InvalidCase{"duplicate_ids", [](auto& o) { o["spec"]["rules"].push_back(Rule0(o)); }, "spec.rules[1].id", "duplicate rule id"},
        InvalidCase{"id_not_dns_label", [](auto& o) { Rule0(o)["id"] = "Bad_ID"; }, "spec.rules[0].id", "DNS-1123"},
        InvalidCase{"both_config_and_file", [](auto& o) { Rule0(o)["file"] = {{"target", "KubeletConfigFile"}, {"maxMode", "0600"}}; Rule0(o).erase("remediation"); }, "spec.rules[0]", "exactly one"},
        InvalidCase{"neither_config_nor_file", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); }, "spec.rules[0]", "exactly one"},
        InvalidCase{"unknown_operator", [](auto& o) { Rule0(o)["config"]["operator"] = "Equal"; }, "spec.rules[0].config.operator", "unknown operator"},
        InvalidCase{"bad_path", [](auto& o) { Rule0(o)["config"]["path"] = "a..b"; }, "spec.rules[0].config.path", "invalid field path"},
        InvalidCase{"ordering_on_bool", [](auto& o) { Rule0(o)["config"] = {{"path", "rotateCertificates"}, {"operator", "GreaterThan"}, {"value", true}}; Rule0(o).erase("remediation"); }, "spec.rules[0].config.operator", "cannot be used"},
        InvalidCase{"non_duration_value", [](auto& o) { Rule0(o)["config"]["value"] = "5 minutes"; }, "spec.rules[0].config.value", "not a duration"},
        InvalidCase{"non_bool_value", [](auto& o) { Rule0(o)["config"] = {{"path", "rotateCertificates"}, {"operator", "Equals"}, {"value", "yes please"}}; Rule0(o).erase("remediation"); }, "spec.rules[0].config.value", "boolean"},
        InvalidCase{"non_int_value", [](auto& o) { Rule0(o)["config"] = {{"path", "readOnlyPort"}, {"operator", "Equals"}, {"value", "zero"}}; Rule0(o).erase("remediation"); }, "spec.rules[0].config.value", "integer"},
        InvalidCase{"missing_value", [](auto& o) { Rule0(o)["config"].erase("value"); }, "spec.rules[0].config.value", "required for operator"},
        InvalidCase{"value_with_exists", [](auto& o) { Rule0(o)["config"]["operator"] = "Exists"; Rule0(o).erase("remediation"); }, "spec.rules[0].config.value", "must not be set"},
        InvalidCase{"in_needs_list", [](auto& o) { Rule0(o)["config"]["operator"] = "In"; }, "spec.rules[0].config.value", "non-empty list"},
        InvalidCase{"list_for_equals", [](auto& o) { Rule0(o)["config"]["value"] = {"0s"}; }, "spec.rules[0].config.value", "only allowed for In"},
        InvalidCase{"remediation_fails_rule", [](auto& o) { Rule0(o)["remediation"]["value"] = "0h0m0s"; }, "spec.rules[0].remediation.value", "does not satisfy"},
        InvalidCase{"remediation_wrong_type", [](auto& o) { Rule0(o)["remediation"]["value"] = true; }, "spec.rules[0].remediation.value", "duration"},
        InvalidCase{"remediation_value_on_file_rule", [](auto& o) { Rule0(o).erase("config"); Rule0(o)["file"] = {{"target", "KubeletConfigFile"}, {"maxMode", "0600"}}; }, "spec.rules[0].remediation.value", "chmod"},
        InvalidCase{"file_path_dotdot", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "Path"}, {"path", "/etc/kubernetes/../shadow"}, {"maxMode", "0600"}}; }, "spec.rules[0].file.path", "\"..\""},
        InvalidCase{"file_path_root", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "Path"}, {"path", "/root/.ssh/id_rsa"}, {"maxMode", "0600"}}; }, "spec.rules[0].file.path", "outside the directories"},
        InvalidCase{"file_path_relative", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "Path"}, {"path", "etc/kubernetes/x"}, {"maxMode", "0600"}}; }, "spec.rules[0].file.path", "absolute"},
        InvalidCase{"file_path_missing_for_path_target", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "Path"}, {"maxMode", "0600"}}; }, "spec.rules[0].file.path", "required when target is Path"},
        InvalidCase{"file_mode_number", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "KubeletConfigFile"}, {"maxMode", 384}}; }, "spec.rules[0].file.maxMode", "octal string"},
        InvalidCase{"file_mode_not_octal", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "KubeletConfigFile"}, {"maxMode", "0800"}}; }, "spec.rules[0].file.maxMode", "not an octal mode"},
        InvalidCase{"file_unknown_target", [](auto& o) { Rule0(o).erase("config"); Rule0(o).erase("remediation"); Rule0(o)["file"] = {{"target", "Kubeconfig"}, {"maxMode", "0600"}}; }, "spec.rules[0].file.target", "unknown target"},
        InvalidCase{"bad_check_interval", [](auto& o) { o["spec"]["checkInterval"] = "5"; }, "spec.checkInterval", "not a duration"},
        InvalidCase{"short_check_interval", [](auto& o) { o["spec"]["checkInterval"] = "5s"; }, "spec.checkInterval", "at least 10s"},
        InvalidCase{"bad_enforcement", [](auto& o) { o["spec"]["enforcement"] = "Fix"; }, "spec.enforcement", "Audit, DryRun or Enforce"},
        InvalidCase{"bad_severity", [](auto& o) { Rule0(o)["severity"] = "Urgent"; }, "spec.rules[0].severity", "unknown severity"},
        InvalidCase{"exception_without_reason", [](auto& o) { o["spec"]["exceptions"] = {{{"rules", {"stream"}}}}; }, "spec.exceptions[0].reason", "required"},
        InvalidCase{"exception_unknown_rule", [](auto& o) { o["spec"]["exceptions"] = {{{"rules", {"nope"}}, {"reason", "x"}}}; }, "spec.exceptions[0].rules[0]", "no rule with id"},
        InvalidCase{"exception_bad_expiry", [](auto& o) { o["spec"]["exceptions"] = {{{"rules", {"stream"}}, {"reason", "x"}, {"expires", "next year"}}}; }, "spec.exceptions[0].expires", "RFC 3339"},
        InvalidCase{"bad_selector", [](auto& o) { o["spec"]["nodeSelector"] = {{"matchExpressions", {{{"key", "a"}, {"operator", "Equals"}}}}}; }, "spec.nodeSelector.matchExpressions[0].operator", "not a label selector operator"},
        InvalidCase{"bad_max_unavailable", [](auto& o) { o["spec"]["remediation"] = {{"maxUnavailable", 0}}; }, "spec.remediation.maxUnavailable", "at least 1"},
        InvalidCase{"bad_max_unavailable_percent", [](auto& o) { o["spec"]["remediation"] = {{"maxUnavailable", "150%"}}; }, "spec.remediation.maxUnavailable", "percentage"},
        InvalidCase{"bad_failure_threshold", [](auto& o) { o["spec"]["remediation"] = {{"failureThreshold", 0}}; }, "spec.remediation.failureThreshold", "between 1"},
        InvalidCase{"long_timeout", [](auto& o) { o["spec"]["remediation"] = {{"timeout", "25h"}}; }, "spec.remediation.timeout", "at most 24h"},
        InvalidCase{"config_file_outside", [](auto& o) { o["spec"]["remediation"] = {{"kubeletConfigFile", "/root/k.yaml"}}; }, "spec.remediation.kubeletConfigFile", "under /etc/kubernetes/"},
        InvalidCase{"long_name", [](auto& o) { o["metadata"]["name"] = std::string(64, 'a'); }, "metadata.name", "at most 63"},
        InvalidCase{"too_many_exceptions", [](auto& o) { for (int i = 0; i < 33; ++i) o["spec"]["exceptions"].push_back({{"rules", {"stream"}}, {"reason", "x"}}); }, "spec.exceptions", "at most 32"},
        InvalidCase{"bad_timeout", [](auto& o) { o["spec"]["remediation"] = {{"timeout", "ten minutes"}}; }, "spec.remediation.timeout", "not a duration"},
        InvalidCase{"bad_config_default", [](auto& o) { Rule0(o)["config"]["default"] = 5; }, "spec.rules[0].config.default", "duration"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return std::string(info.param.name); });

TEST(ModelTest, ReportsAllProblemsNotJustTheFirst) {
  nlohmann::json o = Base();
  o["spec"]["enforcement"] = "Fix";
  Rule0(o)["id"] = "BAD";
  Rule0(o)["config"]["operator"] = "Nope";
  o["spec"]["checkInterval"] = "1s";
  PolicyParseResult r = ParsePolicy(o);
  EXPECT_GE(r.errors.size(), 4u);
}

TEST(ModelTest, ErrorsNameFileAndLine) {
  std::string yaml = R"(apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata:
  name: p
spec:
  rules:
    - id: ok
      config: {path: rotateCertificates, operator: Equals, value: true}
    - id: bad
      config:
        path: streamingConnectionIdleTimeout
        operator: NotEquals
        value: five minutes
)";
  auto r = ParsePolicies(yaml, "policy.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("policy.yaml:13: spec.rules[1].config.value:"), std::string::npos)
      << r.status().message();
}

TEST(ModelTest, YamlSyntaxErrorNamesFileAndLine) {
  auto r = ParsePolicies("apiVersion: x\nkind: [\n", "broken.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("broken.yaml: YAML syntax error at line"), std::string::npos)
      << r.status().message();
}

TEST(ModelTest, UnknownKubeletFieldIsAWarningNotAnError) {
  nlohmann::json o = Base();
  Rule0(o)["config"] = {{"path", "someFutureField"}, {"operator", "Equals"}, {"value", true}};
  Rule0(o).erase("remediation");
  PolicyParseResult r = ParsePolicy(o);
  ASSERT_TRUE(r.policy.has_value());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].field, "spec.rules[0].config.path");
}

TEST(ModelTest, PercentMaxUnavailableResolves) {
  nlohmann::json o = Base();
  o["spec"]["remediation"] = {{"maxUnavailable", "10%"}};
  auto r = ParsePolicy(o);
  ASSERT_TRUE(r.policy.has_value());
  EXPECT_EQ(r.policy->remediation.max_unavailable.Resolve(50), 5);
  EXPECT_EQ(r.policy->remediation.max_unavailable.Resolve(5), 1);
}

TEST(ModelTest, RemediationValueForInAndOrdering) {
  nlohmann::json o = Base();
  Rule0(o)["config"] = {{"path", "eventRecordQPS"}, {"operator", "GreaterThanOrEqual"}, {"value", 0}};
  Rule0(o)["remediation"] = {{"value", 5}};
  EXPECT_TRUE(ParsePolicy(o).policy.has_value());
  Rule0(o)["remediation"] = {{"value", -1}};
  EXPECT_FALSE(ParsePolicy(o).policy.has_value());
  Rule0(o)["config"] = {{"path", "authorization.mode"}, {"operator", "In"}, {"value", {"Webhook"}}};
  Rule0(o)["remediation"] = {{"value", "Webhook"}};
  EXPECT_TRUE(ParsePolicy(o).policy.has_value());
  Rule0(o)["remediation"] = {{"value", "AlwaysAllow"}};
  EXPECT_FALSE(ParsePolicy(o).policy.has_value());
}

TEST(ModelTest, GarbageInputIsAnErrorNotACrash) {
  for (const char* text : {"", "[]", "42", "null", "{\"kind\": []}", "kind: List\nitems: 5\n",
                           "\t\t: : :", "{{{{"}) {
    auto r = ParsePolicies(text, "g.yaml");
    EXPECT_FALSE(r.ok()) << text;
  }
  std::string big(10 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = '\n';
  auto r = ParsePolicies(big, "big.yaml");
  EXPECT_FALSE(r.ok());
}

// ---- limits ----

nlohmann::json NestedObjects(size_t depth) {
  nlohmann::json v = "1Gi";
  for (size_t i = 0; i < depth; ++i) {
    nlohmann::json outer = nlohmann::json::object();
    outer["a"] = std::move(v);  // moved, not copied: building stays linear
    v = std::move(outer);
  }
  return v;
}

TEST(ModelLimitsTest, FreeFormValuesNestAtMostSixteenLevels) {
  for (const char* where : {"value", "default"}) {
    nlohmann::json p = Base();
    Rule0(p)["config"] = {
        {"path", "evictionHard"}, {"operator", "Equals"}, {"value", NestedObjects(1)}};
    Rule0(p).erase("remediation");
    Rule0(p)["config"][where] = NestedObjects(16);
    EXPECT_TRUE(ParsePolicy(p).errors.empty()) << where;
    Rule0(p)["config"][where] = NestedObjects(17);
    auto r = ParsePolicy(p);
    ASSERT_EQ(r.errors.size(), 1u) << where;
    EXPECT_EQ(r.errors[0].field, std::string("spec.rules[0].config.") + where);
    EXPECT_NE(r.errors[0].message.find("nests deeper than 16 levels"), std::string::npos);
    // Far deeper values are refused the same way (and never copied or dumped).
    Rule0(p)["config"][where] = NestedObjects(100'000);
    EXPECT_FALSE(ParsePolicy(p).errors.empty());
  }
  nlohmann::json p = Base();
  Rule0(p)["remediation"]["value"] = NestedObjects(17);
  auto r = ParsePolicy(p);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].field, "spec.rules[0].remediation.value");
}

TEST(ModelLimitsTest, ManyProblemsMakeABoundedAnswer) {
  nlohmann::json p = Base();
  for (int i = 0; i < 20'000; ++i) p["spec"]["x" + std::string(200, 'k') + std::to_string(i)] = i;
  auto r = ParsePolicy(p);
  ASSERT_FALSE(r.policy);
  EXPECT_LE(r.errors.size(), 101u);
  size_t bytes = 0;
  for (const auto& e : r.errors) bytes += e.field.size() + e.message.size();
  EXPECT_LT(bytes, 64u * 1024) << "errors should name a few unknown fields, then count the rest";
  bool counted = false;
  for (const auto& e : r.errors)
    counted |= e.message.find("19984 more unknown fields") != std::string::npos;
  EXPECT_TRUE(counted);

  nlohmann::json q = Base();
  q["spec"]["rules"] = nlohmann::json::array();
  for (int i = 0; i < 200; ++i) q["spec"]["rules"].push_back({{"id", "BAD_" + std::to_string(i)}});
  auto rq = ParsePolicy(q);
  EXPECT_EQ(rq.errors.size(), 101u);
  EXPECT_NE(rq.errors.back().message.find("more problems not shown"), std::string::npos);
}

TEST(ModelLimitsTest, PolicyTextOverTheLimitIsRefusedBeforeParsing) {
  std::string big = "# " + std::string(kPolicyTextLimits.max_bytes, 'x') + "\n" + Base().dump();
  auto r = ParsePolicies(big, "big.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("over the 16 MiB limit"), std::string::npos)
      << r.status().message().substr(0, 300);
  std::string deep = "a: " + std::string(65, '[') + std::string(65, ']') + "\n";
  r = ParsePolicies(deep, "deep.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("deep.yaml: the input nests deeper than 64 levels (at line 1)"),
      std::string::npos)
      << r.status().message();
  r = ParsePolicies(std::string(200'000, '['), "deeper.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nests deeper than 64 levels"), std::string::npos);
}

TEST(ModelLimitsTest, LabelSelectorBounds) {
  nlohmann::json p = Base();
  p["spec"]["nodeSelector"]["matchExpressions"] = nlohmann::json::array();
  for (int i = 0; i < 100'000; ++i) {
    p["spec"]["nodeSelector"]["matchExpressions"].push_back({{"key", "k"}, {"operator", "Bogus"}});
  }
  auto r = ParsePolicy(p);
  ASSERT_EQ(r.errors.size(), 1u) << "only the count is reported past the bound";
  EXPECT_EQ(r.errors[0].message, "must have at most 32 requirements, got 100000");
  p = Base();
  p["spec"]["nodeSelector"]["matchLabels"] = {
      {std::string(100'000, 'k'), std::string(100'000, 'v')}};
  r = ParsePolicy(p);
  ASSERT_EQ(r.errors.size(), 2u);
  for (const auto& e : r.errors)
    EXPECT_LT(e.field.size() + e.message.size(), 400u) << e.field << ": " << e.message;
}

}  // namespace
}  // namespace kpc::policy
