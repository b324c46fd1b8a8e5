// PlanAgentRemediation on in-memory nodes: each case lists the actions and changes it expects.
#include "agent/plan.h"

#include <gtest/gtest.h>

#include <set>

#include "agent/args.h"
#include "policy/effective_config.h"

namespace kpc::agent {
namespace {

const char* kConfig = "/var/lib/kubelet/config.yaml";
const char* kConfigYaml =
    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    "streamingConnectionIdleTimeout: 0s\neventRecordQPS: 5\n";
const char* kUnitDropIn = "/etc/systemd/system/kubelet.service.d/10-args.conf";
const char* kUnitDropInText =
    "[Service]\nEnvironment=\"KUBELET_ARGS=--streaming-connection-idle-timeout=0\"\n";
const char* kEnvFile = "/etc/default/kubelet";
const char* kConfD = "/etc/kubernetes/kubelet.conf.d/10-timeouts.conf";
const char* kConfD2 = "/etc/kubernetes/kubelet.conf.d/20-port.conf";
const char* kKubeconfig = "/etc/kubernetes/kubelet.conf";
const char* kCa = "/etc/kubernetes/pki/ca.crt";

policy::FileFacts Facts(uint32_t mode, uint32_t uid = 0, uint32_t gid = 0) {
  policy::FileFacts f;
  f.exists = true;
  f.mode = mode;
  f.uid = uid;
  f.gid = gid;
  return f;
}

// A node as the planner sees it.
struct Node {
  std::map<std::string, std::string> files = {{kConfig, kConfigYaml}};  // absent: missing
  std::set<std::string> unreadable;
  std::vector<std::string> flags_files;  // which files carry flags, in kubelet order
  std::vector<std::string> units;        // the systemd unit and drop-ins
  std::vector<std::string> dropins;      // --config-dir drop-ins
  std::vector<std::string> cmdline;      // the running kubelet (empty: none)
  std::map<std::string, policy::FileFacts> facts = {{kKubeconfig, Facts(0600)}};
};

struct Want {
  std::vector<std::string> sets = {};
  std::vector<ModeOp> modes = {};
  std::vector<OwnerOp> owners = {};
  bool create_config_file = false;
  bool no_restart = false;
  std::vector<std::string> restart_command = {};
};

Detection DetectionOf(const Node& n) {
  Detection d;
  d.files.config_file = kConfig;
  d.files.flags_files = n.flags_files;
  d.files.service_files = n.units;
  for (const std::string& f : n.flags_files) {
    auto flags = policy::ParseKubeletFlags(n.files.at(f), f);
    EXPECT_TRUE(flags.ok()) << f;
    if (flags.ok() && !flags->empty()) d.file_flags[f] = *flags;
  }
  d.config_dropins = n.dropins;
  if (!n.cmdline.empty()) {
    std::string cmdline;
    for (const auto& a : n.cmdline) cmdline += a + '\0';
    d.pid = 4242;
    d.process_flags = FlagsFromCmdline(cmdline, "pid 4242");
  }
  return d;
}

NodeSnapshot SnapshotOf(const Node& n) {
  NodeSnapshot s;
  std::vector<std::string> paths = n.flags_files;
  paths.push_back(kConfig);
  paths.insert(paths.end(), n.dropins.begin(), n.dropins.end());
  for (const std::string& p : paths) {
    if (n.unreadable.count(p) > 0) {
      s.contents.emplace(p, Status(StatusCode::kPermissionDenied, p + ": permission denied"));
    } else if (auto it = n.files.find(p); it != n.files.end()) {
      s.contents.emplace(p, it->second);
    } else {
      s.contents.emplace(p, NotFound(p + ": no such file"));
    }
  }
  s.facts = n.facts;
  s.user_ids = {{"root", 0}, {"0", 0}, {"kube", 1001}, {"1001", 1001}, {"nosuch", std::nullopt}};
  s.group_ids = s.user_ids;
  s.user_names = {{0, "root"}, {1001, "kube"}};
  s.group_names = s.user_names;
  return s;
}

RemediationRequest RequestOf(const Want& w) {
  RemediationRequest r;
  for (const std::string& s : w.sets) {
    auto op = ParseSetArg(s);
    EXPECT_TRUE(op.ok()) << op.status().message();
    if (op.ok()) r.sets.push_back(*op);
  }
  r.modes = w.modes;
  r.owners = w.owners;
  r.create_config_file = w.create_config_file;
  r.no_restart = w.no_restart;
  r.restart_command = w.restart_command;
  return r;
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string Describe(const PlanAction& a) {
  if (const auto* e = std::get_if<EditFile>(&a)) {
    return "edit " + e->path + (e->backup ? " backup" : "") + (e->unit ? " unit" : "");
  }
  if (const auto* c = std::get_if<Chmod>(&a)) return "chmod " + c->path + " " + FormatMode(c->mode);
  if (const auto* c = std::get_if<Chown>(&a)) {
    return "chown " + c->path + " " + std::to_string(c->uid) + ":" + std::to_string(c->gid);
  }
  const auto& r = std::get<RestartKubelet>(a);
  std::string out = "restart";
  if (!r.daemon_reload.empty()) {
    EXPECT_EQ(r.daemon_reload, DefaultDaemonReloadCommand());
    out += " after daemon-reload";
  }
  return out + (r.argv == DefaultRestartCommand() ? " (default)" : ": " + Join(r.argv));
}

std::string Describe(const Change& c) {
  std::string where = c.kind == "config" || c.kind == "flag" ? c.field + " in " + c.file : c.path;
  return c.kind + " " + where + ": " + c.from.value_or("(unset)") + " -> " + c.to +
         (c.changed ? "" : " (unchanged)");
}

struct Case {
  std::string name;
  Node node;
  Want want;
  std::vector<std::string> actions;
  std::vector<std::string> changes;
  std::string blocked;                                       // the reason; empty: not blocked
  std::vector<std::string> errors;                           // a substring of each error
  std::map<std::string, std::string> written_contains = {};  // path -> in the new content
};

std::vector<Case> Cases() {
  const std::string restart = "restart (default)";
  Node unit_flag;  // the flag in a systemd drop-in and on the command line
  unit_flag.files[kUnitDropIn] = kUnitDropInText;
  unit_flag.flags_files = {kUnitDropIn};
  unit_flag.units = {kUnitDropIn};
  unit_flag.cmdline = {"kubelet", "--streaming-connection-idle-timeout=0"};
  Node config_dir;
  config_dir.files[kConfD] =
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
      "streamingConnectionIdleTimeout: 0s  # dev\n";
  config_dir.files[kConfD2] =
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 10250\n";
  config_dir.dropins = {kConfD, kConfD2};
  Node command_line_only;
  command_line_only.cmdline = {"kubelet", "--config=/var/lib/kubelet/config.yaml",
                               "--streaming-connection-idle-timeout=0"};
  Node at_wanted = command_line_only;
  at_wanted.cmdline[2] = "--streaming-connection-idle-timeout=4h";
  Node compliant;
  compliant.files[kConfig] =
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
      "streamingConnectionIdleTimeout: 4h0m0s\n";
  compliant.facts[kKubeconfig] = Facts(0600, 1001, 1001);
  Node modes;
  modes.facts = {{kKubeconfig, Facts(0664)}, {kCa, Facts(0600)}};
  Node owners;
  owners.facts = {{kKubeconfig, Facts(0600, 1001, 1001)}, {kCa, Facts(0644, 0, 0)}};
  Node env_flag;  // a flag in an env file, not a unit
  env_flag.files[kEnvFile] = "KUBELET_ARGS=\"--event-qps=0 --kubeconfig=/etc/k.conf\"\n";
  env_flag.flags_files = {kEnvFile};
  Node quoted_flag = env_flag;
  quoted_flag.files[kEnvFile] = "KUBELET_ARGS=\"--event-qps='0'\"\n";
  Node no_config;
  no_config.files.clear();
  Node unreadable;
  unreadable.unreadable = {kConfig};
  Node missing_file;
  missing_file.facts[kCa] = policy::FileFacts{};

  return {
      {"a field in the config file",
       Node{},
       {.sets = {"streamingConnectionIdleTimeout=4h"}},
       {"edit /var/lib/kubelet/config.yaml backup", restart},
       {"config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {},
       {{kConfig, "streamingConnectionIdleTimeout: 4h0m0s\neventRecordQPS: 5\n"}}},
      {"a --config-dir drop-in that sets the field gets it too",
       config_dir,
       {.sets = {"streamingConnectionIdleTimeout=4h"}},
       {"edit /etc/kubernetes/kubelet.conf.d/10-timeouts.conf backup",
        "edit /var/lib/kubelet/config.yaml backup", restart},
       {"config streamingConnectionIdleTimeout in " + std::string(kConfD) + ": 0s -> 4h0m0s",
        "config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {},
       {{kConfD, "streamingConnectionIdleTimeout: 4h0m0s  # dev\n"}}},
      {"a flag only on the command line blocks everything",
       command_line_only,
       {.sets = {"streamingConnectionIdleTimeout=4h", "eventRecordQPS=6"},
        .modes = {{kKubeconfig, 0644}}},
       {},
       {},
       "FlagOverride",
       {}},
      {"a flag on the command line and in a unit drop-in is rewritten, then daemon-reload",
       unit_flag,
       {.sets = {"streamingConnectionIdleTimeout=4h"}},
       {"edit /etc/systemd/system/kubelet.service.d/10-args.conf backup unit",
        "edit /var/lib/kubelet/config.yaml backup", "restart after daemon-reload (default)"},
       {"flag streamingConnectionIdleTimeout in " + std::string(kUnitDropIn) + ": 0 -> 4h0m0s",
        "config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {},
       {{kUnitDropIn, "KUBELET_ARGS=--streaming-connection-idle-timeout=4h0m0s\""}}},
      {"a command-line flag already at the wanted value does not block",
       at_wanted,
       {.sets = {"streamingConnectionIdleTimeout=4h0m0s"}},
       {"edit /var/lib/kubelet/config.yaml backup", restart},
       {"config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {}},
      {"nothing to change: no action, no restart",
       compliant,
       {.sets = {"streamingConnectionIdleTimeout=4h"},
        .modes = {{kKubeconfig, 0600}},
        .owners = {{kKubeconfig, "kube", "1001"}}},
       {},
       {"config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 4h0m0s -> 4h0m0s "
        "(unchanged)",
        "mode /etc/kubernetes/kubelet.conf: 0600 -> 0600 (unchanged)",
        "owner /etc/kubernetes/kubelet.conf: kube:kube -> kube:kube (unchanged)"},
       "",
       {}},
      {"modes are set exactly as asked; chmod alone does not restart",
       modes,
       {.modes = {{kKubeconfig, 0640}, {kCa, 0600}, {kCa, 04600}}},
       {"chmod /etc/kubernetes/kubelet.conf 0640", "chmod /etc/kubernetes/pki/ca.crt 4600"},
       {"mode /etc/kubernetes/kubelet.conf: 0664 -> 0640",
        "mode /etc/kubernetes/pki/ca.crt: 0600 -> 0600 (unchanged)",
        "mode /etc/kubernetes/pki/ca.crt: 0600 -> 4600"},
       "",
       {}},
      {"owners by name and id, an empty side kept",
       owners,
       {.owners = {{kKubeconfig, "root", ""}, {kCa, "", "1001"}}},
       {"chown /etc/kubernetes/kubelet.conf 0:1001", "chown /etc/kubernetes/pki/ca.crt 0:1001"},
       {"owner /etc/kubernetes/kubelet.conf: kube:kube -> root:kube",
        "owner /etc/kubernetes/pki/ca.crt: root:root -> root:kube"},
       "",
       {}},
      {"an unknown user is an error and nothing is done",
       owners,
       {.sets = {"streamingConnectionIdleTimeout=4h"},
        .modes = {{kCa, 0600}},
        .owners = {{kKubeconfig, "nosuch", "root"}}},
       {},
       {"config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s "
        "(unchanged)"},
       "",
       {"no user \"nosuch\""}},
      {"--no-restart",
       Node{},
       {.sets = {"streamingConnectionIdleTimeout=4h"}, .no_restart = true},
       {"edit /var/lib/kubelet/config.yaml backup"},
       {"config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {}},
      {"a custom restart command runs alone, without daemon-reload",
       unit_flag,
       {.sets = {"streamingConnectionIdleTimeout=4h"},
        .restart_command = {"/bin/restart", "--now", "$(x)"}},
       {"edit /etc/systemd/system/kubelet.service.d/10-args.conf backup unit",
        "edit /var/lib/kubelet/config.yaml backup", "restart: /bin/restart --now $(x)"},
       {"flag streamingConnectionIdleTimeout in " + std::string(kUnitDropIn) + ": 0 -> 4h0m0s",
        "config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s"},
       "",
       {}},
      {"a flag in an env file (not a unit): restart without daemon-reload",
       env_flag,
       {.sets = {"eventRecordQPS=5"}},
       {"edit /etc/default/kubelet backup", restart},
       {"flag eventRecordQPS in /etc/default/kubelet: 0 -> 5",
        "config eventRecordQPS in /var/lib/kubelet/config.yaml: 5 -> 5 (unchanged)"},
       "",
       {},
       {{kEnvFile, "KUBELET_ARGS=\"--event-qps=5 --kubeconfig=/etc/k.conf\"\n"}}},
      {"a flag that cannot be rewritten safely blocks, nothing is done",
       quoted_flag,
       {.sets = {"eventRecordQPS=7", "streamingConnectionIdleTimeout=4h"}},
       {},
       {"config eventRecordQPS in /var/lib/kubelet/config.yaml: 5 -> 7 (unchanged)",
        "config streamingConnectionIdleTimeout in /var/lib/kubelet/config.yaml: 0s -> 4h0m0s "
        "(unchanged)"},
       "FlagOverride",
       {}},
      {"a missing config file is an error unless named explicitly",
       no_config,
       {.sets = {"eventRecordQPS=5"}},
       {},
       {},
       "",
       {"does not exist; pass --config-file"}},
      {"a missing config file named explicitly is created (no backup)",
       no_config,
       {.sets = {"eventRecordQPS=5"}, .create_config_file = true},
       {"edit /var/lib/kubelet/config.yaml", restart},
       {"config eventRecordQPS in /var/lib/kubelet/config.yaml: (unset) -> 5"},
       "",
       {},
       {{kConfig, "kind: KubeletConfiguration\neventRecordQPS: 5\n"}}},
      {"an unreadable config file is an error",
       unreadable,
       {.sets = {"eventRecordQPS=5"}},
       {},
       {},
       "",
       {"permission denied"}},
      {"a missing file to chmod is an error",
       missing_file,
       {.sets = {"eventRecordQPS=6"}, .modes = {{kCa, 0600}}},
       {},
       {"config eventRecordQPS in /var/lib/kubelet/config.yaml: 5 -> 6 (unchanged)"},
       "",
       {"cannot chmod /etc/kubernetes/pki/ca.crt: it does not exist"}},
  };
}

TEST(PlanAgentRemediationTest, Table) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    AgentPlan plan =
        PlanAgentRemediation(RequestOf(c.want), DetectionOf(c.node), SnapshotOf(c.node));
    std::vector<std::string> actions, changes;
    for (const PlanAction& a : plan.actions) actions.push_back(Describe(a));
    for (const Change& ch : plan.changes) changes.push_back(Describe(ch));
    EXPECT_EQ(actions, c.actions);
    EXPECT_EQ(changes, c.changes);
    EXPECT_EQ(plan.blocked ? plan.blocked->reason : "", c.blocked);
    ASSERT_EQ(plan.errors.size(), c.errors.size()) << (plan.errors.empty() ? "" : plan.errors[0]);
    for (size_t i = 0; i < c.errors.size(); ++i) {
      EXPECT_NE(plan.errors[i].find(c.errors[i]), std::string::npos) << plan.errors[i];
    }
    for (const auto& [path, needle] : c.written_contains) {
      bool found = false;
      for (const PlanAction& a : plan.actions) {
        const auto* e = std::get_if<EditFile>(&a);
        if (e == nullptr || e->path != path) continue;
        found = true;
        EXPECT_NE(e->content.find(needle), std::string::npos) << e->content;
      }
      EXPECT_TRUE(found) << path << " is not written";
    }
  }
}

TEST(PlanAgentRemediationTest, BlockedByTheCommandLineNamesTheFlagAndPid) {
  Node n;
  n.cmdline = {"kubelet", "--feature-gates=SeccompDefault=false"};
  AgentPlan plan = PlanAgentRemediation(RequestOf({.sets = {"featureGates.SeccompDefault=true"}}),
                                        DetectionOf(n), SnapshotOf(n));
  ASSERT_TRUE(plan.blocked.has_value());
  EXPECT_NE(plan.blocked->message.find("--feature-gates"), std::string::npos);
  EXPECT_NE(plan.blocked->message.find("pid 4242"), std::string::npos);
  EXPECT_TRUE(plan.report_files.empty());
  // Another gate on the command line does not override this one.
  n.cmdline = {"kubelet", "--feature-gates=Other=false"};
  plan = PlanAgentRemediation(RequestOf({.sets = {"featureGates.SeccompDefault=true"}}),
                              DetectionOf(n), SnapshotOf(n));
  EXPECT_FALSE(plan.blocked.has_value());
  EXPECT_EQ(plan.actions.size(), 2u);
}

TEST(PlanAgentRemediationTest, WritesCarryTheirChangesAndReportTheirFiles) {
  Node n;
  n.files[kUnitDropIn] = kUnitDropInText;
  n.flags_files = {kUnitDropIn};
  n.units = {kUnitDropIn};
  n.facts[kCa] = Facts(0644);
  AgentPlan plan = PlanAgentRemediation(
      RequestOf({.sets = {"streamingConnectionIdleTimeout=4h", "eventRecordQPS=6"},
                 .modes = {{kCa, 0600}}}),
      DetectionOf(n), SnapshotOf(n));
  ASSERT_EQ(plan.actions.size(), 4u);
  const auto& unit = std::get<EditFile>(plan.actions[0]);
  const auto& config = std::get<EditFile>(plan.actions[1]);
  EXPECT_EQ(unit.changes, std::vector<size_t>({0}));
  EXPECT_EQ(config.changes, std::vector<size_t>({1, 2}));
  EXPECT_EQ(std::get<Chmod>(plan.actions[2]).change, 3u);
  std::set<std::string> reported(plan.report_files.begin(), plan.report_files.end());
  EXPECT_EQ(reported, (std::set<std::string>{kUnitDropIn, kConfig, kCa}));
}

TEST(PlanAgentRemediationTest, AFileThatVanishedIsNotCreated) {
  Node n;
  n.dropins = {kConfD};  // listed by detection, gone when read
  AgentPlan plan = PlanAgentRemediation(RequestOf({.sets = {"eventRecordQPS=6"}}), DetectionOf(n),
                                        SnapshotOf(n));
  std::vector<std::string> actions;
  for (const PlanAction& a : plan.actions) actions.push_back(Describe(a));
  EXPECT_EQ(actions, (std::vector<std::string>{"edit /var/lib/kubelet/config.yaml backup",
                                               "restart (default)"}));
}

}  // namespace
}  // namespace kpc::agent
