#include "cli/common_flags.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "cli/run_flags.h"
#include "cli/webhook_flags.h"
#include "tests/cli/help_text.h"
#include "tests/cli/scoped_env.h"

namespace kpc::cli {
namespace {

using help_text::HelpEntry;
using help_text::HelpGroups;

class CommonFlagsTest : public ::testing::Test {
 protected:
  ScopedEnv pod_namespace_{"POD_NAMESPACE", std::nullopt};
};

std::string Help(StatusOr<std::optional<std::string>> help) {
  EXPECT_TRUE(help.ok()) << help.status().message();
  return help.ok() && *help ? **help : "";
}

std::string RunHelp() {
  auto line = ParseRunFlags({"--help"});
  return line.ok() && line->help ? *line->help : "";
}

std::string WebhookHelp() {
  auto line = ParseWebhookFlags({"--help"});
  return line.ok() && line->help ? *line->help : "";
}

// One definition: each shared flag reads the same (name, value name, description, default) in
// `run --help` and `webhook --help`. The Lease name differs on purpose: each process has its
// own Lease.
TEST_F(CommonFlagsTest, RunAndWebhookShareTheDefinitions) {
  const std::string run = RunHelp();
  const std::string webhook = WebhookHelp();
  ASSERT_NE(run, "");
  ASSERT_NE(webhook, "");
  for (const char* flag : {"--kubeconfig", "--context", "--insecure-skip-tls-verify",
                           "--kube-api-qps", "--kube-api-burst", "--leader-elect",
                           "--leader-elect-namespace", "--leader-elect-lease-duration",
                           "--leader-elect-renew-deadline", "--leader-elect-retry-period",
                           "--health-addr", "--metrics-addr", "--log-format", "--log-level"}) {
    EXPECT_NE(HelpEntry(run, flag), "") << flag;
    EXPECT_EQ(HelpEntry(run, flag), HelpEntry(webhook, flag)) << flag;
  }
  EXPECT_NE(HelpEntry(run, "--leader-elect-name").find("(default kubelet-policy-controller)"),
            std::string::npos);
  EXPECT_NE(
      HelpEntry(webhook, "--leader-elect-name").find("(default kubelet-policy-controller-webhook)"),
      std::string::npos);
  for (const auto& group : {"Kubernetes connection", "Health and metrics", "Logging"}) {
    EXPECT_EQ(HelpGroups(run)[group], HelpGroups(webhook)[group]) << group;
  }
}

// Each group on an app of its own: the struct's values before adding are the defaults shown,
// and parsing writes the struct.
TEST_F(CommonFlagsTest, GroupsBindTheirStruct) {
  ConnectionFlags connection;
  LeaderElectionFlags election{.lease_name = "my-lease"};
  ServingFlags serving;
  LoggingFlags logging;
  auto help = ReadCommandLine(
      {"Usage: x\n", "", 30}, {"--help"},
      [&](CLI::App& app) {
        AddConnectionFlags(app, connection);
        AddLeaderElectionFlags(app, election, "Leader election (test)");
        AddServingFlags(app, serving);
        AddLoggingFlags(app, logging);
      },
      [] { return Status::Ok(); });
  const std::string text = Help(help);
  EXPECT_NE(HelpEntry(text, "--leader-elect-name").find("(default my-lease)"), std::string::npos)
      << text;
  EXPECT_EQ(HelpGroups(text)["Leader election (test)"].size(), 6u) << text;

  auto parsed = ReadCommandLine(
      {"Usage: x\n", "", 30},
      {"--kubeconfig=/k", "--kube-api-qps=7", "--leader-elect=false", "--leader-elect-name=l2",
       "--health-addr=:1", "--metrics-addr=:2", "--log-level=debug"},
      [&](CLI::App& app) {
        AddConnectionFlags(app, connection);
        AddLeaderElectionFlags(app, election, "Leader election (test)");
        AddServingFlags(app, serving);
        AddLoggingFlags(app, logging);
      },
      [&] { return ValidateLeaderElectionFlags(election); });
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(connection.kubeconfig, "/k");
  EXPECT_EQ(connection.qps, 7);
  EXPECT_FALSE(election.leader_elect);
  EXPECT_EQ(election.lease_name, "l2");
  EXPECT_EQ(serving.health_addr, ":1");
  EXPECT_EQ(serving.metrics_addr, ":2");
  EXPECT_EQ(logging.log_level, "debug");
}

TEST(ValidateLeaderElectionFlagsTest, TimingsMustNest) {
  constexpr int64_t s = 1'000'000'000;
  struct Case {
    int64_t lease, renew, retry;
    std::string want;  // "" when valid
  };
  const std::vector<Case> cases = {
      {15 * s, 10 * s, 2 * s, ""},
      {15 * s, 15 * s, 2 * s,
       "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration"},
      {15 * s, 10 * s, 10 * s,
       "--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline"},
      {60 * s, 40 * s, 10 * s, ""},
  };
  for (const auto& c : cases) {
    LeaderElectionFlags f{.lease_name = "x",
                          .lease_duration_ns = c.lease,
                          .renew_deadline_ns = c.renew,
                          .retry_period_ns = c.retry};
    Status st = ValidateLeaderElectionFlags(f);
    EXPECT_EQ(st.ok() ? "" : st.message(), c.want) << c.lease << " " << c.renew << " " << c.retry;
  }
}

}  // namespace
}  // namespace kpc::cli
