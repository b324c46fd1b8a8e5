#include "cli/main_command.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace kpc::cli {
namespace {

// The top-level usage, byte for byte as the binary has always printed it.
constexpr const char* kUsage =
    R"(kubelet-policy-controller keeps every node's kubelet configuration compliant
with KubeletPolicy objects.

Usage:
  kubelet-policy-controller <command> [flags]

Commands:
  run       run the operator against a cluster
  webhook   serve the admission webhooks for KubeletPolicy (its own process)
  check     evaluate policy files against kubelet configurations (offline)
  agent     the node agent: audit kubelet files, remediate them (runs in Jobs on a node)
  version   print build information

Run 'kubelet-policy-controller <command> --help' for a command's flags.
)";

struct MainRun {
  int code = 0;
  std::string out;
  std::string err;
};

MainRun Main(const std::vector<std::string>& args, const Clock& clock = FakeClock()) {
  std::ostringstream out, err;
  MainRun r;
  r.code = RunMain(args, out, err, clock, false);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(MainCommandTest, UsageAndItsExitCodes) {
  MainRun r = Main({});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, kUsage);
  EXPECT_EQ(r.err, "");
  for (const char* word : {"-h", "--help", "help"}) {
    r = Main({word});
    EXPECT_EQ(r.code, 0) << word;
    EXPECT_EQ(r.out, kUsage) << word;
    EXPECT_EQ(r.err, "") << word;
  }
  // only the first word counts
  r = Main({"--help", "run"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, kUsage);
}

TEST(MainCommandTest, Version) {
  for (const char* word : {"version", "--version"}) {
    MainRun r = Main({word});
    EXPECT_EQ(r.code, 0) << word;
    EXPECT_EQ(r.out.rfind("kubelet-policy-controller ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(" (commit "), std::string::npos) << r.out;
    EXPECT_EQ(r.out.back(), '\n');
  }
}

TEST(MainCommandTest, UnknownCommand) {
  for (const char* word : {"frob", "--frob", "-x", "Run", "--version=x"}) {
    MainRun r = Main({word, "--help"});
    EXPECT_EQ(r.code, 2) << word;
    EXPECT_EQ(r.out, "") << word;
    EXPECT_EQ(r.err, "error: unknown command \"" + std::string(word) + "\"\n\n" + kUsage) << word;
  }
}

TEST(MainCommandTest, CommandsGetTheirHelp) {
  MainRun r = Main({"run", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Usage:\n  kubelet-policy-controller run [flags]\n", 0), 0u) << r.out;
  r = Main({"webhook", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Usage:\n  kubelet-policy-controller webhook [flags]\n", 0), 0u) << r.out;
  r = Main({"check", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Usage:\n  kubelet-policy-controller check ", 0), 0u) << r.out;
  r = Main({"agent", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("kubelet-policy-controller agent"), std::string::npos) << r.out;
}

TEST(MainCommandTest, UsageErrorsOfCommands) {
  MainRun r = Main({"run", "--no-such-flag"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "error: unknown flag \"--no-such-flag\"\n\nRun 'kubelet-policy-controller run --help' "
            "for usage.\n");
  r = Main({"webhook", "--workers=2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "error: unknown flag \"--workers=2\"\n\nRun 'kubelet-policy-controller webhook "
            "--help' for usage.\n");
  r = Main({"check", "--policy"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--policy needs a value"), std::string::npos) << r.err;
}

// Words after the command are the command's, even when they look like commands or flags of
// the top level.
TEST(MainCommandTest, WordsAfterTheCommandPassVerbatim) {
  MainRun r =
      Main({"check", "--node", "version", "--policy", "help", "--configz", "--help", "--version"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown flag \"--version\""), std::string::npos) << r.err;
  r = Main({"check", "--node", "run", "-p", "agent", "--configz", "check"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--node is for --config-file/--flags-file"), std::string::npos) << r.err;
}

// `check` judges exceptions by the clock it is given.
TEST(MainCommandTest, CheckUsesTheClock) {
  namespace fs = std::filesystem;
  const std::string configz =
      std::string(KPC_SHARED_DATA_DIR) + "/kubelet/configz-k8s-docs-crio-local-up-cluster.json";
  const std::string tmp =
      (fs::temp_directory_path() / ("kpc-main-" + std::to_string(::getpid()))).string();
  fs::create_directories(tmp);
  fs::copy_file(configz, tmp + "/dev.json", fs::copy_options::overwrite_existing);
  const std::vector<std::string> args = {
      "check",
      "--policy",
      std::string(KPC_SOURCE_DIR) + "/tests/testdata/api-example.yaml",
      "--configz",
      tmp + "/dev.json",
      "--node-labels",
      "pool=legacy-monitoring",
      "-o",
      "json"};
  auto anonymous_auth = [](const MainRun& r) {
    const nlohmann::json report = nlohmann::json::parse(r.out);
    for (const auto& row : report["results"]) {
      if (row["rule"] == "anonymous-auth-disabled") return row["result"].get<std::string>();
    }
    return std::string("<missing>");
  };
  // The example's exception expires 2027-01-31.
  EXPECT_EQ(anonymous_auth(Main(args, FakeClock(1795000000))), "Exempt");
  EXPECT_EQ(anonymous_auth(Main(args, FakeClock(1900000000))), "Fail");
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace kpc::cli
