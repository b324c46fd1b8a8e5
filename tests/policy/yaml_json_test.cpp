#include "policy/yaml_json.h"

#include <gtest/gtest.h>

namespace kpc::policy {
namespace {

TEST(YamlJsonTest, ResolvesScalarsLikeKubernetes) {
  auto doc = ParseYamlDocument(R"(
a: true
b: "true"
c: 5
d: "5"
e: 1.5
f: null
g: ~
h: 0s
i: 0600
j: "0600"
k: yes
l: 0x1F
m: -3
)");
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  const auto& v = doc->value;
  EXPECT_EQ(v["a"], true);
  EXPECT_EQ(v["b"], "true");
  EXPECT_EQ(v["c"], 5);
  EXPECT_EQ(v["d"], "5");
  EXPECT_EQ(v["e"], 1.5);
  EXPECT_TRUE(v["f"].is_null());
  EXPECT_TRUE(v["g"].is_null());
  EXPECT_EQ(v["h"], "0s");
  EXPECT_EQ(v["i"], 0600);  // YAML 1.1 octal, as kubectl reads it
  EXPECT_EQ(v["j"], "0600");
  EXPECT_EQ(v["k"], true);
  EXPECT_EQ(v["l"], 31);
  EXPECT_EQ(v["m"], -3);
}

TEST(YamlJsonTest, RecordsLinesForPointers) {
  auto doc = ParseYamlDocument("spec:\n  rules:\n    - id: a\n      config:\n        value: 1\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(LineOf(*doc, "/spec/rules/0/config/value"), 5);
  EXPECT_EQ(LineOf(*doc, "/spec/rules/0/id"), 3);
  // unknown child falls back to nearest ancestor
  EXPECT_EQ(LineOf(*doc, "/spec/rules/0/config/missing"), 5);  // the config mapping starts there
}

TEST(YamlJsonTest, MultiDocumentStreamSkipsEmptyDocuments) {
  auto docs = ParseYamlStream("---\na: 1\n---\n---\nb: 2\n");
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[1].value["b"], 2);
  EXPECT_EQ((*docs)[1].first_line, 5);
}

TEST(YamlJsonTest, JsonIsYaml) {
  auto doc = ParseYamlDocument(R"({"kubeletconfig": {"readOnlyPort": 0, "x": [1, "a"]}})");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->value["kubeletconfig"]["x"][1], "a");
}

TEST(YamlJsonTest, SyntaxErrorNamesTheLine) {
  auto doc = ParseYamlDocument("a: 1\nb: [1, 2\nc: 3\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("line"), std::string::npos) << doc.status().message();
}

TEST(YamlJsonTest, DuplicateKeysAreErrors) {
  auto doc = ParseYamlDocument("a: 1\nb: 2\na: 3\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("line 3"), std::string::npos) << doc.status().message();
  EXPECT_NE(doc.status().message().find("duplicate key"), std::string::npos);
}

TEST(YamlJsonTest, AliasBombIsRefused) {
  std::string y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) y += std::string(i ? ", " : "") + "*" + prev;
    y += "]\n";
    prev = c;
  }
  auto doc = ParseYamlDocument(y);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("too large"), std::string::npos) << doc.status().message();
}

TEST(YamlJsonTest, DeepNestingIsRefusedNotCrashed) {
  std::string y(5000, '[');
  auto doc = ParseYamlDocument(y);
  EXPECT_FALSE(doc.ok());
}

TEST(YamlJsonTest, GarbageNeverCrashes) {
  std::string garbage;
  uint32_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1103515245 + 12345;
    garbage += static_cast<char>((x >> 16) & 0xff);
  }
  auto doc = ParseYamlStream(garbage);  // it must return, and an error must say what is wrong
  if (!doc.ok()) {
    EXPECT_NE(doc.status().message().find("YAML"), std::string::npos) << doc.status().message();
  }
}

// yaml-cpp 0.7 loops forever, allocating, on these (found by tests/fuzz/policy_fuzz.cpp).
TEST(YamlJsonTest, StrayFlowEntryIsAnErrorNotAnEndlessLoop) {
  for (const char* text :
       {",", ", a", "--- ,", "'a' ,", "&a ,", "!t ,", "a: 1\n...\n,\n", "%YAML 1.2\n--- ,"}) {
    auto docs = ParseYamlStream(text);
    ASSERT_FALSE(docs.ok()) << text;
    EXPECT_NE(docs.status().message().find("YAML syntax error at line"), std::string::npos)
        << docs.status().message();
  }
  // Commas where YAML allows them still parse.
  auto docs = ParseYamlStream("a: [1, 2]\nb: x, y\n---\n{c: 3,}\n---\n");
  ASSERT_TRUE(docs.ok()) << docs.status().message();
  EXPECT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].value["b"], "x, y");
}

// JSON strings must be UTF-8 (dump() throws otherwise); Kubernetes' YAML reader refuses the
// rest too (found by tests/fuzz/configz_eval_fuzz.cpp: a config file's apiVersion).
TEST(YamlJsonTest, TextThatIsNotUtf8IsRefused) {
  for (const char* text : {"a: \xA5", "a: x\xC0\xAFy", "a: \xED\xA0\x80", "a: \xF4\x90\x80\x80",
                           "a: \xE2\x82", "a: [1, \"\xFF\"]", "\xFE: 1", "a:\n  b: 1\n  \xC3: 2\n",
                           "a: !!str \xF8\x88\x80\x80\x80"}) {
    auto docs = ParseYamlStream(text);
    ASSERT_FALSE(docs.ok()) << text;
    EXPECT_NE(docs.status().message().find("not valid UTF-8"), std::string::npos)
        << docs.status().message();
  }
  auto doc = ParseYamlDocument(
      "a: \"h\u00e9 \u20ac \U0001D11E\"\nb: h\xC3\xA9\n\xE2\x82\xAC: \xF0\x9D\x84\x9E\n");
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  EXPECT_EQ(doc->value["a"], "h\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E");
  EXPECT_EQ(doc->value.dump(),
            "{\"a\":\"h\xC3\xA9 \xE2\x82\xAC "
            "\xF0\x9D\x84\x9E\",\"b\":\"h\xC3\xA9\",\"\xE2\x82\xAC\":\"\xF0\x9D\x84\x9E\"}");
}

TEST(YamlJsonTest, ExpectsExactlyOneDocument) {
  EXPECT_FALSE(ParseYamlDocument("a: 1\n---\nb: 2\n").ok());
  EXPECT_FALSE(ParseYamlDocument("").ok());
}

}  // namespace
}  // namespace kpc::policy
