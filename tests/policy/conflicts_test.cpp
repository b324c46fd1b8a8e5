#include "policy/conflicts.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kpc::policy {
namespace {

using nlohmann::json;

// A policy named `name` whose one rule sets streamingConnectionIdleTimeout to
// `remediation_value`, on the nodes `selector` selects (null: every node).
KubeletPolicy MakePolicy(const std::string& name, const json& remediation_value,
                         const json& selector) {
  json p = json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "p"},
    "spec": {"rules": [
      {"id": "stream", "config": {"path": "streamingConnectionIdleTimeout", "operator": "NotEquals", "value": "0s"},
       "remediation": {"value": "4h0m0s"}}
    ]}})");
  p["metadata"]["name"] = name;
  p["spec"]["rules"][0]["remediation"]["value"] = remediation_value;
  if (!selector.is_null()) p["spec"]["nodeSelector"] = selector;
  auto r = ParsePolicy(p);
  EXPECT_TRUE(r.policy.has_value()) << (r.errors.empty() ? "" : r.errors[0].message);
  return r.policy.value_or(KubeletPolicy{});
}

TEST(ConflictTest, SamePathDifferentValueOverlappingSelectors) {
  auto a = MakePolicy("a", "4h0m0s", json{{"matchLabels", {{"pool", "web"}}}});
  auto b = MakePolicy("b", "2h", json{{"matchLabels", {{"zone", "eu-1"}}}});
  auto c = FindRemediationConflicts(a, {b});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(c[0].find("\"b\""), std::string::npos) << c[0];
  EXPECT_NE(c[0].find("streamingConnectionIdleTimeout"), std::string::npos) << c[0];
  EXPECT_NE(c[0].find("spec.rules[0].remediation.value"), std::string::npos) << c[0];
  // Absent selector = every node: overlaps anything.
  auto all = MakePolicy("all", "1h", json());
  EXPECT_EQ(FindRemediationConflicts(all, {a, b}).size(), 2u);
}

TEST(ConflictTest, DisjointSelectorsDoNotConflict) {
  auto a = MakePolicy("a", "4h", json{{"matchLabels", {{"pool", "web"}}}});
  auto b = MakePolicy("b", "2h", json{{"matchLabels", {{"pool", "db"}}}});
  EXPECT_TRUE(FindRemediationConflicts(a, {b}).empty());
  auto not_web = MakePolicy(
      "c", "2h",
      json{{"matchExpressions", {{{"key", "pool"}, {"operator", "NotIn"}, {"values", {"web"}}}}}});
  EXPECT_TRUE(FindRemediationConflicts(a, {not_web}).empty());
  auto no_pool = MakePolicy(
      "d", "2h", json{{"matchExpressions", {{{"key", "pool"}, {"operator", "DoesNotExist"}}}}});
  EXPECT_TRUE(FindRemediationConflicts(a, {no_pool}).empty());
  auto in_db =
      MakePolicy("e", "2h",
                 json{{"matchExpressions",
                       {{{"key", "pool"}, {"operator", "In"}, {"values", {"db", "batch"}}}}}});
  EXPECT_TRUE(FindRemediationConflicts(a, {in_db}).empty());
  auto has_pool = MakePolicy(
      "f", "2h", json{{"matchExpressions", {{{"key", "pool"}, {"operator", "Exists"}}}}});
  EXPECT_TRUE(FindRemediationConflicts(no_pool, {has_pool}).empty());
  // NotIn another value still overlaps.
  auto not_db = MakePolicy(
      "g", "2h",
      json{{"matchExpressions", {{{"key", "pool"}, {"operator", "NotIn"}, {"values", {"db"}}}}}});
  EXPECT_EQ(FindRemediationConflicts(a, {not_db}).size(), 1u);
}

TEST(ConflictTest, SameValueSelfAndDisabledDoNotConflict) {
  auto a = MakePolicy("a", "4h0m0s", json());
  auto same_typed = MakePolicy("b", "4h", json());  // equal as durations
  EXPECT_TRUE(FindRemediationConflicts(a, {same_typed}).empty());
  auto old_self = MakePolicy("a", "1h", json());
  EXPECT_TRUE(FindRemediationConflicts(a, {old_self}).empty());
  auto disabled = MakePolicy("c", "1h", json());
  disabled.rules[0].remediation.enabled = false;
  EXPECT_TRUE(FindRemediationConflicts(a, {disabled}).empty());
}

}  // namespace
}  // namespace kpc::policy
