#include "policy/field_path.h"

#include <gtest/gtest.h>

namespace kpc::policy {
namespace {

TEST(FieldPathTest, ParsesDottedSegments) {
  auto p = FieldPath::Parse("authentication.anonymous.enabled");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->segments(), (std::vector<std::string>{"authentication", "anonymous", "enabled"}));
  EXPECT_EQ(p->ToString(), "authentication.anonymous.enabled");
}

TEST(FieldPathTest, ParsesBracketedSegmentWithDots) {
  auto p = FieldPath::Parse(R"(evictionHard["memory.available"])");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->segments(), (std::vector<std::string>{"evictionHard", "memory.available"}));
  EXPECT_EQ(p->ToString(), R"(evictionHard["memory.available"])");
}

TEST(FieldPathTest, BracketThenDotContinues) {
  auto p = FieldPath::Parse(R"(a["b.c"].d["e"])");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->segments(), (std::vector<std::string>{"a", "b.c", "d", "e"}));
  EXPECT_EQ(p->ToString(), R"(a["b.c"].d.e)");
}

TEST(FieldPathTest, EscapedQuoteInsideBrackets) {
  auto p = FieldPath::Parse(R"(m["x\"y"])");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->segments()[1], "x\"y");
  auto again = FieldPath::Parse(p->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *p);
}

TEST(FieldPathTest, RejectsMalformedPaths) {
  for (const char* bad : {"", ".a", "a.", "a..b", "a[b]", "a[\"b\"", "a[\"b\"]c", "a b", "a[\"\"]",
                          "a]"}) {
    auto p = FieldPath::Parse(bad);
    EXPECT_FALSE(p.ok()) << "accepted: " << bad;
    if (!p.ok()) {
      EXPECT_NE(p.status().message().find("field path"), std::string::npos);
    }
  }
}

TEST(FieldPathTest, FindSetErase) {
  nlohmann::json root = {{"authentication", {{"anonymous", {{"enabled", false}}}}}};
  auto p = *FieldPath::Parse("authentication.anonymous.enabled");
  ASSERT_NE(p.Find(root), nullptr);
  EXPECT_EQ(*p.Find(root), false);
  EXPECT_EQ(FieldPath::Parse("authentication.x509.clientCAFile")->Find(root), nullptr);
  // traversing a scalar finds nothing
  EXPECT_EQ(FieldPath::Parse("authentication.anonymous.enabled.deeper")->Find(root), nullptr);

  auto q = *FieldPath::Parse(R"(evictionHard["memory.available"])");
  q.Set(root, "100Mi");
  EXPECT_EQ(root["evictionHard"]["memory.available"], "100Mi");
  EXPECT_TRUE(q.Erase(root));
  EXPECT_FALSE(q.Erase(root));
  EXPECT_TRUE(root["evictionHard"].empty());
}

}  // namespace
}  // namespace kpc::policy
