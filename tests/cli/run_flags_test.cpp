#include "cli/run_flags.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>

#include "cli/run_command.h"
#include "tests/cli/flag_parsing.h"
#include "tests/cli/help_text.h"
#include "tests/cli/scoped_env.h"

namespace kpc::cli {
namespace {

using help_text::HelpEntry;
using help_text::HelpGroups;

constexpr int64_t kSecond = 1'000'000'000;

// Every test starts without the variables the flags fall back to.
class RunFlagsTest : public ::testing::Test {
 protected:
  ScopedEnv pod_namespace_{"POD_NAMESPACE", std::nullopt};
  ScopedEnv agent_image_{"AGENT_IMAGE", std::nullopt};
};

RunFlags MustParse(const std::vector<std::string>& args) {
  return flag_parsing::MustParseWith(ParseRunFlags, args);
}

std::string ParseError(const std::vector<std::string>& args) {
  return flag_parsing::ParseErrorWith(ParseRunFlags, args);
}

std::string Str(double d) {
  std::ostringstream out;
  out << d;
  return out.str();
}

using flag_parsing::Join;

// A flag taking a value, the value given, and the field it lands in (as text).
struct ValueCase {
  std::string flag;
  std::string value;
  std::function<std::string(const RunFlags&)> field;
  std::string want;
};

const std::vector<ValueCase>& ValueCases() {
  static const std::vector<ValueCase> cases = {
      {"--kubeconfig", "/k/config", [](const RunFlags& f) { return f.connection.kubeconfig; },
       "/k/config"},
      {"--context", "kind-a", [](const RunFlags& f) { return f.connection.context; }, "kind-a"},
      {"--kube-api-qps", "60.5", [](const RunFlags& f) { return Str(f.connection.qps); }, "60.5"},
      {"--kube-api-burst", "200",
       [](const RunFlags& f) { return std::to_string(f.connection.burst); }, "200"},
      {"--workers", "4", [](const RunFlags& f) { return std::to_string(f.workers); }, "4"},
      {"--workers", "3.0", [](const RunFlags& f) { return std::to_string(f.workers); }, "3"},
      {"--configz-concurrency", "20",
       [](const RunFlags& f) { return std::to_string(f.configz_concurrency); }, "20"},
      {"--configz-qps", "12.5", [](const RunFlags& f) { return Str(f.configz_qps); }, "12.5"},
      {"--configz-source", "apiserver-proxy", [](const RunFlags& f) { return f.configz_source; },
       "apiserver-proxy"},
      {"--kubelet-preferred-address-types", "Hostname, InternalIP",
       [](const RunFlags& f) { return f.kubelet_address_types; }, "Hostname, InternalIP"},
      {"--kubelet-certificate-authority", "/etc/kubelet-ca.crt",
       [](const RunFlags& f) { return f.kubelet_ca_file; }, "/etc/kubelet-ca.crt"},
      {"--kubelet-client-service-account", "ns/reader",
       [](const RunFlags& f) { return f.kubelet_client_service_account; }, "ns/reader"},
      {"--configz-timeout", "5s",
       [](const RunFlags& f) { return std::to_string(f.configz_timeout_ns); },
       std::to_string(5 * kSecond)},
      {"--configz-timeout", "1m30s",
       [](const RunFlags& f) { return std::to_string(f.configz_timeout_ns); },
       std::to_string(90 * kSecond)},
      {"--configz-max-bytes", "8Mi",
       [](const RunFlags& f) { return std::to_string(f.configz_max_bytes); },
       std::to_string(8 << 20)},
      {"--configz-max-bytes", "65536",
       [](const RunFlags& f) { return std::to_string(f.configz_max_bytes); }, "65536"},
      {"--configz-max-bytes", "64Mi",
       [](const RunFlags& f) { return std::to_string(f.configz_max_bytes); },
       std::to_string(64 << 20)},
      {"--configz-max-bytes", "512Ki",
       [](const RunFlags& f) { return std::to_string(f.configz_max_bytes); },
       std::to_string(512 << 10)},
      {"--leader-elect-namespace", "ns1",
       [](const RunFlags& f) { return f.election.lease_namespace; }, "ns1"},
      {"--leader-elect-name", "lease1", [](const RunFlags& f) { return f.election.lease_name; },
       "lease1"},
      {"--leader-elect-lease-duration", "20s",
       [](const RunFlags& f) { return std::to_string(f.election.lease_duration_ns); },
       std::to_string(20 * kSecond)},
      {"--leader-elect-renew-deadline", "5s",
       [](const RunFlags& f) { return std::to_string(f.election.renew_deadline_ns); },
       std::to_string(5 * kSecond)},
      {"--leader-elect-retry-period", "1s",
       [](const RunFlags& f) { return std::to_string(f.election.retry_period_ns); },
       std::to_string(kSecond)},
      {"--health-addr", "127.0.0.1:0", [](const RunFlags& f) { return f.serving.health_addr; },
       "127.0.0.1:0"},
      {"--metrics-addr", ":9090", [](const RunFlags& f) { return f.serving.metrics_addr; },
       ":9090"},
      {"--remediation-namespace", "rns", [](const RunFlags& f) { return f.remediation_namespace; },
       "rns"},
      {"--agent-image", "img@sha256:ab", [](const RunFlags& f) { return f.agent_image; },
       "img@sha256:ab"},
      {"--agent-image-pull-policy", "Always",
       [](const RunFlags& f) { return f.agent_image_pull_policy; }, "Always"},
      {"--agent-host-path", "/run/x", [](const RunFlags& f) { return Join(f.extra_host_paths); },
       "/run/x"},
      {"--kubelet-restart-command", "systemctl restart kubelet",
       [](const RunFlags& f) { return f.restart_command; }, "systemctl restart kubelet"},
      {"--remediation-job-ttl", "2h",
       [](const RunFlags& f) { return std::to_string(f.job_ttl_ns); },
       std::to_string(2 * 3600 * kSecond)},
      {"--file-audit-interval", "30m",
       [](const RunFlags& f) { return std::to_string(f.file_audit_interval_ns); },
       std::to_string(1800 * kSecond)},
      {"--file-audit-qps", "0.5", [](const RunFlags& f) { return Str(f.file_audit_qps); }, "0.5"},
      {"--log-format", "json", [](const RunFlags& f) { return f.logging.log_format; }, "json"},
      {"--log-level", "debug", [](const RunFlags& f) { return f.logging.log_level; }, "debug"},
      {"--log-level", "warning", [](const RunFlags& f) { return f.logging.log_level; }, "warning"},
  };
  return cases;
}

TEST_F(RunFlagsTest, EveryValueFlagParsesInBothForms) {
  for (const auto& c : ValueCases()) {
    EXPECT_EQ(c.field(MustParse({c.flag, c.value})), c.want) << c.flag << " " << c.value;
    EXPECT_EQ(c.field(MustParse({c.flag + "=" + c.value})), c.want) << c.flag << "=" << c.value;
  }
}

TEST_F(RunFlagsTest, BooleanFlags) {
  struct Case {
    std::vector<std::string> args;
    std::function<bool(const RunFlags&)> field;
    bool want;
  };
  const std::vector<Case> cases = {
      {{"--insecure-skip-tls-verify"},
       [](const RunFlags& f) { return f.connection.allow_insecure; },
       true},
      {{"--insecure-skip-tls-verify=true"},
       [](const RunFlags& f) { return f.connection.allow_insecure; },
       true},
      {{"--insecure-skip-tls-verify=false"},
       [](const RunFlags& f) { return f.connection.allow_insecure; },
       false},
      {{"--leader-elect"}, [](const RunFlags& f) { return f.election.leader_elect; }, true},
      {{"--leader-elect=true"}, [](const RunFlags& f) { return f.election.leader_elect; }, true},
      {{"--leader-elect=false"}, [](const RunFlags& f) { return f.election.leader_elect; }, false},
      {{"--leader-elect=false", "--leader-elect"},
       [](const RunFlags& f) { return f.election.leader_elect; },
       true},
      // a boolean flag never takes the next word: --workers stays a flag
      {{"--leader-elect", "--workers=3"},
       [](const RunFlags& f) { return f.election.leader_elect && f.workers == 3; },
       true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.field(MustParse(c.args)), c.want) << Join(c.args);
  }
}

TEST_F(RunFlagsTest, DefaultsAreTheDocumentedOnes) {
  const RunFlags f = MustParse({});
  EXPECT_EQ(f.connection.kubeconfig, "");
  EXPECT_EQ(f.connection.context, "");
  EXPECT_FALSE(f.connection.allow_insecure);
  EXPECT_EQ(f.connection.qps, 50);
  EXPECT_EQ(f.connection.burst, 100);
  EXPECT_EQ(f.workers, 2);
  EXPECT_EQ(f.configz_concurrency, 10);
  EXPECT_EQ(f.configz_source, "kubelet");
  EXPECT_EQ(f.kubelet_address_types, "InternalIP,ExternalIP,Hostname");
  EXPECT_EQ(f.kubelet_ca_file, "");
  EXPECT_FALSE(f.kubelet_insecure_tls);
  EXPECT_EQ(f.kubelet_client_service_account, "kubelet-policy-controller-kubelet-client");
  EXPECT_EQ(f.configz_qps, 40);
  EXPECT_EQ(f.configz_timeout_ns, 10 * kSecond);
  EXPECT_EQ(f.configz_max_bytes, 4 << 20);
  EXPECT_TRUE(f.election.leader_elect);
  EXPECT_EQ(f.election.lease_namespace, "kube-system");
  EXPECT_EQ(f.election.lease_name, "kubelet-policy-controller");
  EXPECT_EQ(f.election.lease_duration_ns, 15 * kSecond);
  EXPECT_EQ(f.election.renew_deadline_ns, 10 * kSecond);
  EXPECT_EQ(f.election.retry_period_ns, 2 * kSecond);
  EXPECT_EQ(f.serving.health_addr, ":8081");
  EXPECT_EQ(f.serving.metrics_addr, ":8080");
  EXPECT_EQ(f.remediation_namespace, "kubelet-policy-remediation");
  EXPECT_EQ(f.agent_image, "");
  EXPECT_EQ(f.agent_image_pull_policy, "IfNotPresent");
  EXPECT_TRUE(f.extra_host_paths.empty());
  EXPECT_EQ(f.restart_command, "");
  EXPECT_EQ(f.job_ttl_ns, 24 * 3600 * kSecond);
  EXPECT_EQ(f.file_audit_interval_ns, 3600 * kSecond);
  EXPECT_EQ(f.file_audit_qps, 5);
  EXPECT_EQ(f.logging.log_format, "text");
  EXPECT_EQ(f.logging.log_level, "info");
}

TEST_F(RunFlagsTest, EnvironmentFallbacks) {
  {
    ScopedEnv ns("POD_NAMESPACE", "kubelet-policy-system-2");
    ScopedEnv image("AGENT_IMAGE", "registry.example/kpc@sha256:00");
    RunFlags f = MustParse({});
    EXPECT_EQ(f.election.lease_namespace, "kubelet-policy-system-2");
    EXPECT_EQ(f.agent_image, "registry.example/kpc@sha256:00");
    // a flag wins over the environment
    f = MustParse({"--leader-elect-namespace", "a", "--agent-image", "c"});
    EXPECT_EQ(f.election.lease_namespace, "a");
    EXPECT_EQ(f.agent_image, "c");
  }
  {
    // set but empty: the default
    ScopedEnv ns("POD_NAMESPACE", "");
    ScopedEnv image("AGENT_IMAGE", "");
    const RunFlags f = MustParse({});
    EXPECT_EQ(f.election.lease_namespace, "kube-system");
    EXPECT_EQ(f.agent_image, "");
  }
}

TEST_F(RunFlagsTest, RepeatedFlags) {
  RunFlags f =
      MustParse({"--agent-host-path", "/a", "--agent-host-path=/b", "--agent-host-path", "/run/c"});
  EXPECT_EQ(Join(f.extra_host_paths), "/a,/b,/run/c");
  // a single-valued flag given twice: the last one wins
  f = MustParse({"--workers", "3", "--workers=4", "--log-level", "debug", "--log-level=warn"});
  EXPECT_EQ(f.workers, 4);
  EXPECT_EQ(f.logging.log_level, "warn");
}

TEST_F(RunFlagsTest, EmptyAndFlagLikeValues) {
  // `--flag=` is an empty value and does not swallow the next word
  RunFlags f = MustParse({"--agent-image=", "--leader-elect=false", "--workers", "3"});
  EXPECT_EQ(f.agent_image, "");
  EXPECT_FALSE(f.election.leader_elect);
  EXPECT_EQ(f.workers, 3);
  f = MustParse({"--kubeconfig", "", "--context="});
  EXPECT_EQ(f.connection.kubeconfig, "");
  EXPECT_EQ(f.connection.context, "");
  // the word after a flag taking a value is its value, whatever it looks like (also the name
  // of a flag that moved to `webhook`)
  f = MustParse({"--kubeconfig", "--webhook-addr=", "--kubelet-restart-command", "-v"});
  EXPECT_EQ(f.connection.kubeconfig, "--webhook-addr=");
  EXPECT_EQ(f.restart_command, "-v");
  // values with '='
  f = MustParse({"--kubelet-restart-command=env A=1 systemctl restart kubelet"});
  EXPECT_EQ(f.restart_command, "env A=1 systemctl restart kubelet");
}

// What the install manifests and the e2e suite pass (deploy/base/deployment.yaml, the Helm
// chart, e2e/testenv/controllertests, scripts/demo.sh): all must keep parsing.
TEST_F(RunFlagsTest, ArgumentsOfTheInstallAndTheTestsParse) {
  const std::vector<std::string> deployment = {"--leader-elect=true",
                                               "--health-addr=:8081",
                                               "--metrics-addr=:8080",
                                               "--remediation-namespace=kubelet-policy-remediation",
                                               "--agent-image=kubelet-policy-controller:test",
                                               "--file-audit-interval=1h",
                                               "--kube-api-qps=50",
                                               "--kube-api-burst=100",
                                               "--workers=2",
                                               "--configz-concurrency=10",
                                               "--configz-qps=40",
                                               "--configz-timeout=10s",
                                               "--log-format=json",
                                               "--log-level=info",
                                               "--kubeconfig",
                                               "/nonexistent/kubeconfig",
                                               "--log-format",
                                               "text"};
  RunFlags f = MustParse(deployment);
  EXPECT_EQ(f.connection.kubeconfig, "/nonexistent/kubeconfig");
  EXPECT_EQ(f.logging.log_format, "text");
  EXPECT_EQ(f.agent_image, "kubelet-policy-controller:test");

  const std::vector<std::string> e2e = {"--kubeconfig",
                                        "/tmp/sa.kubeconfig",
                                        "--leader-elect-namespace",
                                        "kubelet-policy-system",
                                        "--health-addr",
                                        "127.0.0.1:0",
                                        "--metrics-addr",
                                        "127.0.0.1:0",
                                        "--log-format",
                                        "json",
                                        "--configz-timeout=5s",
                                        "--leader-elect=false",
                                        "--leader-elect-lease-duration=3s",
                                        "--leader-elect-renew-deadline=2s",
                                        "--leader-elect-retry-period=500ms",
                                        "--agent-image",
                                        "kubelet-policy-controller:e2e",
                                        "--agent-host-path",
                                        "/run/testenv",
                                        "--kubelet-restart-command",
                                        "/bin/sh -c true"};
  f = MustParse(e2e);
  EXPECT_EQ(f.election.retry_period_ns, kSecond / 2);
  EXPECT_EQ(f.restart_command, "/bin/sh -c true");
}

// `run` no longer serves admission traffic: every flag of the admission server, in either
// form, is refused with where it went; none is listed in --help.
TEST_F(RunFlagsTest, WebhookFlagsSayTheyMovedToTheWebhookCommand) {
  const std::vector<std::pair<std::string, std::string>> moved = {
      {"--webhook-addr", ":9443"},          {"--webhook-cert-mode", "self-managed"},
      {"--webhook-cert-dir", "/certs"},     {"--local-webhooks", ""},
      {"--webhook-namespace", "ns"},        {"--webhook-service-name", "svc"},
      {"--webhook-secret-name", "sec"},     {"--webhook-configuration-name", "cfg"},
      {"--webhook-ca-validity", "100h"},    {"--webhook-cert-validity", "10h"},
      {"--webhook-cert-sync-period", "1s"},
  };
  const std::string why =
      ": moved to `kubelet-policy-controller webhook`: the admission webhooks run in their own "
      "process; remove it from `run`";
  auto help = ParseRunFlags({"--help"});
  ASSERT_TRUE(help.ok() && help->help);
  for (const auto& [flag, value] : moved) {
    std::vector<std::vector<std::string>> forms;
    if (value.empty()) {  // a boolean flag
      forms = {{flag}, {"--workers=3", flag}, {flag + "=false"}, {flag + "=true"}};
    } else {
      forms = {{flag + "=" + value}, {flag, value, "--workers=3"}};
    }
    for (const auto& args : forms) {
      EXPECT_EQ(ParseError(args), flag + why) << Join(args);
    }
    EXPECT_EQ(HelpEntry(*help->help, flag), "") << flag;
  }
  // `--webhook-addr=` (the old way to turn the server off) is refused too
  EXPECT_EQ(ParseError({"--webhook-addr="}), "--webhook-addr" + why);

  std::ostringstream out, err;
  EXPECT_EQ(RunOperator({"--local-webhooks", "--webhook-addr=:9443"}, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_NE(err.str().find("moved to `kubelet-policy-controller webhook`"), std::string::npos)
      << err.str();
}

TEST_F(RunFlagsTest, BadValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string want;  // part of the message
  };
  const std::vector<Case> cases = {
      {{"--workers", "abc"}, "--workers: must be a positive whole number, got \"abc\""},
      {{"--workers=2.5"}, "--workers: must be a positive whole number"},
      {{"--workers=0"}, "--workers: must be a positive whole number"},
      {{"--kube-api-burst=-1"}, "--kube-api-burst: must be a positive whole number"},
      {{"--configz-concurrency", "1e12"}, "--configz-concurrency: must be a positive whole number"},
      {{"--kube-api-qps", "fast"}, "--kube-api-qps: must be a positive number, got \"fast\""},
      {{"--kube-api-qps=0"}, "--kube-api-qps: must be a positive number"},
      {{"--kube-api-qps=nan"}, "--kube-api-qps: must be a positive number"},
      {{"--file-audit-qps="}, "--file-audit-qps: must be a positive number, got \"\""},
      {{"--configz-timeout", "10"}, "--configz-timeout: must be a positive duration like 10s"},
      {{"--configz-timeout=-1s"}, "--configz-timeout: must be a positive duration"},
      {{"--configz-max-bytes=65535"},
       "--configz-max-bytes: must be a size from 64Ki to 64Mi like 4Mi or 4194304, got \"65535\""},
      {{"--configz-max-bytes=67108865"}, "--configz-max-bytes: must be a size from 64Ki to 64Mi"},
      {{"--configz-max-bytes=4MiB"}, "--configz-max-bytes: must be a size from 64Ki to 64Mi"},
      {{"--configz-max-bytes=4M"}, "--configz-max-bytes: must be a size from 64Ki to 64Mi"},
      {{"--configz-max-bytes=-4Mi"}, "--configz-max-bytes: must be a size from 64Ki to 64Mi"},
      {{"--configz-max-bytes=99999999999999999999Gi"},
       "--configz-max-bytes: must be a size from 64Ki to 64Mi"},
      {{"--remediation-job-ttl=0s"}, "--remediation-job-ttl: must be a positive duration"},
      {{"--leader-elect=yes"}, "--leader-elect: must be true or false, got \"yes\""},
      {{"--leader-elect="}, "--leader-elect: must be true or false, got \"\""},
      {{"--insecure-skip-tls-verify=1"}, "--insecure-skip-tls-verify: must be true or false"},
      {{"--log-format=yaml"}, "--log-format: must be text or json, got \"yaml\""},
      {{"--configz-source=direct"},
       "--configz-source: must be kubelet or apiserver-proxy, got \"direct\""},
      {{"--kubelet-preferred-address-types=InternalIP,Internal"},
       "--kubelet-preferred-address-types: unknown node address type \"Internal\": use a "
       "comma-separated list of Hostname, InternalIP, ExternalIP, InternalDNS, ExternalDNS"},
      {{"--kubelet-preferred-address-types="},
       "--kubelet-preferred-address-types: unknown node address type \"\""},
      {{"--kubelet-preferred-address-types=Hostname,Hostname"},
       "--kubelet-preferred-address-types: node address type Hostname is listed twice"},
      {{"--log-level", "loud"},
       "--log-level: must be trace, debug, info, warn or error, got \"loud\""},
      {{"--agent-host-path", "relative"},
       "--agent-host-path: must be an absolute path without \"..\""},
      {{"--agent-host-path=/etc/../root"}, "--agent-host-path: must be an absolute path"},
      {{"--agent-host-path="}, "--agent-host-path: needs a PATH"},
      {{"--kubeconfig"}, "--kubeconfig needs a value: --kubeconfig FILE or --kubeconfig=FILE"},
      {{"--log-level", "debug", "--workers"}, "--workers needs a value"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(ParseError(c.args).find(c.want), std::string::npos)
        << Join(c.args) << " -> " << ParseError(c.args) << "\nwant: " << c.want;
  }
}

TEST_F(RunFlagsTest, UnknownFlagsAndStrayWords) {
  EXPECT_EQ(ParseError({"--bogus"}), "unknown flag \"--bogus\"");
  EXPECT_EQ(ParseError({"--workers", "3", "--kubeconfig-file=x"}),
            "unknown flag \"--kubeconfig-file=x\"");
  EXPECT_EQ(ParseError({"-x"}), "unknown flag \"-x\"");
  EXPECT_EQ(ParseError({"--leader-elect", "false"}),
            "unexpected argument \"false\" (flags start with --)");
  EXPECT_EQ(ParseError({"--agent-host-path", "/a", "/b"}),
            "unexpected argument \"/b\" (flags start with --)");
  // no prefix matching
  EXPECT_EQ(ParseError({"--work=3"}), "unknown flag \"--work=3\"");
}

TEST_F(RunFlagsTest, ChecksAcrossFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string want;  // "" when valid
  };
  const std::vector<Case> cases = {
      {{"--configz-qps=50"}, ""},
      // Direct kubelet fetches are not API server requests.
      {{"--configz-qps=51"}, ""},
      {{"--configz-source=apiserver-proxy", "--configz-qps=50"}, ""},
      {{"--configz-source=apiserver-proxy", "--configz-qps=51"},
       "--configz-qps (51) must not exceed --kube-api-qps (50): with --configz-source "
       "apiserver-proxy every /configz fetch is an API server request"},
      {{"--kubelet-insecure-tls", "--kubelet-certificate-authority=/ca.crt"},
       "--kubelet-insecure-tls and --kubelet-certificate-authority contradict each other: give "
       "the CA to verify kubelets with, or (self-signed kubelet certificates) skip verification"},
      {{"--kubelet-insecure-tls"}, ""},
      {{"--kube-api-qps=100", "--configz-qps=80"}, ""},
      {{"--leader-elect-renew-deadline=15s"},
       "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration"},
      {{"--leader-elect-retry-period=10s"},
       "--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline"},
      {{"--leader-elect-lease-duration=1m", "--leader-elect-renew-deadline=40s",
        "--leader-elect-retry-period=10s"},
       ""},
  };
  for (const auto& c : cases) {
    auto line = ParseRunFlags(c.args);
    if (c.want.empty()) {
      EXPECT_TRUE(line.ok()) << Join(c.args) << ": " << line.status().message();
    } else {
      EXPECT_EQ(line.ok() ? "<parsed>" : line.status().message(), c.want) << Join(c.args);
    }
  }
}

TEST_F(RunFlagsTest, HelpIsAValueNotAnError) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"--workers", "3", "--help"}, {"--configz-qps=500", "--help"}}) {
    auto line = ParseRunFlags(args);
    ASSERT_TRUE(line.ok()) << Join(args) << ": " << line.status().message();
    ASSERT_TRUE(line->help) << Join(args);
    EXPECT_EQ(line->help->rfind("Usage:\n  kubelet-policy-controller run [flags]\n", 0), 0u);
  }
}

TEST_F(RunFlagsTest, HelpGroupsAreTrue) {
  auto line = ParseRunFlags({"--help"});
  ASSERT_TRUE(line.ok() && line->help);
  const auto groups = HelpGroups(*line->help);
  const std::map<std::string, std::vector<std::string>> want = {
      {"Kubernetes connection",
       {"--kubeconfig", "--context", "--insecure-skip-tls-verify", "--kube-api-qps",
        "--kube-api-burst"}},
      {"Configz checks",
       {"--workers", "--configz-concurrency", "--configz-qps", "--configz-timeout",
        "--configz-max-bytes"}},
      {"Kubelet connection (where /configz is read)",
       {"--configz-source", "--kubelet-preferred-address-types", "--kubelet-certificate-authority",
        "--kubelet-insecure-tls", "--kubelet-client-service-account"}},
      {"Leader election (only the leader reconciles)",
       {"--leader-elect", "--leader-elect-namespace", "--leader-elect-name",
        "--leader-elect-lease-duration", "--leader-elect-renew-deadline",
        "--leader-elect-retry-period"}},
      {"Health and metrics", {"--health-addr", "--metrics-addr"}},
      {"Agent Jobs (remediation and file audits)",
       {"--remediation-namespace", "--agent-image", "--agent-image-pull-policy",
        "--agent-host-path"}},
      {"Remediation", {"--kubelet-restart-command", "--remediation-job-ttl"}},
      {"File audits", {"--file-audit-interval", "--file-audit-qps"}},
      {"Logging", {"--log-format", "--log-level"}},
  };
  EXPECT_EQ(groups, want) << *line->help;
  // every flag the table above parses is listed
  for (const auto& c : ValueCases()) {
    EXPECT_NE(HelpEntry(*line->help, c.flag), "") << c.flag;
  }
}

TEST_F(RunFlagsTest, HelpShowsDefaultsAndEnvironment) {
  auto line = ParseRunFlags({"--help"});
  ASSERT_TRUE(line.ok() && line->help);
  const std::string& help = *line->help;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--kube-api-qps", "--kube-api-qps N "},
      {"--kube-api-qps", "(default 50)"},
      {"--configz-timeout", "--configz-timeout DURATION "},
      {"--configz-timeout", "(default 10s)"},
      {"--configz-max-bytes", "--configz-max-bytes BYTES "},
      {"--configz-max-bytes", "(default 4Mi)"},
      {"--leader-elect", "--leader-elect[=false] "},
      {"--leader-elect", "(default true)"},
      {"--leader-elect-namespace", "(default $POD_NAMESPACE, else kube-system)"},
      {"--agent-image", "(default $AGENT_IMAGE, else kubelet-policy-controller:latest)"},
      {"--agent-host-path", "(repeatable)"},
      {"--file-audit-interval", "(default 1h)"},
      {"--remediation-job-ttl", "(default 24h)"},
      {"--log-level", "(default info)"},
  };
  for (const auto& [flag, want] : cases) {
    EXPECT_NE(HelpEntry(help, flag).find(want), std::string::npos)
        << flag << ": " << HelpEntry(help, flag);
  }
  // a flag without a default shows none
  EXPECT_EQ(HelpEntry(help, "--insecure-skip-tls-verify").find("default"), std::string::npos);
}

TEST_F(RunFlagsTest, RunOperatorExitCodesForHelpAndUsageErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(RunOperator({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("Kubernetes connection:"), std::string::npos);
  EXPECT_EQ(err.str(), "");

  std::ostringstream out2, err2;
  EXPECT_EQ(RunOperator({"--no-such-flag"}, out2, err2), 2);
  EXPECT_EQ(out2.str(), "");
  EXPECT_EQ(err2.str(),
            "error: unknown flag \"--no-such-flag\"\n\nRun 'kubelet-policy-controller run --help' "
            "for usage.\n");

  std::ostringstream out3, err3;
  EXPECT_EQ(RunOperator({"--workers=x"}, out3, err3), 2);
  EXPECT_NE(err3.str().find("error: --workers: must be a positive whole number"),
            std::string::npos);
}

}  // namespace
}  // namespace kpc::cli
