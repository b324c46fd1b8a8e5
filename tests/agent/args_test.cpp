// ParseAgentArgs: the argv shapes the controller builds, flag syntax, help and usage errors.
#include "agent/args.h"

#include <gtest/gtest.h>

namespace kpc::agent {
namespace {

using nlohmann::json;
using Args = std::vector<std::string>;

AgentOptions Options(const Args& args) {
  auto parsed = ParseAgentArgs(args);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  if (!parsed.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<AgentOptions>(*parsed));
  return std::holds_alternative<AgentOptions>(*parsed) ? std::get<AgentOptions>(*parsed)
                                                       : AgentOptions{};
}

std::string Help(const Args& args) {
  auto parsed = ParseAgentArgs(args);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  if (!parsed.ok() || !std::holds_alternative<HelpText>(*parsed)) {
    ADD_FAILURE() << "not help";
    return "";
  }
  return std::get<HelpText>(*parsed).text;
}

// As controller/remediation.cpp RemediateArgs builds them (after "agent", with the kubelet's
// "$$" expansion done), restart command last.
TEST(ParseAgentArgsTest, RemediateAsTheControllerBuildsIt) {
  AgentOptions o = Options({"remediate",
                            "--host-root",
                            "/host",
                            "--config-file",
                            "/etc/kubernetes/kubelet/config.json",
                            "--set",
                            "streamingConnectionIdleTimeout=4h0m0s",
                            "--set",
                            "evictionHard[\"memory.available\"]=100Mi",
                            "--set",
                            "authentication.x509.clientCAFile=$(HOME)/ca.crt; rm -rf /",
                            "--set",
                            "featureGates.SeccompDefault=true",
                            "--file-mode",
                            "/etc/kubernetes/kubelet.conf=0600",
                            "--file-owner",
                            "/etc/kubernetes/kubelet.conf=root:",
                            "--restart-command",
                            "/state/bin/testenv",
                            "restart-kubelet",
                            "--host-root",
                            "/elsewhere",
                            "--no-restart"});
  EXPECT_EQ(o.command, "remediate");
  EXPECT_EQ(o.host_root, "/host");
  EXPECT_EQ(o.proc_root, "/proc");
  EXPECT_EQ(o.config_file, "/etc/kubernetes/kubelet/config.json");
  ASSERT_EQ(o.sets.size(), 4u);
  EXPECT_EQ(o.sets[0].path.ToString(), "streamingConnectionIdleTimeout");
  EXPECT_EQ(o.sets[0].value, "4h0m0s");
  EXPECT_EQ(o.sets[1].text, "evictionHard[\"memory.available\"]=100Mi");
  EXPECT_EQ(o.sets[1].value, "100Mi");
  EXPECT_EQ(o.sets[2].value, "$(HOME)/ca.crt; rm -rf /");
  EXPECT_EQ(o.sets[3].value, true);
  ASSERT_EQ(o.modes.size(), 1u);
  EXPECT_EQ(o.modes[0].path, "/etc/kubernetes/kubelet.conf");
  EXPECT_EQ(o.modes[0].mode, 0600u);
  ASSERT_EQ(o.owners.size(), 1u);
  EXPECT_EQ(o.owners[0].user, "root");
  EXPECT_EQ(o.owners[0].group, "");
  EXPECT_FALSE(o.no_restart);  // after --restart-command: its argument
  EXPECT_EQ(o.restart_command, (Args{"/state/bin/testenv", "restart-kubelet", "--host-root",
                                     "/elsewhere", "--no-restart"}));
  EXPECT_FALSE(o.termination_log.has_value());
  EXPECT_TRUE(o.result_file.empty());
}

TEST(ParseAgentArgsTest, NoRestartAndAuditAsTheControllerBuildsThem) {
  AgentOptions r = Options({"remediate", "--host-root", "/host", "--file-mode",
                            "/etc/kubernetes/pki/ca.crt=0644", "--no-restart"});
  EXPECT_TRUE(r.no_restart);
  EXPECT_TRUE(r.restart_command.empty());
  EXPECT_TRUE(r.sets.empty());
  AgentOptions a = Options({"audit-files", "--host-root", "/host", "--file",
                            "/etc/kubernetes/pki/ca.crt", "--file", "/var/lib/kubelet/$$x"});
  EXPECT_EQ(a.command, "audit-files");
  EXPECT_EQ(a.files, (Args{"/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/$$x"}));
}

TEST(ParseAgentArgsTest, ValuesAreTakenVerbatim) {
  AgentOptions o = Options({"remediate", "--host-root=/h", "--result-file", "-out.json",
                            "--termination-log=", "--proc-root", "--help", "--flags-file",
                            "/etc/default/kubelet", "--flags-file=/etc/sysconfig/kubelet",
                            "--set=eventRecordQPS=5", "--set", "tlsCipherSuites=[\"A\",\"B\"]",
                            "--restart-command=--weird", "", "-x", "--help"});
  EXPECT_EQ(o.host_root, "/h");
  EXPECT_EQ(o.result_file, "-out.json");
  EXPECT_EQ(o.termination_log, std::optional<std::string>(""));
  EXPECT_EQ(o.proc_root, "--help");
  EXPECT_EQ(o.flags_files, (Args{"/etc/default/kubelet", "/etc/sysconfig/kubelet"}));
  ASSERT_EQ(o.sets.size(), 2u);
  EXPECT_EQ(o.sets[0].value, 5);
  EXPECT_EQ(o.sets[1].value, json::array({"A", "B"}));
  EXPECT_EQ(o.restart_command, (Args{"--weird", "", "-x", "--help"}));
}

TEST(ParseAgentArgsTest, ARepeatedSingleFlagKeepsTheLastValue) {
  AgentOptions o = Options({"remediate", "--host-root", "/a", "--host-root", "/b", "--no-restart",
                            "--no-restart", "--config-file", "/x", "--config-file", "/y"});
  EXPECT_EQ(o.host_root, "/b");
  EXPECT_EQ(o.config_file, "/y");
  EXPECT_TRUE(o.no_restart);
}

TEST(ParseAgentArgsTest, Help) {
  for (const Args& args : {Args{"--help"}, Args{"-h"}, Args{"help"}}) {
    std::string text = Help(args);
    EXPECT_NE(text.find("agent remediate --host-root DIR"), std::string::npos) << text;
    EXPECT_NE(text.find("agent audit-files --host-root DIR"), std::string::npos);
    EXPECT_NE(text.find("--restart-command ARG..."), std::string::npos);
    EXPECT_NE(text.find("Exit codes: 0 everything in place"), std::string::npos);
  }
  std::string remediate = Help({"remediate", "--set", "x", "--help"});
  for (const char* heading : {"\nNode:\n", "\nKubelet files (default: detected):\n", "\nChanges:\n",
                              "\nRestart:\n", "\nOutput:\n"}) {
    EXPECT_NE(remediate.find(heading), std::string::npos) << heading << "\n" << remediate;
  }
  EXPECT_NE(remediate.find("--file-owner PATH=USER:GROUP"), std::string::npos);
  EXPECT_NE(remediate.find("(default /proc)"), std::string::npos);
  EXPECT_NE(remediate.find("3 blocked"), std::string::npos);
  EXPECT_EQ(remediate.find("--file PATH"), std::string::npos);
  std::string audit = Help({"audit-files", "-h"});
  EXPECT_NE(audit.find("--file PATH"), std::string::npos) << audit;
  EXPECT_EQ(audit.find("--set"), std::string::npos);
  // After --restart-command, --help is the command's.
  EXPECT_EQ(Options({"remediate", "--host-root", "/h", "--restart-command", "x", "--help"})
                .restart_command,
            (Args{"x", "--help"}));
}

TEST(ParseAgentArgsTest, UsageErrorsNameTheFlag) {
  struct Case {
    Args args;
    std::string message;  // a substring
  };
  for (const Case& c : std::vector<Case>{
           {{}, "missing subcommand"},
           {{"explode"}, "unknown subcommand \"explode\""},
           {{"remediate"}, "--host-root is required"},
           {{"remediate", "--host-root"}, "--host-root"},
           {{"remediate", "--host-root="}, "--host-root needs a directory"},
           {{"remediate", "--host-root", "/h", "--bogus=1"}, "unknown flag --bogus for agent"},
           {{"remediate", "--host-root", "/h", "stray"}, "unexpected argument \"stray\""},
           {{"remediate", "--host-root", "/h", "--no-restart=x"}, "no-restart"},
           {{"remediate", "--host-root", "/h", "--set", "eventRecordQPS"},
            "--set eventRecordQPS: want FIELD=VALUE"},
           {{"remediate", "--host-root", "/h", "--set", "noSuchField=1"}, "noSuchField"},
           {{"remediate", "--host-root", "/h", "--flags-file", "rel"}, "--flags-file"},
           {{"remediate", "--host-root", "/h", "--file-mode", "/x=9"}, "--file-mode /x=9"},
           {{"remediate", "--host-root", "/h", "--file-owner", "/x=:"}, "--file-owner"},
           {{"remediate", "--host-root", "/h", "--restart-command="}, "--restart-command needs"},
           {{"remediate", "--host-root", "/h", "--no-restart", "--restart-command", "x"},
            "--no-restart and --restart-command"},
           {{"audit-files", "--host-root", "/h", "--restart-command", "x"},
            "unknown flag --restart-command for agent audit-files"},
           {{"audit-files", "--host-root", "/h", "--file", "a/../b"}, "--file"},
       }) {
    auto parsed = ParseAgentArgs(c.args);
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos)
        << parsed.status().message();
  }
}

}  // namespace
}  // namespace kpc::agent
