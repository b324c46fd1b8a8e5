#include "policy/label_selector.h"

#include <gtest/gtest.h>

#include "policy/model.h"

namespace kpc::policy {
namespace {

LabelSelector Parse(const char* json, std::vector<FieldIssue>* issues = nullptr) {
  std::vector<FieldIssue> local;
  auto sel = ParseLabelSelector(nlohmann::json::parse(json), "spec.nodeSelector", issues ? *issues : local);
  if (!issues) {
    EXPECT_TRUE(local.empty()) << (local.empty() ? "" : local.front().field + ": " + local.front().message);
  }
  return sel;
}

TEST(LabelSelectorTest, EmptyMatchesEverything) {
  auto sel = Parse("{}");
  EXPECT_TRUE(sel.Empty());
  EXPECT_TRUE(sel.Matches({}));
  EXPECT_TRUE(sel.Matches({{"a", "b"}}));
}

TEST(LabelSelectorTest, MatchLabelsAndExpressions) {
  auto sel = Parse(R"({"matchLabels": {"pool": "a"},
    "matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                         {"key": "zone", "operator": "In", "values": ["x", "y"]},
                         {"key": "tier", "operator": "NotIn", "values": ["gpu"]},
                         {"key": "os", "operator": "Exists"}]})");
  std::map<std::string, std::string> ok = {{"pool", "a"}, {"zone", "x"}, {"os", "linux"}};
  EXPECT_TRUE(sel.Matches(ok));
  auto cp = ok;
  cp["node-role.kubernetes.io/control-plane"] = "";
  EXPECT_FALSE(sel.Matches(cp));
  auto wrong_zone = ok;
  wrong_zone["zone"] = "z";
  EXPECT_FALSE(sel.Matches(wrong_zone));
  auto gpu = ok;
  gpu["tier"] = "gpu";
  EXPECT_FALSE(sel.Matches(gpu));
  auto no_os = ok;
  no_os.erase("os");
  EXPECT_FALSE(sel.Matches(no_os));
  auto wrong_pool = ok;
  wrong_pool["pool"] = "b";
  EXPECT_FALSE(sel.Matches(wrong_pool));
}

TEST(LabelSelectorTest, ReportsEveryProblem) {
  std::vector<FieldIssue> issues;
  Parse(R"({"matchLabels": {"bad key!": "v", "ok": 5},
            "matchExpressions": [{"key": "a", "operator": "Has"},
                                 {"key": "b", "operator": "In"},
                                 {"key": "c", "operator": "Exists", "values": ["x"]}],
            "extra": 1})",
        &issues);
  std::set<std::string> fields;
  for (const auto& i : issues) fields.insert(i.field);
  EXPECT_TRUE(fields.count("spec.nodeSelector.extra"));
  EXPECT_TRUE(fields.count("spec.nodeSelector.matchLabels[\"bad key!\"]"));
  EXPECT_TRUE(fields.count("spec.nodeSelector.matchLabels[\"ok\"]"));
  EXPECT_TRUE(fields.count("spec.nodeSelector.matchExpressions[0].operator"));
  EXPECT_TRUE(fields.count("spec.nodeSelector.matchExpressions[1].values"));
  EXPECT_TRUE(fields.count("spec.nodeSelector.matchExpressions[2].values"));
}

TEST(LabelSelectorTest, KeyAndValueSyntax) {
  EXPECT_EQ(LabelKeyProblem("node-role.kubernetes.io/worker"), "");
  EXPECT_EQ(LabelKeyProblem("pool"), "");
  EXPECT_NE(LabelKeyProblem(""), "");
  EXPECT_NE(LabelKeyProblem("Bad_Prefix/x"), "");
  EXPECT_NE(LabelKeyProblem("-x"), "");
  EXPECT_EQ(LabelValueProblem(""), "");
  EXPECT_EQ(LabelValueProblem("a.b-c_d"), "");
  EXPECT_NE(LabelValueProblem("x y"), "");
  EXPECT_NE(LabelValueProblem(std::string(64, 'a')), "");
}

}  // namespace
}  // namespace kpc::policy
