#include "policy/text_match.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "policy/model.h"
#include "policy/yaml_json.h"

namespace kpc::policy {
namespace {

// Every string over `alphabet` up to `max_len` characters.
std::vector<std::string> AllStrings(const std::string& alphabet, size_t max_len) {
  std::vector<std::string> out = {""};
  for (size_t begin = 0, len = 1; len <= max_len; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : alphabet) out.push_back(out[i] + c);
    }
    begin = end;
  }
  return out;
}

// The matchers agree with the regular expressions they replace on every short string over an
// alphabet of the characters that matter (std::regex is fine on such test inputs).
TEST(TextMatchTest, AgreesWithTheRegexItReplaces) {
  struct Case {
    const char* pattern;
    bool (*match)(std::string_view);
    std::string alphabet;
    size_t max_len;
  };
  const std::vector<Case> cases = {
      {R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)", MatchesDnsLabelShape, "a0-.Z", 6},
      {R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)",
       MatchesDnsSubdomainShape, "a0-.Z", 6},
      {R"(^0?[0-7]{3,4}$)", MatchesOctalMode, "078a", 6},
      {R"(^([a-z_][a-z0-9_-]*\$?|[0-9]+)$)", MatchesUserOrGroup, "a0_-$A", 5},
      {R"(^[-+]?[0-9][0-9_]*$)", MatchesYamlDecimal, "-+09_a", 5},
      {R"(^[-+]?0x[0-9a-fA-F_]+$)", MatchesYamlHex, "-0xfG_", 5},
      {R"(^[-+]?0o?[0-7_]+$)", MatchesYamlOctal, "-0o78_", 5},
      {R"(^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$)", MatchesYamlFloat,
       "-1._eE+", 6},
  };
  for (const auto& c : cases) {
    const std::regex re(c.pattern);
    size_t matched = 0;
    for (const std::string& s : AllStrings(c.alphabet, c.max_len)) {
      const bool want = std::regex_match(s, re);
      ASSERT_EQ(c.match(s), want) << c.pattern << " on \"" << s << "\"";
      matched += want;
    }
    EXPECT_GT(matched, 0u) << c.pattern;  // the alphabet exercises both outcomes
  }
  for (const std::string& s : AllStrings("0%a", 5)) {
    std::smatch m;
    const bool want = std::regex_match(s, m, std::regex(R"(^([0-9]{1,3})%$)"));
    ASSERT_EQ(MatchPercent(s).has_value(), want) << s;
    if (want) {
      EXPECT_EQ(*MatchPercent(s), std::stoi(m[1]));
    }
  }
}

// Values that made std::regex recurse once per character until the stack ran out.
TEST(TextMatchTest, HugeValuesAreClearErrorsNotCrashes) {
  const std::string big(200000, 'a');
  nlohmann::json obj = nlohmann::json::parse(R"({
    "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "KubeletPolicy", "metadata": {"name": "p"},
    "spec": {"rules": [{"id": "f", "file": {"target": "KubeletKubeconfig", "maxMode": "0600"}}]}})");
  obj["spec"]["rules"][0]["file"]["owner"] = big;
  obj["spec"]["rules"][0]["file"]["group"] = std::string(200000, '7');
  auto r = ParsePolicy(obj);
  EXPECT_FALSE(r.policy.has_value());
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].field, "spec.rules[0].file.owner");
  EXPECT_NE(r.errors[0].message.find("is not a user/group name or numeric id"), std::string::npos);

  auto doc = ParseYamlDocument("value: " + std::string(200000, '1') +
                               "\nother: " + std::string(200000, '_') + "\n");
  ASSERT_TRUE(doc.ok()) << doc.status().message();
  EXPECT_TRUE(doc->value["value"].is_number());
  EXPECT_TRUE(doc->value["other"].is_string());
}

TEST(TextMatchTest, CrdPatternMatchers) {
  struct Case {
    bool (*match)(std::string_view);
    const char* text;
    bool want;
  } cases[] = {
      {MatchesRulePathShape, "a", true},
      {MatchesRulePathShape, "authentication.anonymous.enabled", true},
      {MatchesRulePathShape, "evictionHard[\"memory.available\"]", true},
      {MatchesRulePathShape, "a[\"b\\\"c\"].d", true},
      {MatchesRulePathShape, "a[\"x\"][\"y\"]", true},
      {MatchesRulePathShape, "", false},
      {MatchesRulePathShape, "[\"a\"]", false},
      {MatchesRulePathShape, "a.", false},
      {MatchesRulePathShape, "a..b", false},
      {MatchesRulePathShape, "a[\"\"]", false},
      {MatchesRulePathShape, "a[\"b\"", false},
      {MatchesRulePathShape, "a[\"b\\\nc\"]", false},
      {MatchesRulePathShape, "a[b]", false},
      {MatchesRulePathShape, "a/b", false},
      {MatchesFilePathShape, "/etc/kubernetes/kubelet.conf", true},
      {MatchesFilePathShape, "/var/lib/kubelet/x@y+z=w,v:u", true},
      {MatchesFilePathShape, "/", false},
      {MatchesFilePathShape, "etc/x", false},
      {MatchesFilePathShape, "/etc/a b", false},
      {MatchesFilePathShape, "/etc/$x", false},
      {MatchesDurationShape, "10s", true},
      {MatchesDurationShape, "1h30m", true},
      {MatchesDurationShape, "1.5h", true},
      {MatchesDurationShape, "100ms", true},
      {MatchesDurationShape, "3\xC2\xB5s", true},
      {MatchesDurationShape, "1m5s", true},
      {MatchesDurationShape, "", false},
      {MatchesDurationShape, "10", false},
      {MatchesDurationShape, "+10s", false},
      {MatchesDurationShape, ".5h", false},
      {MatchesDurationShape, "5.h", false},
      {MatchesDurationShape, "10d", false},
      {MatchesDurationShape, "1h 30m", false},
      {MatchesPercentShape, "1%", true},
      {MatchesPercentShape, "100%", true},
      {MatchesPercentShape, "0%", false},
      {MatchesPercentShape, "01%", false},
      {MatchesPercentShape, "101%", false},
      {MatchesPercentShape, "%", false},
      {MatchesQualifiedNameShape, "a", true},
      {MatchesQualifiedNameShape, "A-b_c.d", true},
      {MatchesQualifiedNameShape, "", false},
      {MatchesQualifiedNameShape, "-a", false},
      {MatchesQualifiedNameShape, "a.", false},
      {MatchesQualifiedNameShape, "a/b", false},
  };
  for (const auto& c : cases) EXPECT_EQ(c.match(c.text), c.want) << c.text;
  // Linear: a long text is answered, not recursed on.
  EXPECT_FALSE(MatchesRulePathShape(std::string(1'000'000, 'a') + "."));
  EXPECT_TRUE(MatchesFilePathShape("/" + std::string(1'000'000, 'a')));
  EXPECT_FALSE(MatchesDurationShape(std::string(1'000'000, '1')));
}

TEST(TextMatchTest, CharCountCountsCodePoints) {
  EXPECT_EQ(CharCount(""), 0u);
  EXPECT_EQ(CharCount("abc"), 3u);
  EXPECT_EQ(CharCount("\xC3\xA9t\xC3\xA9"), 3u);  // "été"
  EXPECT_EQ(CharCount("\xF0\x9F\x98\x80"), 1u);   // one emoji, four bytes
}

TEST(TextMatchTest, IsValidUtf8IsStrict) {
  for (const char* ok : {"", "abc", "\xC3\xA9t\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                         "\xED\x9F\xBF", "\xEE\x80\x80", "\xF4\x8F\xBF\xBF", "\x7F"}) {
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  }
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
  for (const char* bad : {"\x80", "\xBF", "\xC0\xAF", "\xC1\xBF", "\xC3", "\xC3\x28",
                          "\xE0\x9F\xBF",      // overlong
                          "\xED\xA0\x80",      // surrogate
                          "\xE2\x82",          // cut short
                          "\xF0\x8F\xBF\xBF",  // overlong
                          "\xF4\x90\x80\x80",  // past U+10FFFF
                          "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFF", "ab\xFE"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
}

}  // namespace
}  // namespace kpc::policy
