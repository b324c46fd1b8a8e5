#include "cli/webhook_flags.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <sstream>

#include "cli/webhook_command.h"
#include "tests/cli/flag_parsing.h"
#include "tests/cli/help_text.h"
#include "tests/cli/scoped_env.h"

namespace kpc::cli {
namespace {

using help_text::HelpEntry;
using help_text::HelpGroups;

constexpr int64_t kSecond = 1'000'000'000;

// Every test starts without the variable the flags fall back to.
class WebhookFlagsTest : public ::testing::Test {
 protected:
  ScopedEnv pod_namespace_{"POD_NAMESPACE", std::nullopt};
};

WebhookFlags MustParse(const std::vector<std::string>& args) {
  return flag_parsing::MustParseWith(ParseWebhookFlags, args);
}

std::string ParseError(const std::vector<std::string>& args) {
  return flag_parsing::ParseErrorWith(ParseWebhookFlags, args);
}

using flag_parsing::Join;

// A flag taking a value, the value given, and the field it lands in (as text).
struct ValueCase {
  std::string flag;
  std::string value;
  std::function<std::string(const WebhookFlags&)> field;
  std::string want;
};

const std::vector<ValueCase>& ValueCases() {
  static const std::vector<ValueCase> cases = {
      {"--kubeconfig", "/k/config", [](const WebhookFlags& f) { return f.connection.kubeconfig; },
       "/k/config"},
      {"--context", "kind-a", [](const WebhookFlags& f) { return f.connection.context; }, "kind-a"},
      {"--kube-api-burst", "200",
       [](const WebhookFlags& f) { return std::to_string(f.connection.burst); }, "200"},
      {"--leader-elect-namespace", "ns1",
       [](const WebhookFlags& f) { return f.election.lease_namespace; }, "ns1"},
      {"--leader-elect-name", "lease1", [](const WebhookFlags& f) { return f.election.lease_name; },
       "lease1"},
      {"--leader-elect-lease-duration", "20s",
       [](const WebhookFlags& f) { return std::to_string(f.election.lease_duration_ns); },
       std::to_string(20 * kSecond)},
      {"--health-addr", "127.0.0.1:0", [](const WebhookFlags& f) { return f.serving.health_addr; },
       "127.0.0.1:0"},
      {"--metrics-addr", ":9090", [](const WebhookFlags& f) { return f.serving.metrics_addr; },
       ":9090"},
      {"--webhook-addr", ":8443", [](const WebhookFlags& f) { return f.server.webhook_addr; },
       ":8443"},
      {"--webhook-cert-dir", "/certs",
       [](const WebhookFlags& f) { return f.server.webhook_cert_dir; }, "/certs"},
      {"--webhook-cert-mode", "cert-manager",
       [](const WebhookFlags& f) { return f.server.webhook_cert_mode; }, "cert-manager"},
      {"--webhook-namespace", "wns",
       [](const WebhookFlags& f) { return f.server.webhook_namespace; }, "wns"},
      {"--webhook-service-name", "svc",
       [](const WebhookFlags& f) { return f.server.webhook_service; }, "svc"},
      {"--webhook-secret-name", "sec",
       [](const WebhookFlags& f) { return f.server.webhook_secret; }, "sec"},
      {"--webhook-configuration-name", "cfg",
       [](const WebhookFlags& f) { return f.server.webhook_configuration; }, "cfg"},
      {"--webhook-ca-validity", "100h",
       [](const WebhookFlags& f) { return std::to_string(f.server.webhook_ca_validity_ns); },
       std::to_string(100 * 3600 * kSecond)},
      {"--webhook-cert-validity", "10h",
       [](const WebhookFlags& f) { return std::to_string(f.server.webhook_cert_validity_ns); },
       std::to_string(10 * 3600 * kSecond)},
      {"--webhook-cert-sync-period", "1s",
       [](const WebhookFlags& f) { return std::to_string(f.server.webhook_sync_period_ns); },
       std::to_string(kSecond)},
      {"--log-format", "json", [](const WebhookFlags& f) { return f.logging.log_format; }, "json"},
      {"--log-level", "debug", [](const WebhookFlags& f) { return f.logging.log_level; }, "debug"},
  };
  return cases;
}

TEST_F(WebhookFlagsTest, EveryValueFlagParsesInBothForms) {
  for (const auto& c : ValueCases()) {
    EXPECT_EQ(c.field(MustParse({c.flag, c.value})), c.want) << c.flag << " " << c.value;
    EXPECT_EQ(c.field(MustParse({c.flag + "=" + c.value})), c.want) << c.flag << "=" << c.value;
  }
}

TEST_F(WebhookFlagsTest, BooleanFlags) {
  EXPECT_TRUE(MustParse({"--local-webhooks"}).server.local_webhooks);
  EXPECT_FALSE(MustParse({"--local-webhooks=false"}).server.local_webhooks);
  // a boolean flag never takes the next word: --webhook-addr stays a flag
  WebhookFlags f = MustParse({"--local-webhooks", "--webhook-addr=:9555"});
  EXPECT_TRUE(f.server.local_webhooks);
  EXPECT_EQ(f.server.webhook_addr, ":9555");
  EXPECT_FALSE(MustParse({"--leader-elect=false"}).election.leader_elect);
  EXPECT_TRUE(MustParse({"--insecure-skip-tls-verify"}).connection.allow_insecure);
}

TEST_F(WebhookFlagsTest, DefaultsAreTheDocumentedOnes) {
  const WebhookFlags f = MustParse({});
  EXPECT_EQ(f.connection.kubeconfig, "");
  EXPECT_EQ(f.connection.qps, 50);
  EXPECT_EQ(f.connection.burst, 100);
  EXPECT_TRUE(f.election.leader_elect);
  EXPECT_EQ(f.election.lease_namespace, "kube-system");
  // its own Lease: a webhook replica never competes with the operator for the operator's
  EXPECT_EQ(f.election.lease_name, "kubelet-policy-controller-webhook");
  EXPECT_EQ(f.election.lease_duration_ns, 15 * kSecond);
  EXPECT_EQ(f.election.renew_deadline_ns, 10 * kSecond);
  EXPECT_EQ(f.election.retry_period_ns, 2 * kSecond);
  EXPECT_EQ(f.serving.health_addr, ":8081");
  EXPECT_EQ(f.serving.metrics_addr, ":8080");
  EXPECT_EQ(f.server.webhook_addr, ":9443");
  EXPECT_EQ(f.server.webhook_cert_mode, "self-managed");
  EXPECT_EQ(f.server.webhook_cert_dir, "/var/run/kubelet-policy-controller/webhook-certs");
  EXPECT_FALSE(f.server.local_webhooks);
  EXPECT_EQ(f.server.webhook_namespace, "kubelet-policy-system");
  EXPECT_EQ(f.server.webhook_service, "kubelet-policy-controller-webhook");
  EXPECT_EQ(f.server.webhook_secret, "kubelet-policy-controller-webhook-tls");
  EXPECT_EQ(f.server.webhook_configuration, "kubelet-policy-controller");
  EXPECT_EQ(f.server.webhook_ca_validity_ns, 87600 * 3600 * kSecond);
  EXPECT_EQ(f.server.webhook_cert_validity_ns, 8760 * 3600 * kSecond);
  EXPECT_EQ(f.server.webhook_sync_period_ns, 10 * kSecond);
  EXPECT_EQ(f.logging.log_format, "text");
  EXPECT_EQ(f.logging.log_level, "info");
}

TEST_F(WebhookFlagsTest, EnvironmentFallbacks) {
  {
    ScopedEnv ns("POD_NAMESPACE", "kubelet-policy-system-2");
    WebhookFlags f = MustParse({});
    EXPECT_EQ(f.election.lease_namespace, "kubelet-policy-system-2");
    EXPECT_EQ(f.server.webhook_namespace, "kubelet-policy-system-2");
    // a flag wins over the environment
    f = MustParse({"--leader-elect-namespace", "a", "--webhook-namespace=b"});
    EXPECT_EQ(f.election.lease_namespace, "a");
    EXPECT_EQ(f.server.webhook_namespace, "b");
  }
  {
    // set but empty: the default
    ScopedEnv ns("POD_NAMESPACE", "");
    const WebhookFlags f = MustParse({});
    EXPECT_EQ(f.election.lease_namespace, "kube-system");
    EXPECT_EQ(f.server.webhook_namespace, "kubelet-policy-system");
  }
}

// What the install manifests, the e2e suite and the demo pass (deploy/base, the Helm chart,
// e2e/testenv/controllertests, scripts/demo.sh): all must keep parsing.
TEST_F(WebhookFlagsTest, ArgumentsOfTheInstallAndTheTestsParse) {
  WebhookFlags f = MustParse(
      {"--leader-elect=true", "--health-addr=:8081", "--metrics-addr=:8080", "--webhook-addr=:9443",
       "--webhook-cert-dir=/var/run/kubelet-policy-controller/webhook-certs",
       "--webhook-cert-mode=self-managed", "--log-format=json", "--log-level=info"});
  EXPECT_EQ(f.server.webhook_cert_mode, "self-managed");
  f = MustParse({"--kubeconfig", "/tmp/webhook.kubeconfig", "--leader-elect-namespace",
                 "kubelet-policy-system", "--health-addr", "127.0.0.1:0", "--metrics-addr",
                 "127.0.0.1:0", "--log-format", "json", "--leader-elect-lease-duration=10s",
                 "--leader-elect-renew-deadline=7s", "--leader-elect-retry-period=1s",
                 "--local-webhooks", "--webhook-addr=:9555", "--webhook-cert-sync-period=1s",
                 "--webhook-cert-mode=self-managed", "--webhook-cert-validity=2h"});
  EXPECT_EQ(f.server.webhook_addr, ":9555");
  EXPECT_TRUE(f.server.local_webhooks);
  EXPECT_EQ(f.election.retry_period_ns, kSecond);
  EXPECT_EQ(f.connection.kubeconfig, "/tmp/webhook.kubeconfig");
}

TEST_F(WebhookFlagsTest, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--webhook-ca-validity=forever"}, "--webhook-ca-validity: must be a positive duration"},
      {{"--webhook-cert-mode", "manual"},
       "--webhook-cert-mode: must be self-managed or cert-manager"},
      {{"--local-webhooks=yes"}, "--local-webhooks: must be true or false, got \"yes\""},
      {{"--kube-api-qps=0"}, "--kube-api-qps: must be a positive number"},
      {{"--log-format=yaml"}, "--log-format: must be text or json, got \"yaml\""},
      {{"--webhook-addr"},
       "--webhook-addr needs a value: --webhook-addr ADDR or --webhook-addr=ADDR"},
  };
  for (const auto& [args, want] : cases) {
    EXPECT_NE(ParseError(args).find(want), std::string::npos)
        << Join(args) << " -> " << ParseError(args) << "\nwant: " << want;
  }
}

// The operator's flags are not the webhook's.
TEST_F(WebhookFlagsTest, OperatorFlagsAreUnknown) {
  for (const char* flag : {"--workers=2", "--configz-qps=5", "--agent-image=x",
                           "--remediation-namespace=x", "--file-audit-interval=1h"}) {
    EXPECT_EQ(ParseError({flag}), std::string("unknown flag \"") + flag + "\"");
  }
}

TEST_F(WebhookFlagsTest, ChecksAcrossFlags) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--local-webhooks", "--webhook-addr=:9443"}, ""},
      {{"--local-webhooks", "--webhook-cert-mode=cert-manager"},
       "--local-webhooks makes its own certificates: it needs --webhook-cert-mode=self-managed"},
      {{"--local-webhooks", "--webhook-addr=:0"},
       "--local-webhooks needs a fixed port in --webhook-addr, got \":0\""},
      {{"--local-webhooks", "--webhook-addr=:https"},
       "--local-webhooks needs a fixed port in --webhook-addr, got \":https\""},
      {{"--webhook-addr="},
       "--webhook-addr must not be empty: serving the admission webhooks is all `webhook` does"},
      {{"--local-webhooks", "--webhook-addr="},
       "--webhook-addr must not be empty: serving the admission webhooks is all `webhook` does"},
      {{"--webhook-cert-mode=cert-manager", "--webhook-cert-dir=/certs"}, ""},
      {{"--leader-elect-renew-deadline=15s"},
       "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration"},
      {{"--leader-elect-retry-period=10s"},
       "--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline"},
  };
  for (const auto& [args, want] : cases) {
    auto line = ParseWebhookFlags(args);
    if (want.empty()) {
      EXPECT_TRUE(line.ok()) << Join(args) << ": " << line.status().message();
    } else {
      EXPECT_EQ(line.ok() ? "<parsed>" : line.status().message(), want) << Join(args);
    }
  }
}

TEST(LocalWebhookPortTest, FixedPortsOnly) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {":9443", "9443"},  {"0.0.0.0:8443", "8443"}, {"[::]:443", "443"},
      {"9443", "9443"},   {":0", std::nullopt},     {":", std::nullopt},
      {"", std::nullopt}, {":https", std::nullopt}, {"localhost", std::nullopt}};
  for (const auto& [addr, want] : cases) EXPECT_EQ(LocalWebhookPort(addr), want) << addr;
}

TEST_F(WebhookFlagsTest, HelpGroupsAreTrue) {
  auto line = ParseWebhookFlags({"--help"});
  ASSERT_TRUE(line.ok() && line->help);
  EXPECT_EQ(line->help->rfind("Usage:\n  kubelet-policy-controller webhook [flags]\n", 0), 0u);
  const std::map<std::string, std::vector<std::string>> want = {
      {"Kubernetes connection",
       {"--kubeconfig", "--context", "--insecure-skip-tls-verify", "--kube-api-qps",
        "--kube-api-burst"}},
      {"Leader election (only the leader writes the self-managed certificates)",
       {"--leader-elect", "--leader-elect-namespace", "--leader-elect-name",
        "--leader-elect-lease-duration", "--leader-elect-renew-deadline",
        "--leader-elect-retry-period"}},
      {"Health and metrics", {"--health-addr", "--metrics-addr"}},
      {"Admission webhooks (HTTPS, every replica; /validate-kubeletpolicy and "
       "/mutate-kubeletpolicy)",
       {"--webhook-addr", "--webhook-cert-mode", "--webhook-cert-dir", "--local-webhooks",
        "--webhook-namespace", "--webhook-service-name", "--webhook-secret-name",
        "--webhook-configuration-name", "--webhook-ca-validity", "--webhook-cert-validity",
        "--webhook-cert-sync-period"}},
      {"Logging", {"--log-format", "--log-level"}},
  };
  EXPECT_EQ(HelpGroups(*line->help), want) << *line->help;
  for (const auto& c : ValueCases()) EXPECT_NE(HelpEntry(*line->help, c.flag), "") << c.flag;
}

TEST_F(WebhookFlagsTest, HelpShowsDefaultsAndEnvironment) {
  auto line = ParseWebhookFlags({"--help"});
  ASSERT_TRUE(line.ok() && line->help);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--leader-elect-name", "(default kubelet-policy-controller-webhook)"},
      {"--leader-elect-namespace", "(default $POD_NAMESPACE, else kube-system)"},
      {"--webhook-namespace", "(default $POD_NAMESPACE, else kubelet-policy-system)"},
      {"--webhook-addr", "(default :9443)"},
      {"--webhook-ca-validity", "(default 87600h)"},
      {"--webhook-cert-validity", "(default 8760h)"},
      {"--webhook-cert-dir", "(default /var/run/kubelet-policy-controller/webhook-certs)"},
      {"--webhook-cert-sync-period", "(default 10s)"},
  };
  for (const auto& [flag, want] : cases) {
    EXPECT_NE(HelpEntry(*line->help, flag).find(want), std::string::npos)
        << flag << ": " << HelpEntry(*line->help, flag);
  }
}

TEST_F(WebhookFlagsTest, RunWebhookExitCodesForHelpAndUsageErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(RunWebhook({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("Admission webhooks"), std::string::npos);
  EXPECT_EQ(err.str(), "");

  std::ostringstream out2, err2;
  EXPECT_EQ(RunWebhook({"--no-such-flag"}, out2, err2), 2);
  EXPECT_EQ(out2.str(), "");
  EXPECT_EQ(err2.str(),
            "error: unknown flag \"--no-such-flag\"\n\nRun 'kubelet-policy-controller webhook "
            "--help' for usage.\n");

  std::ostringstream out3, err3;
  EXPECT_EQ(RunWebhook({"--local-webhooks", "--webhook-addr=:0"}, out3, err3), 2);
  EXPECT_NE(err3.str().find("error: --local-webhooks needs a fixed port"), std::string::npos)
      << err3.str();
}

}  // namespace
}  // namespace kpc::cli
