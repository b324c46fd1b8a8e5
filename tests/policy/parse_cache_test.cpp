#include "policy/parse_cache.h"

#include <gtest/gtest.h>

namespace kpc::policy {
namespace {

using nlohmann::json;

json Policy(const std::string& rv, const std::string& op = "Equals") {
  json p = json::parse(R"({"apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy",
    "metadata": {"name": "p"},
    "spec": {"rules": [{"id": "a", "config": {"path": "readOnlyPort", "operator": "Equals", "value": 0}}]}})");
  if (!rv.empty()) p["metadata"]["resourceVersion"] = rv;
  p["spec"]["rules"][0]["config"]["operator"] = op;
  return p;
}

TEST(PolicyParseCacheTest, ParsesOncePerResourceVersion) {
  PolicyParseCache cache;
  auto a = cache.Parse(Policy("1"));
  ASSERT_TRUE(a->policy);
  EXPECT_EQ(cache.Parse(Policy("1")), a);  // the same parse, not a new one
  auto b = cache.Parse(Policy("2", "Frobnicates"));
  EXPECT_NE(b, a);
  EXPECT_FALSE(b->policy);  // the new version is parsed (and is invalid)
  EXPECT_FALSE(b->errors.empty());
  EXPECT_EQ(cache.Parse(Policy("2", "Frobnicates")), b);
}

TEST(PolicyParseCacheTest, ObjectsWithoutResourceVersionAndForgottenNamesAreParsedAgain) {
  PolicyParseCache cache;
  auto a = cache.Parse(Policy(""));
  EXPECT_NE(cache.Parse(Policy("")), a);
  auto b = cache.Parse(Policy("7"));
  cache.Forget("p");
  EXPECT_NE(cache.Parse(Policy("7")), b);
  EXPECT_TRUE(cache.Parse(json("garbage"))->errors.size() > 0);
}

}  // namespace
}  // namespace kpc::policy
