#include "policy/limits.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <random>
#include <string>
#include <vector>

#include "policy/yaml_json.h"

namespace kpc::policy {
namespace {

using nlohmann::json;

std::string Arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }
std::string Objects(size_t depth) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  return s + "1" + std::string(depth, '}');
}

TEST(CheckJsonShapeTest, DepthAtUnderAndOverTheLimit) {
  const ShapeLimits limits{1u << 20, 64};
  for (auto make : {Arrays, Objects}) {
    EXPECT_FALSE(CheckJsonShape(make(63), limits, "x"));
    EXPECT_FALSE(CheckJsonShape(make(64), limits, "x"));
    auto over = CheckJsonShape(make(65), limits, "/configz");
    ASSERT_TRUE(over);
    EXPECT_EQ(over->limit, InputLimit::kDepth);
    EXPECT_EQ(over->message.rfind("/configz nests deeper than 64 levels (at byte ", 0), 0u)
        << over->message;
  }
  EXPECT_EQ(CheckJsonShape(Arrays(65), limits, "/configz")->message,
            "/configz nests deeper than 64 levels (at byte 65)");
  // Hostile depths are refused at the first level too many, whatever comes after.
  for (size_t depth : {200'000u, 1'000'000u}) {
    auto r = CheckJsonShape(std::string(depth, '['), {2u << 20, 64}, "x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->limit, InputLimit::kDepth);
  }
}

TEST(CheckJsonShapeTest, SizeAtUnderAndOverTheLimit) {
  const ShapeLimits limits{4096, 64};
  EXPECT_FALSE(CheckJsonShape(std::string(4095, ' '), limits, "x"));
  EXPECT_FALSE(CheckJsonShape(std::string(4096, ' '), limits, "x"));
  auto over = CheckJsonShape(std::string(4097, ' '), limits, "the agent result");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->limit, InputLimit::kBytes);
  EXPECT_EQ(over->message, "the agent result is 4097 bytes, over the 4 KiB limit");
  // Size is checked before anything else is scanned.
  auto both = CheckJsonShape(std::string(5000, '['), limits, "x");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->limit, InputLimit::kBytes);
}

TEST(CheckJsonShapeTest, BracketsInStringsDoNotCount) {
  const ShapeLimits limits{1u << 20, 2};
  EXPECT_FALSE(CheckJsonShape(R"({"a": ["[[[[[{{{{{", "\"[[[["]})", limits, "x"));
  // An escaped quote does not end the string; an escaped backslash does not escape the quote.
  EXPECT_FALSE(CheckJsonShape(R"(["\\", "\"[[["])", limits, "x"));
  EXPECT_TRUE(CheckJsonShape(R"(["\\", [[1]]])", limits, "x"));
  // Closing brackets inside strings do not lower the depth either.
  EXPECT_TRUE(CheckJsonShape(R"([["]]]]"], [["]]]"], [[["]]"]]]])", limits, "x"));
}

TEST(CheckJsonShapeTest, TextThatIsNotJsonIsLeftToTheParser) {
  // The parser refuses these at the first bad byte, before anything past it nests.
  EXPECT_FALSE(CheckJsonShape("{x" + std::string(1000, '['), {1u << 20, 64}, "x"));
  EXPECT_FALSE(CheckJsonShape(std::string("[\x01") + std::string(1000, '['), {1u << 20, 64}, "x"));
  // What comes before the bad byte still counts.
  EXPECT_TRUE(CheckJsonShape(std::string(65, '[') + "x", {1u << 20, 64}, "x"));
}

// nlohmann's parser skips a leading UTF-8 byte order mark, so the scan must look past it too
// (found by tests/fuzz/policy_fuzz.cpp: the mark used to end the scan and let any depth in).
TEST(CheckJsonShapeTest, ByteOrderMarkDoesNotHideTheNesting) {
  const std::string bom = "\xEF\xBB\xBF";
  const ShapeLimits limits{4u << 20, 64};
  for (auto make : {Arrays, Objects}) {
    EXPECT_FALSE(CheckJsonShape(bom + make(64), limits, "x"));
    auto over = CheckJsonShape(bom + make(65), limits, "/configz");
    ASSERT_TRUE(over);
    EXPECT_EQ(over->limit, InputLimit::kDepth);
  }
  EXPECT_EQ(CheckJsonShape(bom + Arrays(65), limits, "/configz")->message,
            "/configz nests deeper than 64 levels (at byte 68)");
  ASSERT_TRUE(CheckJsonShape(bom + std::string(1'000'000, '['), limits, "x"));
  // What nlohmann reads as JSON after the mark.
  EXPECT_TRUE(json::accept(bom + Arrays(65)));
  // A mark anywhere else is not JSON: the parser refuses it where the scan stops.
  EXPECT_FALSE(json::accept(" " + bom + "[]"));
  EXPECT_FALSE(CheckJsonShape(" " + bom + Arrays(65), limits, "x"));
}

// ---- YAML ----

size_t Depth(const YAML::Node& root) {
  size_t max = 0;
  std::vector<std::pair<YAML::Node, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto [n, d] = stack.back();
    stack.pop_back();
    if (!n.IsSequence() && !n.IsMap()) continue;
    max = std::max(max, d + 1);
    for (auto it = n.begin(); it != n.end(); ++it) {
      stack.push_back({n.IsMap() ? it->second : *it, d + 1});
    }
  }
  return max;
}

std::optional<Refusal> Yaml(const std::string& text, size_t max_depth) {
  return CheckYamlShape(text, {1u << 20, max_depth}, "the input");
}

TEST(CheckYamlShapeTest, FlowDepthAtUnderAndOverTheLimit) {
  EXPECT_FALSE(Yaml(Arrays(64), 64));
  auto over = Yaml(Arrays(65), 64);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->limit, InputLimit::kDepth);
  EXPECT_EQ(over->message, "the input nests deeper than 64 levels (at line 1)");
  EXPECT_TRUE(Yaml(std::string(200'000, '['), 64));
  EXPECT_TRUE(Yaml(Objects(65), 64));
}

TEST(CheckYamlShapeTest, BlockDepthByIndentation) {
  auto nested = [](size_t depth) {
    std::string y;
    for (size_t i = 0; i < depth; ++i) y += std::string(i, ' ') + "k:\n";
    return y + std::string(depth, ' ') + "v: 1\n";
  };
  // `depth` mappings above the one holding v.
  EXPECT_FALSE(Yaml(nested(63), 64));
  auto over = Yaml(nested(64), 64);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->message, "the input nests deeper than 64 levels (at line 65)");
  // Compact sequences nest on one line.
  std::string compact;
  for (int i = 0; i < 70; ++i) compact += "- ";
  EXPECT_TRUE(Yaml(compact + "x\n", 64));
  // Going back out frees the levels.
  std::string wide;
  for (int i = 0; i < 1000; ++i)
    wide += "a" + std::to_string(i) + ":\n  b:\n    c: [1, [2, [3]]]\n";
  EXPECT_FALSE(Yaml(wide, 8));
}

TEST(CheckYamlShapeTest, TextInScalarsAndCommentsDoesNotCount) {
  const std::string y =
      "a: '[[[[[[[[[['   # [[[[[[[[[[\n"
      "b: \"{{{{{{{{{\\\"{{{\"\n"
      "c: x[[[[[[[[[[[\n"
      "d: |\n"
      "  [[[[[[[[[[[[[[\n"
      "      - - - - - - - - - - - - -\n"
      "e: >\n"
      "  {{{{{{{{{{{{{{\n"
      "f: 'it''s [[[[[[[[[[[['\n"
      "g: \"multi\n"
      "  line [[[[[[[[[[[ \"\n"
      "h: [a, 'b]]]]', \"c]]]]\", d]\n";
  EXPECT_FALSE(Yaml(y, 3)) << Yaml(y, 3)->message;
  // The structure after them still counts.
  EXPECT_TRUE(Yaml(y + "i: [[[[1]]]]\n", 3));
}

TEST(CheckYamlShapeTest, SizeAtUnderAndOverTheLimit) {
  EXPECT_FALSE(CheckYamlShape(std::string(100, 'a'), {100, 64}, "x"));
  auto over = CheckYamlShape(std::string(101, 'a'), {100, 64}, "x");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->limit, InputLimit::kBytes);
}

// A random YAML document of depth `depth`, in a mix of block and flow styles, with scalars that
// hold brackets, quotes and comment signs.
class YamlGenerator {
 public:
  explicit YamlGenerator(uint32_t seed) : rng_(seed) {}

  std::string Document(int depth) {
    std::string out;
    Block(out, 0, depth);
    return out;
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::string Scalar(bool flow) {
    static const char* kScalars[] = {"x", "'[[{'", "\"]]}\\\"[\"", "'it''s [['", "1", "true",
                                     "\"#[\"",
                                     // plain text with indicators: only outside flow collections
                                     "a[b", "it''s", "# no", "x # [[[", "a:b"};
    return kScalars[Pick(flow ? 7 : 12)];
  }

  void Flow(std::string& out, int depth) {
    if (depth == 0) {
      out += Scalar(true);
      return;
    }
    const bool seq = Pick(2) == 0;
    out += seq ? "[" : "{";
    for (int i = 0, n = 1 + Pick(3); i < n; ++i) {
      if (i) out += ", ";
      if (!seq) out += "k" + std::to_string(i) + ": ";
      Flow(out, i == 0 ? depth - 1 : Pick(depth));
    }
    out += seq ? "]" : "}";
  }

  // A block collection at `indent` whose deepest path has `depth` collections.
  void Block(std::string& out, int indent, int depth) {
    const std::string pad(indent, ' ');
    const bool seq = Pick(2) == 0;
    for (int i = 0, n = 1 + Pick(3); i < n; ++i) {
      const int child = i == 0 ? depth - 1 : Pick(depth);
      out += pad + (seq ? "- " : "k" + std::to_string(i) + ":");
      if (child == 0) {
        out += (seq ? "" : " ") + Scalar(false) + (Pick(4) == 0 ? "  # [[[" : "") + "\n";
      } else if (Pick(3) == 0) {
        out += (seq ? "" : " ");
        Flow(out, child);
        out += "\n";
      } else if (Pick(4) == 0) {  // a block scalar instead of the collection
        out += (seq ? "" : " ") + std::string("|\n") + pad + "    [[[ '\n" + pad + "    - - - #\n";
      } else {
        out += "\n";
        Block(out, indent + 2, child);
      }
    }
  }

  std::mt19937 rng_;
};

// The scan is an upper bound: for every document yaml-cpp reads, it refuses a limit one below
// the document's real depth.
TEST(CheckYamlShapeTest, NeverBelowTheRealDepthOfGeneratedDocuments) {
  int checked = 0;
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    YamlGenerator gen(seed);
    const std::string doc = gen.Document(1 + static_cast<int>(seed % 12));
    YAML::Node root;
    try {
      root = YAML::Load(doc);
    } catch (const YAML::Exception&) {
      continue;
    }
    const size_t depth = Depth(root);
    ASSERT_GT(depth, 0u);
    EXPECT_TRUE(Yaml(doc, depth - 1)) << "seed " << seed << " depth " << depth << "\n" << doc;
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

// ---- parsed values ----

TEST(NestsDeeperThanTest, CountsObjectsAndArrays) {
  EXPECT_FALSE(NestsDeeperThan(json(1), 0));
  EXPECT_TRUE(NestsDeeperThan(json::array(), 0));
  EXPECT_FALSE(NestsDeeperThan(json::parse(Arrays(16)), 16));
  EXPECT_TRUE(NestsDeeperThan(json::parse(Arrays(17)), 16));
  EXPECT_TRUE(NestsDeeperThan(json::parse(Objects(17)), 16));
  json wide = json::array();
  for (int i = 0; i < 1000; ++i) wide.push_back(json::parse(Arrays(3)));
  EXPECT_FALSE(NestsDeeperThan(wide, 4));
  EXPECT_TRUE(NestsDeeperThan(wide, 3));
}

// ---- messages ----

TEST(QuotedTest, ShortTextIsQuotedWhole) {
  EXPECT_EQ(Quoted("root"), "\"root\"");
  EXPECT_EQ(Quoted(""), "\"\"");
  EXPECT_EQ(Quoted(std::string(64, 'a')), "\"" + std::string(64, 'a') + "\"");
}

TEST(QuotedTest, LongTextIsCutWithItsSize) {
  EXPECT_EQ(Quoted(std::string(65, 'a')), "\"" + std::string(64, 'a') + "…\" (65 bytes)");
  const std::string q = Quoted(std::string(100'000, 'x'));
  EXPECT_LT(q.size(), 100u);
  EXPECT_NE(q.find("(100000 bytes)"), std::string::npos);
  EXPECT_EQ(Shortened(std::string(100'000, 'x'), 8), "xxxxxxxx… (100000 bytes)");
}

TEST(QuotedTest, ControlBytesAreVisibleAndUtf8IsNotSplit) {
  EXPECT_EQ(Quoted("a\nb\t\x01"), "\"a\\nb\\t\\x01\"");
  // "é" is two bytes; a cut after 1 byte keeps neither.
  EXPECT_EQ(Shortened("éé", 1), "… (4 bytes)");
  EXPECT_EQ(Shortened("éé", 3), "é… (4 bytes)");
}

TEST(FormatByteSizeTest, ExactUnits) {
  EXPECT_EQ(FormatByteSize(4u << 20), "4 MiB");
  EXPECT_EQ(FormatByteSize(4096), "4 KiB");
  EXPECT_EQ(FormatByteSize(1000), "1000 bytes");
  EXPECT_EQ(FormatByteSize(1), "1 byte");
  EXPECT_EQ(FormatByteSize((4u << 20) + 1), "4194305 bytes");
}

// ---- the YAML reader behind policies and kubelet config files ----

TEST(ParseYamlLimitsTest, ExactDepthOfWhatWasParsed) {
  // Flow style is what the scan sees best; the converter's exact check holds either way.
  EXPECT_TRUE(ParseYamlDocument(Arrays(64), {1u << 20, 64}).ok());
  auto over = ParseYamlDocument(Arrays(65), {1u << 20, 64});
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("nests deeper than 64 levels"), std::string::npos)
      << over.status().message();
}

}  // namespace
}  // namespace kpc::policy
