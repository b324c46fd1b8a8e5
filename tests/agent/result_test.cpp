#include "agent/result.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kpc::agent {
namespace {

AgentResult Sample() {
  AgentResult r;
  r.command = "remediate";
  r.ok = true;
  r.kubelet.config_file = "/var/lib/kubelet/config.yaml";
  r.kubelet.kubeconfig = "/etc/kubernetes/kubelet.conf";
  r.kubelet.flags_files = {"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"};
  r.kubelet.service_files = {"/lib/systemd/system/kubelet.service",
                             "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"};
  r.changes.push_back({"config", "streamingConnectionIdleTimeout", "",
                       "/var/lib/kubelet/config.yaml", "", std::string("0s"), "4h0m0s", true, ""});
  r.changes.push_back({"flag", "eventRecordQPS", "event-qps", "/etc/default/kubelet", "",
                       std::nullopt, "5", false, "a note"});
  r.changes.push_back(
      {"mode", "", "", "", "/etc/kubernetes/kubelet.conf", std::string("0644"), "0600", true, ""});
  r.files["/etc/kubernetes/kubelet.conf"] = policy::FileFacts{true, 0600, 0, 0, "root", "root", ""};
  r.files["/etc/kubernetes/missing"] = policy::FileFacts{};
  r.files["/etc/kubernetes/unreadable"] =
      policy::FileFacts{false, 0, 0, 0, "", "", "permission denied"};
  r.restarted = true;
  return r;
}

TEST(AgentResultTest, ModesFormatAndParse) {
  EXPECT_EQ(FormatMode(0600), "0600");
  EXPECT_EQ(FormatMode(0), "0000");
  EXPECT_EQ(FormatMode(04755), "4755");
  EXPECT_EQ(ParseMode("0600"), 0600u);
  EXPECT_EQ(ParseMode("644"), 0644u);
  EXPECT_FALSE(ParseMode("0800").has_value());
  EXPECT_FALSE(ParseMode("").has_value());
  EXPECT_FALSE(ParseMode("rw-").has_value());
  EXPECT_FALSE(ParseMode("17777").has_value());
}

TEST(AgentResultTest, JsonShapeMatchesTheContract) {
  nlohmann::json j = ToJson(Sample());
  EXPECT_EQ(j["apiVersion"], "kubeletpolicy.io/v1alpha1");
  EXPECT_EQ(j["kind"], "AgentResult");
  EXPECT_EQ(j["kubelet"]["configFile"], "/var/lib/kubelet/config.yaml");
  EXPECT_EQ(j["changes"][0]["from"], "0s");
  EXPECT_FALSE(j["changes"][1].contains("from"));
  EXPECT_EQ(j["changes"][1]["note"], "a note");
  EXPECT_EQ(j["files"]["/etc/kubernetes/kubelet.conf"]["mode"], "0600");
  EXPECT_EQ(j["files"]["/etc/kubernetes/kubelet.conf"]["owner"], "root");
  EXPECT_EQ(j["files"]["/etc/kubernetes/missing"], (nlohmann::json{{"exists", false}}));
  EXPECT_EQ(j["files"]["/etc/kubernetes/unreadable"],
            (nlohmann::json{{"error", "permission denied"}}));
  EXPECT_FALSE(j.contains("blocked"));
}

TEST(AgentResultTest, RoundTrip) {
  AgentResult r = Sample();
  r.blocked = Blocked{"FlagOverride", "flag on the command line"};
  r.errors = {"one", "two"};
  auto back = ParseAgentResult(ToJson(r).dump());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(ToJson(*back), ToJson(r));
  EXPECT_EQ(back->changes[0].from, std::optional<std::string>("0s"));
  EXPECT_FALSE(back->changes[1].from.has_value());
  EXPECT_EQ(back->files["/etc/kubernetes/kubelet.conf"].mode, 0600u);
  EXPECT_EQ(back->blocked->reason, "FlagOverride");
  EXPECT_EQ(ExitCodeOf(*back), kExitBlocked);
}

TEST(AgentResultTest, LenientAboutMissingKeys) {
  auto r = ParseAgentResult(R"({"command": "audit-files"})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->command, "audit-files");
  EXPECT_FALSE(r->ok);
  EXPECT_TRUE(r->changes.empty());
}

TEST(AgentResultTest, RejectsGarbage) {
  for (const char* text :
       {"", "not json", "[1,2]", "{}", R"({"command": 5})", R"({"command": "x", "ok": "yes"})",
        R"({"command": "x", "changes": {}})", R"({"command": "x", "changes": [5]})",
        R"({"command": "x", "changes": [{"changed": "true"}]})",
        R"({"command": "x", "files": {"/a": {"mode": "rwx"}}})",
        R"({"command": "x", "files": {"/a": {"uid": -1}}})", R"({"command": "x", "files": []})",
        R"({"command": "x", "errors": [1]})", R"({"command": "x", "blocked": "yes"})",
        R"({"command": "x", "kind": "Pod"})",
        R"({"command": "x", "kubelet": {"flagsFiles": "a"}})"}) {
    auto r = ParseAgentResult(text);
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
      EXPECT_NE(r.status().message().find("AgentResult"), std::string::npos)
          << r.status().message();
    }
  }
}

TEST(AgentResultTest, ExitCodes) {
  AgentResult r;
  r.ok = true;
  EXPECT_EQ(ExitCodeOf(r), kExitOk);
  r.errors.push_back("x");
  EXPECT_EQ(ExitCodeOf(r), kExitFailed);
  r.blocked = Blocked{"FlagOverride", ""};
  EXPECT_EQ(ExitCodeOf(r), kExitBlocked);
}

TEST(AgentResultTest, FitToLimitKeepsSmallResultsWhole) {
  AgentResult r = Sample();
  std::string s = FitToLimit(r);
  EXPECT_EQ(nlohmann::json::parse(s), ToJson(r));
  EXPECT_FALSE(nlohmann::json::parse(s)["truncated"].get<bool>());
}

AgentResult Big() {
  AgentResult r = Sample();
  r.ok = false;
  for (int i = 0; i < 400; ++i) {
    std::string p = "/etc/kubernetes/file-with-a-long-name-" + std::to_string(i);
    r.files[p] = policy::FileFacts{true, 0644, 1000, 1000, "someone", "somegroup", ""};
    r.changes.push_back({"mode", "", "", "", p, std::string("0644"), "0600", i % 2 == 0, ""});
  }
  r.errors.push_back("the first error says what went wrong");
  for (int i = 0; i < 100; ++i) r.errors.push_back("another error " + std::string(100, 'x'));
  return r;
}

TEST(AgentResultTest, FitToLimitShrinksBigResults) {
  AgentResult r = Big();
  ASSERT_GT(ToJson(r).dump().size(), 4096u);
  std::string s = FitToLimit(r);
  ASSERT_LE(s.size(), 4096u);
  auto back = ParseAgentResult(s);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->truncated);
  EXPECT_EQ(back->command, "remediate");
  EXPECT_FALSE(back->ok);
  ASSERT_FALSE(back->errors.empty());
  EXPECT_EQ(back->errors.front(), "the first error says what went wrong");
  // Unchanged changes went before changed ones.
  for (const Change& c : back->changes) EXPECT_TRUE(c.changed) << c.path;
}

TEST(AgentResultTest, FitToLimitKeepsBlockedAndFirstErrorUnderTinyLimits) {
  AgentResult r = Big();
  r.blocked = Blocked{"FlagOverride", std::string(3000, 'm')};
  r.errors.insert(r.errors.begin(), std::string(5000, 'e'));
  for (size_t limit : {4096u, 1024u, 300u, 120u}) {
    std::string s = FitToLimit(r, limit);
    EXPECT_LE(s.size(), limit) << limit;
    auto back = ParseAgentResult(s);
    ASSERT_TRUE(back.ok()) << limit << ": " << back.status().message();
    EXPECT_TRUE(back->truncated);
    ASSERT_TRUE(back->blocked.has_value()) << limit;
    EXPECT_EQ(back->blocked->reason, "FlagOverride");
    if (limit >= 300) {
      ASSERT_EQ(back->errors.size(), 1u) << limit;
      EXPECT_EQ(back->errors[0].substr(0, 10), std::string(10, 'e'));
    }
  }
}

TEST(AgentResultTest, FitToLimitPrefersFilesNamedByChanges) {
  AgentResult r;
  r.command = "remediate";
  r.ok = true;
  r.changes.push_back(
      {"mode", "", "", "", "/etc/kubernetes/kubelet.conf", std::string("0644"), "0600", true, ""});
  r.files["/etc/kubernetes/kubelet.conf"] = policy::FileFacts{true, 0600, 0, 0, "root", "root", ""};
  for (int i = 0; i < 200; ++i) {
    r.files["/etc/a/" + std::to_string(i)] =
        policy::FileFacts{true, 0644, 0, 0, "root", "root", ""};
  }
  auto back = ParseAgentResult(FitToLimit(r, 2048));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->truncated);
  EXPECT_EQ(back->files.count("/etc/kubernetes/kubelet.conf"), 1u);
  EXPECT_LT(back->files.size(), 201u);
  EXPECT_GT(back->files.size(), 1u);  // as many others as fit
}

TEST(AgentResultLimitsTest, TerminationMessagesAreBoundedBeforeParsing) {
  // What FitToLimit makes always fits the termination message limits.
  AgentResult big = Sample();
  for (int i = 0; i < 200; ++i) big.errors.push_back(std::string(100, 'e'));
  const std::string fitted = FitToLimit(big);
  ASSERT_LE(fitted.size(), kTerminationMessageLimits.max_bytes);
  EXPECT_TRUE(ParseAgentResult(fitted, kTerminationMessageLimits).ok());

  auto sized = [](size_t n) {
    std::string head = R"({"command": "audit-files", "errors": [")", tail = R"("]})";
    return head + std::string(n - head.size() - tail.size(), 'x') + tail;
  };
  EXPECT_TRUE(ParseAgentResult(sized(4096), kTerminationMessageLimits).ok());
  EXPECT_TRUE(ParseAgentResult(sized(4095), kTerminationMessageLimits).ok());
  auto over = ParseAgentResult(sized(4097), kTerminationMessageLimits);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().message(), "the agent result is 4097 bytes, over the 4 KiB limit");
  // A whole result (stdout, the result file) may be larger.
  EXPECT_TRUE(ParseAgentResult(sized(100'000)).ok());
}

TEST(AgentResultLimitsTest, NestingIsBoundedBeforeParsing) {
  auto nested = [](size_t depth) {
    return R"({"command": "remediate", "x": )" + std::string(depth - 1, '[') +
           std::string(depth - 1, ']') + "}";
  };
  EXPECT_TRUE(ParseAgentResult(nested(64)).ok());
  auto over = ParseAgentResult(nested(65));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("nests deeper than 64 levels"), std::string::npos);
  EXPECT_FALSE(ParseAgentResult(std::string(200'000, '[')).ok());
  EXPECT_FALSE(ParseAgentResult(std::string(4000, '['), kTerminationMessageLimits).ok());
}

}  // namespace
}  // namespace kpc::agent
