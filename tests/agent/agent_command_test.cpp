// RunAgent end to end on fake host roots in temporary directories.
#include "agent/agent_command.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/result.h"
#include "policy/effective_config.h"
#include "tests/agent/test_util.h"

namespace kpc::agent {
namespace {

using nlohmann::json;
using testing::FakeProc;
using testing::TempDir;

struct AgentRun {
  int code = -1;
  std::string out, err;
  json j;
};

AgentRun Agent(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  AgentRun r;
  r.code = RunAgent(args, out, err);
  r.out = out.str();
  r.err = err.str();
  if (r.code != kExitUsage) {
    try {
      r.j = json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not JSON: " << e.what() << "\n" << r.out;
    }
  }
  return r;
}

const char* kDropInPath = "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf";
const char* kConfigPath = "/var/lib/kubelet/config.yaml";

const char* kConfigYaml = R"(# written by kubeadm
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: true  # legacy
authorization:
  mode: AlwaysAllow
eventRecordQPS: 0
streamingConnectionIdleTimeout: 0s
)";

// A node like the test fleet's: a kubeadm-style config file and a drop-in carrying the flags.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_.Write("/etc/passwd",
             "root:x:0:0:root:/root:/bin/bash\nkube:x:1001:1001::/home/kube:/bin/sh\n");
    t_.Write("/etc/group", "root:x:0:\nkube:x:1001:\n");
    t_.Write(kConfigPath, kConfigYaml, 0600);
    DropIn("--kubeconfig=/etc/kubernetes/kubelet.conf");
    t_.Write("/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", 0644);
    std::filesystem::create_directories(t_.Host("/proc-fake"));
  }
  void DropIn(const std::string& args) {
    t_.Write(kDropInPath,
             "# kubelet arguments (simulated node, written by kpc-testenv)\n[Service]\n"
             "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
             "Environment=\"KUBELET_ARGS=" +
                 args + "\"\n");
  }
  // A running kubelet in the fake proc root: the host's executable, in the host's mount
  // namespace, in kubelet.service.
  void Process(int pid, const std::vector<std::string>& argv) {
    FakeProc::Process p;
    p.pid = pid;
    p.argv = argv;
    proc_.Add(p);
  }
  std::vector<std::string> Remediate(std::vector<std::string> extra) {
    std::vector<std::string> a = {"remediate", "--host-root", t_.path(), "--proc-root",
                                  t_.Host("/proc-fake")};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string Restarts() const { return t_.Read("/restarts"); }
  std::vector<std::string> CountingRestart() const {
    return {"--restart-command", "/bin/sh", "-c", "echo x >> " + t_.Host("/restarts")};
  }
  json Config() const {
    auto j = policy::ParseKubeletConfigFile(t_.Read(kConfigPath), "config.yaml");
    EXPECT_TRUE(j.ok()) << j.status().message();
    return j.ok() ? *j : json();
  }

  TempDir t_;
  FakeProc proc_{t_};
};

// The smoke test: a fake host root, `agent remediate --set ... --no-restart`, real file contents.
TEST_F(AgentTest, SmokeRemediateYamlConfig) {
  AgentRun r = Agent(Remediate({"--set", "streamingConnectionIdleTimeout=4h", "--set",
                                "eventRecordQPS=5", "--set", "authorization.mode=Webhook", "--set",
                                "authentication.anonymous.enabled=false", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(t_.Read(kConfigPath), R"(# written by kubeadm
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false  # legacy
authorization:
  mode: Webhook
eventRecordQPS: 5
streamingConnectionIdleTimeout: 4h0m0s
)");
  EXPECT_EQ(t_.Read(std::string(kConfigPath) + ".kpc-backup"), kConfigYaml);
  EXPECT_EQ(r.j["command"], "remediate");
  EXPECT_TRUE(r.j["ok"].get<bool>());
  EXPECT_FALSE(r.j["restarted"].get<bool>());
  EXPECT_EQ(r.j["kubelet"]["configFile"], kConfigPath);
  EXPECT_EQ(r.j["kubelet"]["kubeconfig"], "/etc/kubernetes/kubelet.conf");
  EXPECT_EQ(r.j["kubelet"]["flagsFiles"], json::array({kDropInPath}));
  ASSERT_EQ(r.j["changes"].size(), 4u);
  EXPECT_EQ(r.j["changes"][0], (json{{"kind", "config"},
                                     {"field", "streamingConnectionIdleTimeout"},
                                     {"file", kConfigPath},
                                     {"from", "0s"},
                                     {"to", "4h0m0s"},
                                     {"changed", true}}));
  EXPECT_EQ(r.j["changes"][1]["to"], "5");
  EXPECT_EQ(r.j["files"][kConfigPath]["mode"], "0600");
  json cfg = Config();
  EXPECT_TRUE(cfg["eventRecordQPS"].is_number_integer());
  auto parsed = ParseAgentResult(r.out);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
}

TEST_F(AgentTest, JsonConfigFileKeepsOrderAndIndentation) {
  const std::string path = "/etc/kubernetes/kubelet/kubelet-config.json";
  t_.Write(path,
           "{\n  \"kind\": \"KubeletConfiguration\",\n  \"apiVersion\": "
           "\"kubelet.config.k8s.io/v1beta1\",\n"
           "  \"streamingConnectionIdleTimeout\": \"0s\"\n}\n");
  AgentRun r =
      Agent(Remediate({"--config-file", path, "--set", "streamingConnectionIdleTimeout=4h", "--set",
                       "featureGates.RotateKubeletServerCertificate=true", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(t_.Read(path),
            "{\n  \"kind\": \"KubeletConfiguration\",\n  \"apiVersion\": "
            "\"kubelet.config.k8s.io/v1beta1\",\n"
            "  \"streamingConnectionIdleTimeout\": \"4h0m0s\",\n  \"featureGates\": {\n"
            "    \"RotateKubeletServerCertificate\": true\n  }\n}\n");
  EXPECT_EQ(r.j["kubelet"]["configFile"], path);
}

TEST_F(AgentTest, SecondRunChangesNothingAndDoesNotRestart) {
  DropIn("--streaming-connection-idle-timeout=0 --kubeconfig=/etc/kubernetes/kubelet.conf");
  auto args = Remediate({"--set", "streamingConnectionIdleTimeout=4h0m0s", "--set",
                         "eventRecordQPS=5", "--file-mode", "/etc/kubernetes/kubelet.conf=0600"});
  auto restart = CountingRestart();
  args.insert(args.end(), restart.begin(), restart.end());
  AgentRun first = Agent(args);
  ASSERT_EQ(first.code, kExitOk) << first.out << first.err;
  EXPECT_TRUE(first.j["restarted"].get<bool>());
  EXPECT_EQ(Restarts(), "x\n");
  // The flag in the drop-in was rewritten in place, and the config file has the value too.
  EXPECT_NE(t_.Read(kDropInPath)
                .find("KUBELET_ARGS=--streaming-connection-idle-timeout=4h0m0s --kubeconfig"),
            std::string::npos);
  EXPECT_EQ(Config()["streamingConnectionIdleTimeout"], "4h0m0s");
  const std::string config_after = t_.Read(kConfigPath), dropin_after = t_.Read(kDropInPath);

  AgentRun second = Agent(args);
  ASSERT_EQ(second.code, kExitOk) << second.out << second.err;
  EXPECT_FALSE(second.j["restarted"].get<bool>());
  EXPECT_EQ(Restarts(), "x\n");
  ASSERT_FALSE(second.j["changes"].empty());
  for (const json& c : second.j["changes"]) EXPECT_FALSE(c["changed"].get<bool>()) << c.dump();
  EXPECT_EQ(t_.Read(kConfigPath), config_after);
  EXPECT_EQ(t_.Read(kDropInPath), dropin_after);
}

TEST_F(AgentTest, FlagOnlyOnTheRunningKubeletIsBlocked) {
  Process(4242,
          {"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
           "--streaming-connection-idle-timeout=0", "--kubeconfig=/etc/kubernetes/kubelet.conf"});
  auto args = Remediate({"--set", "streamingConnectionIdleTimeout=4h", "--set", "eventRecordQPS=5",
                         "--file-mode", "/etc/kubernetes/kubelet.conf=0600"});
  auto restart = CountingRestart();
  args.insert(args.end(), restart.begin(), restart.end());
  AgentRun r = Agent(args);
  EXPECT_EQ(r.code, kExitBlocked) << r.out;
  EXPECT_EQ(r.j["blocked"]["reason"], "FlagOverride");
  EXPECT_NE(r.j["blocked"]["message"].get<std::string>().find("streaming-connection-idle-timeout"),
            std::string::npos);
  EXPECT_FALSE(r.j["ok"].get<bool>());
  // Nothing else was done.
  EXPECT_EQ(t_.Read(kConfigPath), kConfigYaml);
  EXPECT_FALSE(t_.Exists(std::string(kConfigPath) + ".kpc-backup"));
  struct stat st {};
  ASSERT_EQ(::stat(t_.Host("/etc/kubernetes/kubelet.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_FALSE(t_.Exists("/restarts"));
  EXPECT_EQ(r.j["kubelet"]["configFile"], kConfigPath);
}

TEST_F(AgentTest, FlagOnlyOnTheRunningKubeletWithTheWantedValueDoesNotBlock) {
  Process(4242, {"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
                 "--streaming-connection-idle-timeout=4h", "--feature-gates=SeccompDefault=true"});
  AgentRun r = Agent(Remediate({"--set", "streamingConnectionIdleTimeout=4h0m0s", "--set",
                                "featureGates.SeccompDefault=true", "--no-restart"}));
  EXPECT_EQ(r.code, kExitOk) << r.out;
  EXPECT_EQ(Config()["streamingConnectionIdleTimeout"], "4h0m0s");
  AgentRun b = Agent(Remediate({"--set", "featureGates.SeccompDefault=false", "--no-restart"}));
  EXPECT_EQ(b.code, kExitBlocked) << b.out;
}

TEST_F(AgentTest, FlagOnTheRunningKubeletAndInADropInIsRewritten) {
  DropIn("--streaming-connection-idle-timeout=0 --kubeconfig=/etc/kubernetes/kubelet.conf");
  Process(77, {"kubelet", "--config=/var/lib/kubelet/config.yaml",
               "--streaming-connection-idle-timeout=0"});
  AgentRun r = Agent(Remediate({"--set", "streamingConnectionIdleTimeout=4h", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_FALSE(r.j.contains("blocked"));
  EXPECT_NE(t_.Read(kDropInPath).find("--streaming-connection-idle-timeout=4h0m0s"),
            std::string::npos);
  EXPECT_EQ(r.j["changes"][0]["kind"], "flag");
  EXPECT_EQ(r.j["changes"][0]["from"], "0");
  EXPECT_TRUE(t_.Exists(std::string(kDropInPath) + ".kpc-backup"));
}

TEST_F(AgentTest, FlagThatCannotBeRewrittenSafelyIsBlocked) {
  t_.Write("/etc/default/kubelet",
           "KUBELET_ARGS=\"--event-qps='0' --kubeconfig=/etc/kubernetes/kubelet.conf\"\n");
  const std::string env_before = t_.Read("/etc/default/kubelet");
  AgentRun r = Agent(Remediate(
      {"--set", "eventRecordQPS=5", "--set", "streamingConnectionIdleTimeout=4h", "--no-restart"}));
  EXPECT_EQ(r.code, kExitBlocked) << r.out;
  EXPECT_EQ(r.j["blocked"]["reason"], "FlagOverride");
  EXPECT_NE(r.j["blocked"]["message"].get<std::string>().find("--event-qps"), std::string::npos);
  EXPECT_EQ(t_.Read("/etc/default/kubelet"), env_before);
  EXPECT_EQ(t_.Read(kConfigPath), kConfigYaml);
  for (const json& c : r.j["changes"]) EXPECT_FALSE(c["changed"].get<bool>());
}

TEST_F(AgentTest, ConfigDirDropInsThatSetTheFieldAreEditedToo) {
  DropIn("--config-dir=/etc/kubernetes/kubelet.conf.d --kubeconfig=/etc/kubernetes/kubelet.conf");
  t_.Write("/etc/kubernetes/kubelet.conf.d/10-timeouts.conf",
           "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
           "streamingConnectionIdleTimeout: 0s  # dev\n");
  t_.Write("/etc/kubernetes/kubelet.conf.d/20-other.conf",
           "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 10250\n");
  AgentRun r = Agent(Remediate({"--set", "streamingConnectionIdleTimeout=4h", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(t_.Read("/etc/kubernetes/kubelet.conf.d/10-timeouts.conf"),
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            "streamingConnectionIdleTimeout: 4h0m0s  # dev\n");
  EXPECT_FALSE(t_.Exists("/etc/kubernetes/kubelet.conf.d/20-other.conf.kpc-backup"));
  EXPECT_EQ(Config()["streamingConnectionIdleTimeout"], "4h0m0s");
  // The backup of a drop-in does not end in .conf, so the kubelet does not read it.
  EXPECT_TRUE(t_.Exists("/etc/kubernetes/kubelet.conf.d/10-timeouts.conf.kpc-backup"));
  ASSERT_EQ(r.j["changes"].size(), 2u);
  EXPECT_EQ(r.j["changes"][0]["file"], "/etc/kubernetes/kubelet.conf.d/10-timeouts.conf");
}

TEST_F(AgentTest, EnvFilesNamedByTheUnitAndDefaultLocations) {
  std::filesystem::remove(t_.Host(kDropInPath));
  t_.Write("/lib/systemd/system/kubelet.service",
           "[Service]\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/"
           "default/kubelet\n"
           "ExecStart=/usr/bin/kubelet $KUBELET_KUBEADM_ARGS $KUBELET_ARGS\n");
  t_.Write("/var/lib/kubelet/kubeadm-flags.env",
           "KUBELET_KUBEADM_ARGS=\"--config=/var/lib/kubelet/config.yaml "
           "--feature-gates=A=true,SeccompDefault=false\"\n");
  t_.Write("/etc/default/kubelet",
           "KUBELET_ARGS=\"--event-qps=0 --kubeconfig=/etc/kubernetes/kubelet.conf\"\n");
  AgentRun r = Agent(Remediate(
      {"--set", "eventRecordQPS=5", "--set", "featureGates.SeccompDefault=true", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(t_.Read("/etc/default/kubelet"),
            "KUBELET_ARGS=\"--event-qps=5 --kubeconfig=/etc/kubernetes/kubelet.conf\"\n");
  EXPECT_EQ(t_.Read("/var/lib/kubelet/kubeadm-flags.env"),
            "KUBELET_KUBEADM_ARGS=\"--config=/var/lib/kubelet/config.yaml "
            "--feature-gates=A=true,SeccompDefault=true\"\n");
  EXPECT_EQ(Config()["eventRecordQPS"], 5);
  EXPECT_EQ(Config()["featureGates"]["SeccompDefault"], true);
  EXPECT_EQ(r.j["kubelet"]["serviceFiles"], json::array({"/lib/systemd/system/kubelet.service"}));
  // The unit's ExecStart only references variables: not a flags file itself.
  EXPECT_EQ(r.j["kubelet"]["flagsFiles"],
            json::array({"/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet"}));
  EXPECT_EQ(r.j["kubelet"]["kubeconfig"], "/etc/kubernetes/kubelet.conf");
}

TEST_F(AgentTest, DecoyKubeletsAreNotTakenForTheKubelet) {
  // Processes named kubelet that any hostPID pod could run, each naming another config file and
  // a flag that would block the remediation.
  const std::vector<std::string> decoy_argv = {
      "/usr/bin/kubelet", "--config=/etc/kubernetes/decoy.yaml", "--event-qps=0",
      "--kubeconfig=/etc/kubernetes/decoy.conf"};
  FakeProc::Process other_ns{.pid = 30, .argv = decoy_argv, .mnt_ns = testing::kOtherMntNs};
  FakeProc::Process in_pod{
      .pid = 31,
      .argv = decoy_argv,
      .cgroup =
          "0::/../../kubepods-besteffort-pod0123456789abcdef0123456789abcdef.slice/"
          "cri-containerd-1.scope\n"};
  proc_.Add(other_ns);
  proc_.Add(in_pod);
  FakeProc::Process own_binary{
      .pid = 32, .argv = decoy_argv, .exe = t_.Write("/containers/c1/usr/bin/kubelet", "x", 0755)};
  proc_.Add(own_binary);
  Process(4242, {"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
                 "--kubeconfig=/etc/kubernetes/kubelet.conf"});
  AgentRun r = Agent(Remediate({"--set", "eventRecordQPS=5", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(r.j["kubelet"]["configFile"], kConfigPath);
  EXPECT_EQ(r.j["kubelet"]["kubeconfig"], "/etc/kubernetes/kubelet.conf");
  EXPECT_EQ(Config()["eventRecordQPS"], 5);
  EXPECT_FALSE(t_.Exists("/etc/kubernetes/decoy.yaml"));
  EXPECT_EQ(r.err.find("no running kubelet"), std::string::npos) << r.err;
}

TEST_F(AgentTest, OnlyDecoysFallBackToTheFilesWithAWarning) {
  FakeProc::Process other_ns{
      .pid = 30, .argv = {"/usr/bin/kubelet", "--event-qps=0"}, .mnt_ns = testing::kOtherMntNs};
  proc_.Add(other_ns);
  AgentRun r = Agent(Remediate({"--set", "eventRecordQPS=5", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;  // the decoy's --event-qps does not block
  EXPECT_EQ(r.j["kubelet"]["configFile"], kConfigPath);
  EXPECT_NE(r.err.find("warning: no running kubelet was verified (pid 30: its mount namespace"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Config()["eventRecordQPS"], 5);
}

TEST_F(AgentTest, TwoKubeletsAreRefusedAndNothingChanges) {
  Process(500, {"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"});
  Process(600, {"/usr/bin/kubelet", "--config=/etc/kubernetes/other.yaml"});
  AgentRun r = Agent(Remediate({"--set", "eventRecordQPS=5", "--file-mode",
                                "/etc/kubernetes/kubelet.conf=0600", "--no-restart"}));
  EXPECT_EQ(r.code, kExitFailed) << r.out;
  ASSERT_EQ(r.j["errors"].size(), 1u) << r.out;
  const std::string e = r.j["errors"][0];
  EXPECT_NE(e.find("several processes pass as the node's kubelet"), std::string::npos) << e;
  EXPECT_NE(e.find("pid 500"), std::string::npos) << e;
  EXPECT_NE(e.find("pid 600"), std::string::npos) << e;
  EXPECT_EQ(t_.Read(kConfigPath), kConfigYaml);
  EXPECT_FALSE(t_.Exists(std::string(kConfigPath) + ".kpc-backup"));
  struct stat st {};
  ASSERT_EQ(::stat(t_.Host("/etc/kubernetes/kubelet.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  AgentRun a = Agent({"audit-files", "--host-root", t_.path(), "--proc-root", proc_.path()});
  EXPECT_EQ(a.code, kExitFailed);
  EXPECT_TRUE(a.j["files"].empty());
}

TEST_F(AgentTest, DetectedPathsOutsideTheAllowedDirectoriesAreNotTouched) {
  const std::string outside = "/opt/kubelet/config.yaml";
  t_.Write(outside, kConfigYaml, 0644);
  Process(77, {"/usr/bin/kubelet", "--config=" + outside, "--kubeconfig=/root/kubeconfig",
               "--config-dir=/run/kubelet.conf.d"});
  t_.Write("/run/kubelet.conf.d/10.conf",
           "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
           "eventRecordQPS: 1\n");
  AgentRun r = Agent(Remediate({"--set", "eventRecordQPS=5", "--no-restart"}));
  EXPECT_EQ(r.code, kExitFailed) << r.out << r.err;  // no config file to edit
  for (const char* needle :
       {"ignoring the kubelet's --config file \"/opt/kubelet/config.yaml\": outside the "
        "directories the agent may touch (/etc/kubernetes/",
        "ignoring the kubelet's --kubeconfig \"/root/kubeconfig\"",
        "ignoring the kubelet's --config-dir \"/run/kubelet.conf.d\""}) {
    EXPECT_NE(r.err.find(needle), std::string::npos) << needle << "\n" << r.err;
  }
  EXPECT_EQ(t_.Read(outside), kConfigYaml);
  EXPECT_FALSE(t_.Exists(outside + ".kpc-backup"));
  EXPECT_FALSE(t_.Exists("/run/kubelet.conf.d/10.conf.kpc-backup"));
  EXPECT_EQ(r.j["kubelet"]["configFile"], nullptr);
  // An EnvironmentFile= outside them is not read.
  std::filesystem::remove(t_.Host(kDropInPath));
  t_.Write("/lib/systemd/system/kubelet.service",
           "[Service]\nEnvironmentFile=-/run/kubelet.env\nEnvironmentFile=/etc/default/kubelet\n");
  t_.Write("/run/kubelet.env", "KUBELET_ARGS=\"--event-qps=0\"\n");
  t_.Write("/etc/default/kubelet", "KUBELET_ARGS=\"--config=/var/lib/kubelet/config.yaml\"\n");
  std::filesystem::remove_all(t_.Host(proc_.Dir(77)));
  AgentRun f = Agent(Remediate({"--set", "eventRecordQPS=5", "--no-restart"}));
  ASSERT_EQ(f.code, kExitOk) << f.out << f.err;
  EXPECT_NE(f.err.find("ignoring the EnvironmentFile= of /lib/systemd/system/kubelet.service "
                       "\"/run/kubelet.env\""),
            std::string::npos)
      << f.err;
  EXPECT_EQ(f.j["kubelet"]["flagsFiles"], json::array({"/etc/default/kubelet"}));
  EXPECT_EQ(t_.Read("/run/kubelet.env"), "KUBELET_ARGS=\"--event-qps=0\"\n");
  EXPECT_EQ(Config()["eventRecordQPS"], 5);
}

TEST_F(AgentTest, GarbageFlagsFilesAndProcEntriesDoNotCrash) {
  t_.Write(
      kDropInPath,
      std::string("[Service]\nEnvironment=\"KUBELET_ARGS=--event-qps=0 'unterminated\n\x00\xff\x01",
                  60));
  t_.Write("/etc/default/kubelet", "KUBELET_ARGS=\"--feature-gates=,,=,A\" '\n");
  t_.Write("/proc-fake/1/comm", "kubelet\n");
  t_.Write("/proc-fake/1/cmdline", "");
  t_.Write("/proc-fake/2/comm", "kubelet");  // no cmdline
  t_.Write("/proc-fake/3/cmdline", std::string("\0\0--x\0", 6));
  AgentRun a =
      Agent({"audit-files", "--host-root", t_.path(), "--proc-root", t_.Host("/proc-fake")});
  EXPECT_EQ(a.code, kExitOk) << a.out;
  EXPECT_TRUE(a.j["files"][kDropInPath]["exists"].get<bool>());
  AgentRun r =
      Agent(Remediate({"--config-file", kConfigPath, "--set", "eventRecordQPS=5", "--no-restart"}));
  EXPECT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos);
  EXPECT_EQ(Config()["eventRecordQPS"], 5);
}

TEST_F(AgentTest, MissingConfigFile) {
  std::filesystem::remove(t_.Host(kConfigPath));
  // Named by the kubelet's --config but absent: an error, nothing written.
  AgentRun r = Agent(Remediate({"--set", "eventRecordQPS=5", "--no-restart"}));
  EXPECT_EQ(r.code, kExitFailed);
  ASSERT_EQ(r.j["errors"].size(), 1u);
  EXPECT_NE(r.j["errors"][0].get<std::string>().find("does not exist"), std::string::npos);
  EXPECT_FALSE(t_.Exists(kConfigPath));
  // Given explicitly: created.
  AgentRun c =
      Agent(Remediate({"--config-file", kConfigPath, "--set", "eventRecordQPS=5", "--no-restart"}));
  ASSERT_EQ(c.code, kExitOk) << c.out;
  EXPECT_EQ(
      t_.Read(kConfigPath),
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\neventRecordQPS: 5\n");
  EXPECT_EQ(c.j["files"][kConfigPath]["mode"], "0600");
  EXPECT_EQ(c.j["changes"][0]["note"], "file created");
}

TEST_F(AgentTest, MalformedConfigIsAnErrorAndNothingChanges) {
  for (const char* garbage :
       {"authentication: [unclosed\n", "\x01\x02\xff binary", "- a list\n", "{\"json\": "}) {
    t_.Write(kConfigPath, garbage);
    auto args = Remediate(
        {"--set", "eventRecordQPS=5", "--file-mode", "/etc/kubernetes/kubelet.conf=0600"});
    auto restart = CountingRestart();
    args.insert(args.end(), restart.begin(), restart.end());
    AgentRun r = Agent(args);
    EXPECT_EQ(r.code, kExitFailed) << garbage;
    EXPECT_FALSE(r.j["ok"].get<bool>());
    ASSERT_FALSE(r.j["errors"].empty());
    EXPECT_NE(r.j["errors"][0].get<std::string>().find(kConfigPath), std::string::npos)
        << r.j["errors"][0];
    EXPECT_EQ(t_.Read(kConfigPath), garbage);
    EXPECT_FALSE(t_.Exists("/restarts"));
    struct stat st {};
    ASSERT_EQ(::stat(t_.Host("/etc/kubernetes/kubelet.conf").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
  }
}

TEST_F(AgentTest, UnwritableDirectoryIsAnError) {
  // Root may write anywhere; run the agent as nobody in a child process, where the host root's
  // directories (owned by root, 0755) are read-only.
  ASSERT_EQ(::chmod(t_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(t_.Host(kConfigPath).c_str(), 0644), 0);
  std::string result = t_.Host("/result.json");
  ASSERT_EQ(::chmod(t_.Host("/").c_str(), 0777), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(100);
    std::ostringstream out, err;
    int code =
        RunAgent(Remediate({"--set", "eventRecordQPS=5", "--no-restart", "--result-file", result}),
                 out, err);
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 100) << "could not drop privileges";
  EXPECT_EQ(WEXITSTATUS(status), kExitFailed);
  EXPECT_EQ(t_.Read(kConfigPath), kConfigYaml);
  auto parsed = ParseAgentResult(t_.Read("/result.json"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_FALSE(parsed->errors.empty());
  EXPECT_NE(parsed->errors[0].find("permission denied"), std::string::npos) << parsed->errors[0];
  ASSERT_EQ(parsed->changes.size(), 1u);
  EXPECT_FALSE(parsed->changes[0].changed);
}

TEST_F(AgentTest, ReadOnlyFilesystemIsAnError) {
  // As a hostPath mounted readOnly: the config file's directory is a read-only bind mount, in a
  // private mount namespace of a child process.
  const std::string dir = t_.Host("/var/lib/kubelet");
  const std::string result = t_.Host("/result.json");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        ::mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      _exit(99);
    }
    std::ostringstream out, err;
    _exit(RunAgent(
        Remediate({"--set", "eventRecordQPS=5", "--file-mode", std::string(kConfigPath) + "=0644",
                   "--no-restart", "--result-file", result}),
        out, err));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 99) GTEST_SKIP() << "no permission to create a read-only mount here";
  EXPECT_EQ(WEXITSTATUS(status), kExitFailed);
  EXPECT_EQ(t_.Read(kConfigPath), kConfigYaml);
  auto parsed = ParseAgentResult(t_.Read("/result.json"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_FALSE(parsed->errors.empty());
  EXPECT_NE(parsed->errors[0].find("read-only file system"), std::string::npos)
      << parsed->errors[0];
  EXPECT_FALSE(parsed->ok);
}

TEST_F(AgentTest, ChmodAndChown) {
  const std::string f = "/etc/kubernetes/kubelet.conf";
  ASSERT_EQ(::chown(t_.Host(f).c_str(), 1001, 1001), 0);
  ASSERT_EQ(::chmod(t_.Host(f).c_str(), 0664), 0);
  AgentRun r = Agent(
      Remediate({"--file-mode", f + "=0600", "--file-owner", f + "=root:root", "--no-restart"}));
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  struct stat st {};
  ASSERT_EQ(::stat(t_.Host(f).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(
      r.j["changes"][0],
      (json{{"kind", "mode"}, {"path", f}, {"from", "0664"}, {"to", "0600"}, {"changed", true}}));
  EXPECT_EQ(r.j["changes"][1], (json{{"kind", "owner"},
                                     {"path", f},
                                     {"from", "kube:kube"},
                                     {"to", "root:root"},
                                     {"changed", true}}));
  EXPECT_EQ(r.j["files"][f]["owner"], "root");
  // By name and number, and a second run changes nothing.
  AgentRun k = Agent(Remediate({"--file-owner", f + "=kube:1001", "--no-restart"}));
  ASSERT_EQ(k.code, kExitOk);
  ASSERT_EQ(::stat(t_.Host(f).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1001u);
  EXPECT_EQ(st.st_gid, 1001u);
  AgentRun again = Agent(
      Remediate({"--file-owner", f + "=kube:kube", "--file-mode", f + "=0600", "--no-restart"}));
  ASSERT_EQ(again.code, kExitOk);
  for (const json& c : again.j["changes"]) EXPECT_FALSE(c["changed"].get<bool>());
  // Unknown names and missing files are errors.
  AgentRun bad = Agent(Remediate({"--file-owner", f + "=nosuchuser:root", "--no-restart"}));
  EXPECT_EQ(bad.code, kExitFailed);
  EXPECT_NE(bad.j["errors"][0].get<std::string>().find("nosuchuser"), std::string::npos);
  AgentRun missing = Agent(Remediate({"--file-mode", "/etc/kubernetes/none=0600", "--no-restart"}));
  EXPECT_EQ(missing.code, kExitFailed);
}

TEST_F(AgentTest, ShellMetacharactersStayLiteral) {
  const std::string weird = "$(HOME)/ca.crt; rm -rf / `x` \"q\"";
  auto args = Remediate({"--set", "authentication.x509.clientCAFile=" + weird, "--restart-command",
                         "/bin/touch", t_.Host("/restarted $(HOME) ;x")});
  AgentRun r = Agent(args);
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(Config()["authentication"]["x509"]["clientCAFile"], weird);
  EXPECT_TRUE(t_.Exists("/restarted $(HOME) ;x"));  // argv, no shell
  EXPECT_TRUE(r.j["restarted"].get<bool>());
}

TEST_F(AgentTest, DefaultRestartReloadsSystemdWhenADropInChanged) {
  // A fake nsenter first on PATH records its argv.
  const std::string bin = t_.Host("/fakebin");
  t_.Write("/fakebin/nsenter", "#!/bin/sh\necho \"$*\" >> " + t_.Host("/nsenter.log") + "\n", 0755);
  const char* old_path = std::getenv("PATH");
  const std::string saved = old_path ? old_path : "/usr/bin:/bin";
  ::setenv("PATH", (bin + ":" + saved).c_str(), 1);
  DropIn("--streaming-connection-idle-timeout=0 --kubeconfig=/etc/kubernetes/kubelet.conf");
  AgentRun r = Agent(Remediate({"--set", "streamingConnectionIdleTimeout=4h"}));
  AgentRun config_only = Agent(Remediate({"--set", "eventRecordQPS=5"}));
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_TRUE(r.j["restarted"].get<bool>());
  ASSERT_EQ(config_only.code, kExitOk) << config_only.out;
  EXPECT_EQ(t_.Read("/nsenter.log"),
            "--target 1 --mount --uts --ipc --net --pid -- systemctl daemon-reload\n"
            "--target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet\n"
            "--target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet\n");
}

TEST_F(AgentTest, FailingRestartCommandIsAnError) {
  AgentRun r = Agent(
      Remediate({"--set", "eventRecordQPS=5", "--restart-command", "/bin/sh", "-c", "exit 7"}));
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_FALSE(r.j["restarted"].get<bool>());
  EXPECT_NE(r.j["errors"][0].get<std::string>().find("exited with 7"), std::string::npos);
  EXPECT_EQ(Config()["eventRecordQPS"], 5);  // the edit itself happened
  AgentRun n =
      Agent(Remediate({"--set", "eventRecordQPS=6", "--restart-command", "/no/such/program"}));
  EXPECT_EQ(n.code, kExitFailed);
}

TEST_F(AgentTest, UsageErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::string root = t_.path();
  for (const Case& c : std::vector<Case>{
           {{"remediate", "--set", "eventRecordQPS=5"}, "--host-root"},
           {{"remediate", "--host-root", root, "--bogus"}, "--bogus"},
           {{"remediate", "--host-root", root, "--set", "eventRecordQPS"}, "--set"},
           {{"remediate", "--host-root", root, "--set", "eventRecordQPS=lots"}, "eventRecordQPS"},
           {{"remediate", "--host-root", root, "--set", "noSuchField=1"}, "noSuchField"},
           {{"remediate", "--host-root", root, "--file-mode", "/etc/../etc/shadow=0600"},
            "--file-mode"},
           {{"remediate", "--host-root", root, "--file-mode", "/etc/x=rwx"}, "--file-mode"},
           {{"remediate", "--host-root", root, "--file-owner", "/etc/x"}, "--file-owner"},
           {{"remediate", "--host-root", root, "--config-file", "relative.yaml"}, "--config-file"},
           {{"remediate", "--host-root", root, "--restart-command"}, "--restart-command"},
           {{"remediate", "--host-root", root, "--no-restart", "--restart-command", "x"},
            "--no-restart"},
           {{"remediate", "--host-root", root + "/nope"}, "--host-root"},
           {{"audit-files", "--host-root", root, "--set", "a=b"}, "--set"},
           {{"audit-files", "--host-root", root, "--file"}, "--file"},
           {{"explode"}, "explode"},
           {{}, "subcommand"},
       }) {
    AgentRun r = Agent(c.args);
    EXPECT_EQ(r.code, kExitUsage) << c.needle;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunAgent({"remediate", "--help"}, out, err), kExitOk);
  EXPECT_NE(out.str().find("--restart-command"), std::string::npos);
}

TEST_F(AgentTest, AuditFiles) {
  std::filesystem::create_directories(t_.Host("/etc/kubernetes/pki"));
  t_.Write("/etc/kubernetes/pki/ca.crt", "x", 0644);
  ASSERT_EQ(::chown(t_.Host("/etc/kubernetes/pki/ca.crt").c_str(), 1001, 0), 0);
  AgentRun r = Agent({"audit-files", "--host-root", t_.path(), "--proc-root", t_.Host("/proc-fake"),
                      "--file", "/etc/kubernetes/pki/ca.crt", "--file", "/etc/kubernetes/missing"});
  ASSERT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_EQ(r.j["command"], "audit-files");
  EXPECT_EQ(r.j["files"]["/etc/kubernetes/pki/ca.crt"], (json{{"exists", true},
                                                              {"mode", "0644"},
                                                              {"uid", 1001},
                                                              {"gid", 0},
                                                              {"owner", "kube"},
                                                              {"group", "root"}}));
  EXPECT_EQ(r.j["files"]["/etc/kubernetes/missing"], (json{{"exists", false}}));
  EXPECT_EQ(r.j["files"][kConfigPath]["mode"], "0600");
  EXPECT_TRUE(r.j["files"]["/etc/kubernetes/kubelet.conf"]["exists"].get<bool>());
  EXPECT_TRUE(r.j["files"][kDropInPath]["exists"].get<bool>());
  EXPECT_EQ(r.j["kubelet"]["serviceFiles"], json::array({kDropInPath}));
  EXPECT_TRUE(r.j["changes"].empty());
}

TEST_F(AgentTest, TerminationLogAndResultFile) {
  for (int i = 0; i < 300; ++i) {
    t_.Write("/etc/kubernetes/many/file-" + std::to_string(i), "x");
  }
  std::vector<std::string> args = {"audit-files",
                                   "--host-root",
                                   t_.path(),
                                   "--proc-root",
                                   t_.Host("/proc-fake"),
                                   "--termination-log",
                                   t_.Host("/termination-log"),
                                   "--result-file",
                                   t_.Host("/result.json")};
  for (int i = 0; i < 300; ++i) {
    args.push_back("--file");
    args.push_back("/etc/kubernetes/many/file-" + std::to_string(i));
  }
  AgentRun r = Agent(args);
  ASSERT_EQ(r.code, kExitOk);
  std::string log = t_.Read("/termination-log");
  EXPECT_LE(log.size(), 4096u);
  auto small = ParseAgentResult(log);
  ASSERT_TRUE(small.ok()) << small.status().message();
  EXPECT_TRUE(small->truncated);
  EXPECT_TRUE(small->ok);
  auto full = ParseAgentResult(t_.Read("/result.json"));
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->truncated);
  EXPECT_GE(full->files.size(), 300u);
}

}  // namespace
}  // namespace kpc::agent
