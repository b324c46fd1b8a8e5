#include "agent/config_edit.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>

#include "policy/effective_config.h"

namespace kpc::agent {
namespace {

using nlohmann::json;
using policy::FieldPath;
using policy::ValueType;

FieldPath P(const std::string& s) {
  auto p = FieldPath::Parse(s);
  EXPECT_TRUE(p.ok()) << s;
  return p.ok() ? *p : FieldPath();
}

ConfigEdit Set(const std::string& content, const std::string& path, const json& value,
               const std::string& file = "/var/lib/kubelet/config.yaml") {
  auto fp = P(path);
  auto e = SetConfigField(content, file, fp, value, TypeOfPath(fp));
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? *e : ConfigEdit{};
}

// `s` with the first `from` replaced by `to` (the test fails when `from` is not there).
std::string Sub(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

const char* kYaml = R"(# kubelet config written by kubeadm
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: true    # CIS 4.2.1 wants false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt

# the streaming timeout
streamingConnectionIdleTimeout: 0s
evictionHard:
  memory.available: "100Mi"
  nodefs.available: 10%
eventRecordQPS: 0 # unlimited
)";

TEST(ConfigEditTest, YamlScalarReplacedInPlaceKeepingComments) {
  ConfigEdit e = Set(kYaml, "authentication.anonymous.enabled", false);
  EXPECT_TRUE(e.changed);
  EXPECT_EQ(e.from, json(true));
  EXPECT_TRUE(e.note.empty());
  EXPECT_EQ(e.text, Sub(kYaml, "    enabled: true    # CIS", "    enabled: false    # CIS"));
}

TEST(ConfigEditTest, YamlDurationAndNumberKeepEverythingElse) {
  ConfigEdit e = Set(kYaml, "streamingConnectionIdleTimeout", "4h0m0s");
  std::string expect =
      Sub(kYaml, "streamingConnectionIdleTimeout: 0s", "streamingConnectionIdleTimeout: 4h0m0s");
  EXPECT_EQ(e.text, expect);
  ConfigEdit q = Set(e.text, "eventRecordQPS", 5);
  EXPECT_EQ(q.text, Sub(expect, "eventRecordQPS: 0 # unlimited", "eventRecordQPS: 5 # unlimited"));
}

TEST(ConfigEditTest, YamlBracketedMapKey) {
  ConfigEdit e = Set(kYaml, R"(evictionHard["memory.available"])", "200Mi");
  EXPECT_EQ(e.text, Sub(kYaml, R"(memory.available: "100Mi")", "memory.available: 200Mi"));
  EXPECT_EQ(e.from, json("100Mi"));
  ConfigEdit added = Set(kYaml, R"(evictionHard["imagefs.available"])", "15%");
  EXPECT_EQ(added.text, Sub(kYaml, "  nodefs.available: 10%\n",
                            "  nodefs.available: 10%\n  imagefs.available: 15%\n"));
}

TEST(ConfigEditTest, YamlInsertsUnderTheRightParent) {
  ConfigEdit e = Set(kYaml, "authentication.webhook.cacheTTL", "2m0s");
  EXPECT_NE(e.text.find("    cacheTTL: 2m0s\n    enabled: true\n"), std::string::npos) << e.text;
  ConfigEdit x = Set(kYaml, "authorization.mode", "Webhook");
  // A new top-level key goes after the last entry, at indentation 0.
  EXPECT_EQ(x.text, std::string(kYaml) + "authorization:\n  mode: Webhook\n");
  ConfigEdit n = Set(kYaml, "authentication.x509.clientCAFile", "/etc/ca.crt");
  EXPECT_NE(n.text.find("  x509:\n    clientCAFile: /etc/ca.crt\n\n# the streaming"),
            std::string::npos)
      << n.text;
}

TEST(ConfigEditTest, YamlCreatesNestedParents) {
  const std::string base =
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
  ConfigEdit e = Set(base, "authentication.anonymous.enabled", false);
  EXPECT_EQ(e.text, base + "authentication:\n  anonymous:\n    enabled: false\n");
  ConfigEdit g = Set(base, "featureGates.RotateKubeletServerCertificate", true);
  EXPECT_EQ(g.text, base + "featureGates:\n  RotateKubeletServerCertificate: true\n");
  // A file with four-space indentation gets four-space children.
  const std::string four = "authentication:\n    anonymous:\n        enabled: true\n";
  ConfigEdit f = Set(four, "authentication.webhook.enabled", true);
  EXPECT_EQ(f.text,
            "authentication:\n    anonymous:\n        enabled: true\n    webhook:\n        "
            "enabled: true\n");
}

TEST(ConfigEditTest, YamlEmptyFlowMapBecomesABlock) {
  const std::string base = "featureGates: {}  # none yet\nport: 10250\n";
  ConfigEdit e = Set(base, "featureGates.SeccompDefault", true);
  EXPECT_EQ(e.text, "featureGates:  # none yet\n  SeccompDefault: true\nport: 10250\n");
  EXPECT_TRUE(e.note.empty());
}

TEST(ConfigEditTest, YamlInlineFlowMappingOnTheWayIsRewrittenInBlockStyle) {
  const std::string base =
      "# keep me\nauthentication: {anonymous: {enabled: true}}\nport: 10250  # keep me too\n";
  ConfigEdit e = Set(base, "authentication.anonymous.enabled", false);
  EXPECT_EQ(
      e.text,
      "# keep me\nauthentication:\n  anonymous:\n    enabled: false\nport: 10250  # keep me too\n");
  EXPECT_NE(e.note.find("authentication"), std::string::npos);
}

TEST(ConfigEditTest, YamlWithAnchorsFallsBackToAFullReEmit) {
  const std::string base = "a: &x 5\neventRecordQPS: *x\nport: 10250\n";
  auto fp = P("eventRecordQPS");
  auto e = SetConfigField(base, "c.yaml", fp, 7, ValueType::kInt);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_NE(e->note.find("rewritten in full"), std::string::npos);
  EXPECT_EQ(e->text, "a: 5\neventRecordQPS: 7\nport: 10250\n");
}

TEST(ConfigEditTest, YamlStructuredValues) {
  const std::string base = "tlsCipherSuites:\n- A\n- B\nport: 1\n";
  ConfigEdit e = Set(base, "tlsCipherSuites", json::array({"C"}));
  EXPECT_EQ(e.text, "tlsCipherSuites:\n  - C\nport: 1\n");
  ConfigEdit m = Set(base, "evictionHard", json{{"memory.available", "1Gi"}});
  EXPECT_EQ(m.text, base + "evictionHard:\n  memory.available: 1Gi\n");
}

TEST(ConfigEditTest, YamlQuotesStringsThatWouldChangeType) {
  const std::string base = "kind: KubeletConfiguration\n";
  ConfigEdit e = Set(base, "authentication.x509.clientCAFile", "$(HOME)/ca.crt;rm -rf /");
  EXPECT_EQ(e.text,
            base + "authentication:\n  x509:\n    clientCAFile: \"$(HOME)/ca.crt;rm -rf /\"\n");
  auto back = policy::ParseKubeletConfigFile(e.text, "c.yaml");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)["authentication"]["x509"]["clientCAFile"], "$(HOME)/ca.crt;rm -rf /");
}

TEST(ConfigEditTest, YamlKeepsCrlfAndAMissingFinalNewline) {
  ConfigEdit e = Set("port: 1\r\neventRecordQPS: 0", "eventRecordQPS", 5);
  EXPECT_EQ(e.text, "port: 1\r\neventRecordQPS: 5");
  ConfigEdit a = Set("port: 1\r\nreadOnlyPort: 0", "eventRecordQPS", 5);
  EXPECT_EQ(a.text, "port: 1\r\nreadOnlyPort: 0\r\neventRecordQPS: 5");
}

TEST(ConfigEditTest, AlreadySetIsUnchanged) {
  ConfigEdit e =
      Set("streamingConnectionIdleTimeout: 4h\n", "streamingConnectionIdleTimeout", "4h0m0s");
  EXPECT_FALSE(e.changed);
  EXPECT_EQ(e.text, "streamingConnectionIdleTimeout: 4h\n");
  ConfigEdit q = Set(kYaml, "authentication.webhook.enabled", true);
  EXPECT_FALSE(q.changed);
  EXPECT_EQ(q.text, kYaml);
}

TEST(ConfigEditTest, JsonKeepsKeyOrderAndIndentation) {
  const std::string base =
      "{\n    \"kind\": \"KubeletConfiguration\",\n    \"apiVersion\": "
      "\"kubelet.config.k8s.io/v1beta1\",\n"
      "    \"streamingConnectionIdleTimeout\": \"0s\",\n    \"authentication\": {\n        "
      "\"anonymous\": {\n"
      "            \"enabled\": true\n        }\n    }\n}\n";
  ConfigEdit e = Set(base, "streamingConnectionIdleTimeout", "4h0m0s",
                     "/etc/kubernetes/kubelet/kubelet-config.json");
  EXPECT_EQ(e.text, Sub(base, "\"0s\"", "\"4h0m0s\""));
  ConfigEdit n = Set(base, "authorization.mode", "Webhook", "c.json");
  EXPECT_EQ(n.text, base.substr(0, base.size() - 3) +
                        ",\n    \"authorization\": {\n        \"mode\": \"Webhook\"\n    }\n}\n");
  ConfigEdit t =
      Set("{\n\t\"eventRecordQPS\": 0,\n\t\"port\": 1\n}", "eventRecordQPS", 5, "c.json");
  EXPECT_EQ(t.text, "{\n\t\"eventRecordQPS\": 5,\n\t\"port\": 1\n}");
  ConfigEdit c = Set(R"({"port":1,"eventRecordQPS":0})", "eventRecordQPS", 5, "c.json");
  EXPECT_EQ(c.text, R"({"port":1,"eventRecordQPS":5})");
}

TEST(ConfigEditTest, MalformedFilesAreErrors) {
  auto fp = P("eventRecordQPS");
  for (const char* bad :
       {"a: [1, 2\n", "{\"a\": ", "- a\n- b\n", "kind: Pod\n", "\t\tfoo: : :\n  - x"}) {
    auto e = SetConfigField(bad, "/var/lib/kubelet/config.yaml", fp, 5, ValueType::kInt);
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_NE(e.status().message().find("/var/lib/kubelet/config.yaml"), std::string::npos);
    }
  }
}

TEST(ConfigEditTest, SetValuesAreTypedByTheCatalog) {
  auto t = [](const std::string& path, const std::string& raw) {
    auto v = TypeSetValue(P(path), raw);
    EXPECT_TRUE(v.ok()) << path << "=" << raw << ": " << v.status().message();
    return v.ok() ? *v : json();
  };
  EXPECT_EQ(t("streamingConnectionIdleTimeout", "4h"), json("4h0m0s"));
  EXPECT_EQ(t("streamingConnectionIdleTimeout", "0"), json("0s"));
  EXPECT_EQ(t("streamingConnectionIdleTimeout", "\"90m\""), json("1h30m0s"));
  EXPECT_EQ(t("eventRecordQPS", "5"), json(5));
  EXPECT_TRUE(t("eventRecordQPS", "5").is_number_integer());
  EXPECT_EQ(t("eventRecordQPS", "5e2"), json(500));
  EXPECT_EQ(t("eventRecordQPS", "-9.2e18"), json(int64_t{-9200000000000000000}));
  EXPECT_EQ(t("eventRecordQPS", "\"5\""), json(5));
  EXPECT_EQ(t("authorization.mode", "Webhook"), json("Webhook"));
  EXPECT_EQ(t("authorization.mode", "\"Webhook\""), json("Webhook"));
  EXPECT_EQ(t("authentication.x509.clientCAFile", "$(HOME)/x;y|z`w`"), json("$(HOME)/x;y|z`w`"));
  EXPECT_EQ(t("authentication.x509.clientCAFile", "123"), json("123"));
  EXPECT_EQ(t("authentication.anonymous.enabled", "false"), json(false));
  EXPECT_EQ(t("featureGates.SeccompDefault", "true"), json(true));
  EXPECT_EQ(t(R"(evictionHard["memory.available"])", "100Mi"), json("100Mi"));
  EXPECT_EQ(t("tlsCipherSuites", "A,B"), json::array({"A", "B"}));
  EXPECT_EQ(t("featureGates", R"({"A": "true"})"), (json{{"A", true}}));
  for (auto [path, raw] : std::vector<std::pair<std::string, std::string>>{
           {"streamingConnectionIdleTimeout", "forever"},
           {"eventRecordQPS", "five"},
           {"authentication.anonymous.enabled", "maybe"},
           {"featureGates", "x"},
           {"featureGates.SeccompDefault", "1x"},
           // Not UTF-8: it would become a JSON string that cannot be dumped (found by
           // tests/fuzz/config_edit_fuzz.cpp).
           {"authentication.x509.clientCAFile", "/etc/ca\xFF.crt"},
           {"tlsCipherSuites", "A,\xC0\xAF"},
           // Past int64: refused, without the undefined conversion (found by the same target).
           {"eventRecordQPS", "1e21"},
           {"eventRecordQPS", "-1e300"},
           {"eventRecordQPS", "9.3e18"},
           {"eventRecordQPS", "5.5"}}) {
    auto v = TypeSetValue(P(path), raw);
    EXPECT_FALSE(v.ok()) << path << "=" << raw;
    if (!v.ok()) {
      EXPECT_NE(v.status().message().find(path), std::string::npos);
    }
  }
}

TEST(ConfigEditTest, YamlScalarFormatting) {
  EXPECT_EQ(FormatYamlScalar("4h0m0s"), "4h0m0s");
  EXPECT_EQ(FormatYamlScalar("100Mi"), "100Mi");
  EXPECT_EQ(FormatYamlScalar("/etc/kubernetes/pki/ca.crt"), "/etc/kubernetes/pki/ca.crt");
  EXPECT_EQ(FormatYamlScalar("Webhook"), "Webhook");
  EXPECT_EQ(FormatYamlScalar("true"), "\"true\"");
  EXPECT_EQ(FormatYamlScalar("on"), "\"on\"");
  EXPECT_EQ(FormatYamlScalar("0755"), "\"0755\"");
  EXPECT_EQ(FormatYamlScalar("1e3"), "\"1e3\"");
  EXPECT_EQ(FormatYamlScalar(""), "\"\"");
  EXPECT_EQ(FormatYamlScalar("a: b"), "\"a: b\"");
  EXPECT_EQ(FormatYamlScalar("2026-01-01"), "\"2026-01-01\"");
  EXPECT_EQ(FormatYamlScalar(5), "5");
  EXPECT_EQ(FormatYamlScalar(true), "true");
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

// Mutated documents never crash the editor, and whatever it returns as changed parses to the
// original with only the field set.
TEST(ConfigEditFuzzTest, MutatedDocumentsEditCorrectlyOrFail) {
  const std::string alphabet = " :-#'\"{}[]|>&*!\n\t\\x0a%?,";
  const std::vector<std::pair<std::string, json>> sets = {
      {"eventRecordQPS", 5},
      {"authentication.anonymous.enabled", false},
      {R"(evictionHard["memory.available"])", "1Gi"},
      {"featureGates.SeccompDefault", true},
  };
  uint32_t seed = 12345;
  auto rnd = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  int edited = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string doc = kYaml;
    int mutations = 1 + static_cast<int>(rnd(4));
    for (int m = 0; m < mutations; ++m) {
      size_t at = rnd(static_cast<uint32_t>(doc.size()));
      switch (rnd(3)) {
        case 0:
          doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at),
                     alphabet[rnd(static_cast<uint32_t>(alphabet.size()))]);
          break;
        case 1:
          doc.erase(at, 1 + rnd(5));
          break;
        default:
          doc[at] = alphabet[rnd(static_cast<uint32_t>(alphabet.size()))];
          break;
      }
    }
    const auto& [path, value] = sets[rnd(static_cast<uint32_t>(sets.size()))];
    auto fp = *FieldPath::Parse(path);
    auto e = SetConfigField(doc, "c.yaml", fp, value, TypeOfPath(fp));
    auto before = policy::ParseKubeletConfigFile(doc, "c.yaml");
    if (!e.ok()) continue;
    ASSERT_TRUE(before.ok()) << doc;
    auto after = policy::ParseKubeletConfigFile(e->text, "c.yaml");
    ASSERT_TRUE(after.ok()) << "from:\n" << doc << "\nto:\n" << e->text;
    json expect = *before;
    if (e->changed) fp.Set(expect, value);
    EXPECT_EQ(*after, expect) << "from:\n" << doc << "\nto:\n" << e->text;
    if (e->changed) ++edited;
  }
  EXPECT_GT(edited, 100);  // the fuzzing reached the editor, not only the parser
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

TEST(ConfigEditTest, KubeadmStyleCompactListsStayLineEdited) {
  const std::string base = "a: 1\nclusterDNS:\n- 10.96.0.10\nstreamingConnectionIdleTimeout: 0s\n";
  ConfigEdit e = Set(base, "streamingConnectionIdleTimeout", "4h0m0s");
  EXPECT_EQ(e.text, "a: 1\nclusterDNS:\n- 10.96.0.10\nstreamingConnectionIdleTimeout: 4h0m0s\n");
  EXPECT_EQ(e.note, "");
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

TEST(ConfigEditTest, JsonEditsAreTargeted) {
  const std::string base =
      "{\n  \"kind\": \"KubeletConfiguration\",\n  \"tlsCipherSuites\": [\"A\", \"B\"],\n"
      "  \"authentication\": {\"anonymous\": {\"enabled\": true}},\n  \"featureGates\": {},\n"
      "  \"eventRecordQPS\": 0\n}\n";
  ConfigEdit a = Set(base, "authentication.anonymous.enabled", false, "c.json");
  EXPECT_EQ(a.text, Sub(base, "{\"enabled\": true}", "{\"enabled\": false}"));
  EXPECT_EQ(a.note, "");
  ConfigEdit w = Set(base, "authentication.webhook.enabled", true, "c.json");
  EXPECT_EQ(
      w.text,
      Sub(base, "{\"anonymous\": {\"enabled\": true}}",
          "{\"anonymous\": {\"enabled\": true}, \"webhook\": {\n    \"enabled\": true\n  }}"));
  ConfigEdit g = Set(base, "featureGates.SeccompDefault", true, "c.json");
  EXPECT_EQ(g.text, Sub(base, "\"featureGates\": {}",
                        "\"featureGates\": {\n    \"SeccompDefault\": true\n  }"));
  ConfigEdit n = Set(base, "streamingConnectionIdleTimeout", "4h0m0s", "c.json");
  EXPECT_EQ(n.text,
            Sub(base, "\"eventRecordQPS\": 0\n",
                "\"eventRecordQPS\": 0,\n  \"streamingConnectionIdleTimeout\": \"4h0m0s\"\n"));
  ConfigEdit l = Set(base, "tlsCipherSuites", json::array({"C"}), "c.json");
  EXPECT_EQ(l.text, Sub(base, "[\"A\", \"B\"]", "[\n    \"C\"\n  ]"));
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

TEST(ConfigEditFuzzTest, MutatedJsonEditsCorrectlyOrFails) {
  const std::string base =
      "{\n  \"kind\": \"KubeletConfiguration\",\n  \"tlsCipherSuites\": [\"A\", \"B\"],\n"
      "  \"authentication\": {\"anonymous\": {\"enabled\": true}},\n  \"featureGates\": {},\n"
      "  \"evictionHard\": {\"memory.available\": \"100Mi\"},\n  \"eventRecordQPS\": 0\n}\n";
  const std::string alphabet = " :,{}[]\"\\\n\t0a";
  const std::vector<std::pair<std::string, json>> sets = {
      {"eventRecordQPS", 5},
      {"authentication.anonymous.enabled", false},
      {R"(evictionHard["memory.available"])", "1Gi"},
      {"featureGates.SeccompDefault", true},
      {"authentication.webhook.enabled", true}};
  uint32_t seed = 99;
  auto rnd = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  int edited = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string doc = base;
    for (int m = 0, n = static_cast<int>(rnd(3)); m < n; ++m) {
      size_t at = rnd(static_cast<uint32_t>(doc.size()));
      if (rnd(2) == 0) {
        doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at),
                   alphabet[rnd(static_cast<uint32_t>(alphabet.size()))]);
      } else {
        doc.erase(at, 1 + rnd(3));
      }
    }
    const auto& [path, value] = sets[rnd(static_cast<uint32_t>(sets.size()))];
    auto fp = *FieldPath::Parse(path);
    auto e = SetConfigField(doc, "c.json", fp, value, TypeOfPath(fp));
    if (!e.ok() || !e->changed) continue;
    ++edited;
    auto before = policy::ParseKubeletConfigFile(doc, "c.json");
    auto after = policy::ParseKubeletConfigFile(e->text, "c.json");
    ASSERT_TRUE(before.ok() && after.ok()) << doc << "\n" << e->text;
    json expect = *before;
    fp.Set(expect, value);
    EXPECT_EQ(*after, expect) << doc << "\n" << e->text;
  }
  EXPECT_GT(edited, 100);
}

}  // namespace
}  // namespace kpc::agent

namespace kpc::agent {
namespace {

TEST(ConfigEditTest, YamlDocumentMarkerQuotedKeysNullParentsAndComments) {
  ConfigEdit d = Set("# top\n---\nport: 1\n", "eventRecordQPS", 5);
  EXPECT_EQ(d.text, "# top\n---\nport: 1\neventRecordQPS: 5\n");
  ConfigEdit q = Set("evictionHard:\n  \"memory.available\": \"100Mi\"  # q\n",
                     R"(evictionHard["memory.available"])", "1Gi");
  EXPECT_EQ(q.text, "evictionHard:\n  \"memory.available\": 1Gi  # q\n");
  ConfigEdit n = Set("featureGates:\nport: 1\n", "featureGates.SeccompDefault", true);
  EXPECT_EQ(n.text, "featureGates:\n  SeccompDefault: true\nport: 1\n");
  ConfigEdit c = Set("authentication:\n  anonymous:\n    enabled: true\n  # about x509\nport: 1\n",
                     "authentication.webhook.enabled", true);
  EXPECT_EQ(
      c.text,
      "authentication:\n  anonymous:\n    enabled: true\n  webhook:\n    enabled: true\n  # about "
      "x509\nport: 1\n");
  // A block scalar's lines are not keys, and replacing it removes them.
  ConfigEdit b = Set("staticPodPath: |\n  /etc/a\n  port: 9\nport: 1\n", "staticPodPath", "/etc/b");
  EXPECT_EQ(b.text, "staticPodPath: /etc/b\nport: 1\n");
}

// The patterns the hand-written matcher replaced, as the oracle (std::regex is fine here: the
// strings are short and generated by the test).
bool OracleLooksSpecialYaml(const std::string& s) {
  if (s.size() > 128) return true;
  static const std::regex kNumber(R"(^[-+]?(\.[0-9]|[0-9])[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?$)");
  static const std::regex kRadix(R"(^[-+]?0[xXoObB][0-9a-fA-F_]+$)");
  static const std::regex kDate(R"(^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})");
  static const std::regex kSpecialWord(
      R"(^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$)");
  return std::regex_match(s, kNumber) || std::regex_match(s, kRadix) ||
         std::regex_search(s, kDate) || std::regex_match(s, kSpecialWord);
}

TEST(LooksSpecialYamlTest, AgreesWithTheRegexes) {
  std::vector<std::string> inputs = {"",
                                     "y",
                                     "yes",
                                     "YES",
                                     "yEs",
                                     "Yes ",
                                     "no",
                                     "NO",
                                     "nO",
                                     "true",
                                     "tRue",
                                     "off",
                                     "Off",
                                     "OFF",
                                     "null",
                                     "~",
                                     "~~",
                                     ".inf",
                                     ".Inf",
                                     ".iNf",
                                     ".nan",
                                     ".NaN",
                                     ".NAN",
                                     "inf",
                                     ".in",
                                     "2024-01-02",
                                     "2024-1-2",
                                     "2024-1-",
                                     "2024-123-4",
                                     "20245-1-2",
                                     "2024-01-02T10:00:00Z",
                                     "2024-1-2 x",
                                     "224-1-2",
                                     "2024--2",
                                     "1e5",
                                     "1E-5",
                                     "1e",
                                     "1e+",
                                     ".5",
                                     "+.5",
                                     "-.5e3",
                                     "5.",
                                     "1_000.000_1",
                                     "1.2.3",
                                     "._",
                                     "0x1F",
                                     "0X_",
                                     "0x",
                                     "0o17",
                                     "0b101",
                                     "-0b1",
                                     "+0xg",
                                     "00",
                                     "1:30",
                                     "4h0m0s",
                                     "0755",
                                     "abc",
                                     "/var/lib",
                                     "-",
                                     "+",
                                     ".",
                                     "0\n",
                                     "2024-1-2\n",
                                     "\n2024-1-2",
                                     "y\n",
                                     "1e5\n"};
  // Every string of up to 4 characters over an alphabet that reaches each branch.
  const std::string alphabet = "019_.-+eExXob:Y~a";
  std::vector<std::string> level = {""};
  for (int len = 1; len <= 4; ++len) {
    std::vector<std::string> next;
    for (const auto& prefix : level) {
      for (char c : alphabet) next.push_back(prefix + c);
    }
    inputs.insert(inputs.end(), next.begin(), next.end());
    level = std::move(next);
  }
  // Longer ones at random, numbers and dates more often than not.
  std::mt19937 rng(13);
  const std::string digits = "0123456789";
  for (int i = 0; i < 20000; ++i) {
    const std::string& pool = (i % 3 == 0) ? alphabet : digits + "-._eE+";
    std::string s;
    const size_t len = 5 + rng() % 14;
    for (size_t k = 0; k < len; ++k) s += pool[rng() % pool.size()];
    inputs.push_back(s);
  }
  for (size_t len : {127, 128, 129}) {
    inputs.push_back(std::string(len, '1'));
    inputs.push_back(std::string(len, 'a'));
  }
  size_t special = 0;
  for (const std::string& s : inputs) {
    const bool want = OracleLooksSpecialYaml(s);
    special += want;
    ASSERT_EQ(LooksSpecialYaml(s), want) << "\"" << s << "\"";
  }
  EXPECT_GT(special, 1000u);
  EXPECT_GT(inputs.size() - special, 1000u);
}

}  // namespace
}  // namespace kpc::agent
