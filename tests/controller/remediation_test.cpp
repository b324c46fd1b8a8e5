#include "controller/remediation.h"

#include <gtest/gtest.h>

#include <regex>

#include "controller/node_facts.h"
#include "tests/controller/fixtures.h"
#include "controller/policy_status.h"
#include "policy/effective_config.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;
using fixtures::FailingEverything;
using fixtures::Policy;

TEST(RemediationPlanTest, PlansEveryFailingRemediableRuleAndListsTheOthers) {
  auto p = Policy();
  pol::NodeFacts facts;
  auto ev = FailingEverything(p, &facts);
  ASSERT_EQ(ev.FailedRules(), (std::vector<std::string>{"stream", "qps", "authz", "kubeconfig-perms"}));
  RemediationPlan plan = PlanRemediation(p, ev);
  ASSERT_EQ(plan.changes.size(), 2u);
  EXPECT_EQ(plan.changes[0].field, "streamingConnectionIdleTimeout");
  EXPECT_EQ(plan.changes[0].from, "0s");
  EXPECT_EQ(plan.changes[0].to, "4h0m0s");
  EXPECT_TRUE(plan.changes[1].file);
  EXPECT_EQ(plan.changes[1].path, "/etc/kubernetes/kubelet.conf");
  EXPECT_EQ(plan.changes[1].mode, "0600");  // 0644 & 0600
  EXPECT_EQ(plan.changes[1].owner, "root:root");
  EXPECT_EQ(plan.not_remediable,
            (std::vector<std::string>{"qps (no remediation.value)", "authz (remediation disabled)"}));
  EXPECT_EQ(plan.Describe(),
            "set streamingConnectionIdleTimeout 0s -> 4h0m0s; chmod 0600 /etc/kubernetes/kubelet.conf; chown root:root "
            "/etc/kubernetes/kubelet.conf; not remediable: qps (no remediation.value), authz (remediation disabled)");
}

TEST(RemediationPlanTest, ModeKeepsTheBitsInsideMaxModeAndSkipsWhatIsAlreadyRight) {
  auto p = Policy(json::parse(R"({"rules": [
      {"id": "f", "file": {"target": "Path", "path": "/etc/kubernetes/x.conf", "maxMode": "0640", "owner": "root"}}]})"));
  pol::NodeFacts facts;
  pol::FileFacts f;
  f.exists = true;
  f.mode = 0604;  // other-read is outside 0640; owner is right
  f.owner = "root";
  f.group = "adm";
  facts.files["/etc/kubernetes/x.conf"] = f;
  auto ev = pol::EvaluateNode(p, facts, pol::EffectiveConfig{}, 0);
  RemediationPlan plan = PlanRemediation(p, ev);
  ASSERT_EQ(plan.changes.size(), 1u);
  EXPECT_EQ(plan.changes[0].mode, "0600");
  EXPECT_EQ(plan.changes[0].owner, "");
}

TEST(RemediationPlanTest, MissingFileThatMustExistIsNotRemediable) {
  auto p = Policy(json::parse(R"({"rules": [
      {"id": "f", "file": {"target": "Path", "path": "/etc/kubernetes/x.conf", "maxMode": "0600", "mustExist": true}}]})"));
  pol::NodeFacts facts;
  facts.files["/etc/kubernetes/x.conf"] = pol::FileFacts{};
  auto ev = pol::EvaluateNode(p, facts, pol::EffectiveConfig{}, 0);
  ASSERT_EQ(ev.FailedRules(), std::vector<std::string>{"f"});
  RemediationPlan plan = PlanRemediation(p, ev);
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.not_remediable, std::vector<std::string>{"f (file does not exist)"});
}

TEST(RemediationArgsTest, ArgvCarriesTheChangesAndTheRestartCommand) {
  auto p = Policy();
  pol::NodeFacts facts;
  auto ev = FailingEverything(p, &facts);
  RemediationOptions opts;
  opts.restart_command = {"/state/bin/testenv", "restart-kubelet", "--host-root", "/host"};
  auto args = RemediateArgs(p, PlanRemediation(p, ev), opts);
  EXPECT_EQ(args, (std::vector<std::string>{"agent", "remediate", "--host-root", "/host", "--set",
                                            "streamingConnectionIdleTimeout=4h0m0s", "--file-mode",
                                            "/etc/kubernetes/kubelet.conf=0600", "--file-owner",
                                            "/etc/kubernetes/kubelet.conf=root:root", "--restart-command",
                                            "/state/bin/testenv", "restart-kubelet", "--host-root", "/host"}));
}

TEST(RemediationArgsTest, NoRestartForFileOnlyPlansOrWhenDisabled) {
  auto p = Policy(json::parse(R"({"remediation": {"restartKubelet": false}})"));
  pol::NodeFacts facts;
  auto ev = FailingEverything(p, &facts);
  auto args = RemediateArgs(p, PlanRemediation(p, ev), RemediationOptions{});
  EXPECT_EQ(args.back(), "--no-restart");
}

TEST(RemediationArgsTest, ValuesReachTheAgentLiterally) {
  auto p = Policy(json::parse(R"({"rules": [
      {"id": "a", "config": {"path": "providerID", "operator": "Equals", "value": "$(HOME); rm -rf / `x` $$"},
       "remediation": {"value": "$(HOME); rm -rf / `x` $$"}},
      {"id": "b", "config": {"path": "staticPodURL", "operator": "Equals", "value": "true"},
       "remediation": {"value": "true"}}]})"));
  auto ev = pol::EvaluateNode(p, {}, *pol::EffectiveConfigFromConfigz(R"({"kubeletconfig": {}})"), 0);
  auto args = RemediateArgs(p, PlanRemediation(p, ev), RemediationOptions{});
  // Kubernetes expands $(VAR) and turns $$ into $ in args: every $ is doubled.
  EXPECT_EQ(args[5], "providerID=$$(HOME); rm -rf / `x` $$$$");
  // A string that looks like JSON is passed as a JSON string, so the agent keeps it a string.
  EXPECT_EQ(args[7], "staticPodURL=\"true\"");
  EXPECT_EQ(EscapeExpansion("a$(B)$$c"), "a$$(B)$$$$c");
}

TEST(JobNameTest, DeterministicDnsLabelsThatChangeWithThePlan) {
  std::regex dns("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
  std::string a = RemediationJobName("cis-worker-kubelet", "worker-1", 3, {"--set", "x=1"});
  EXPECT_EQ(a, RemediationJobName("cis-worker-kubelet", "worker-1", 3, {"--set", "x=1"}));
  EXPECT_NE(a, RemediationJobName("cis-worker-kubelet", "worker-1", 4, {"--set", "x=1"}));
  EXPECT_NE(a, RemediationJobName("cis-worker-kubelet", "worker-1", 3, {"--set", "x=2"}));
  EXPECT_NE(a, RemediationJobName("cis-worker-kubelet", "worker-2", 3, {"--set", "x=1"}));
  EXPECT_TRUE(std::regex_match(a, dns)) << a;
  EXPECT_EQ(a.rfind("kp-cis-worker-kubelet-worker-1-", 0), 0u) << a;
  std::string long_node(253, 'n');
  long_node[100] = '.';
  for (const auto& n : {RemediationJobName(std::string(63, 'p'), long_node, 1, {}), AuditJobName(long_node, "k"),
                        RemediationJobName("A_B", "Node.Example.COM", 1, {})}) {
    EXPECT_LE(n.size(), 63u) << n;
    EXPECT_TRUE(std::regex_match(n, dns)) << n;
  }
  EXPECT_EQ(NodeLabelValue("short"), "short");
  EXPECT_EQ(NodeLabelValue(long_node).size(), 63u);
}

TEST(BuildJobTest, RemediationJobIsPinnedPrivilegedAndOwnedByThePolicy) {
  auto p = Policy(json::parse(R"({"remediation": {"timeout": "7m"}})"));
  RemediationOptions opts;
  opts.image = "kubelet-policy-controller@sha256:abc";
  opts.host_paths.push_back("/run/testenv");
  JobSpecInput in{"kp-cis-w1-123", "remediate", "w1", {"agent", "remediate"}, &p, "set x 1 -> 2"};
  json job = BuildJob(in, opts);
  EXPECT_EQ(job["metadata"]["namespace"], "kubelet-policy-remediation");
  EXPECT_EQ(job["metadata"]["labels"][kPolicyLabel], "cis");
  EXPECT_EQ(job["metadata"]["annotations"][kGenerationAnnotation], "3");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["uid"], "u-1");
  const json& spec = job["spec"];
  EXPECT_EQ(spec["activeDeadlineSeconds"], 420);
  EXPECT_EQ(spec["ttlSecondsAfterFinished"], 86400);
  EXPECT_EQ(spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"], json::array({2, 3}));
  const json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["nodeName"], "w1");
  EXPECT_EQ(pod["hostPID"], true);
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["tolerations"], json::parse(R"([{"operator": "Exists"}])"));
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "kubelet-policy-controller@sha256:abc");
  EXPECT_EQ(c["securityContext"]["privileged"], true);
  EXPECT_FALSE(c.contains("workingDir"));
  EXPECT_EQ(c["args"], json::array({"agent", "remediate"}));
  ASSERT_EQ(pod["volumes"].size(), 5u);
  EXPECT_EQ(pod["volumes"][4]["hostPath"]["path"], "/run/testenv");
  EXPECT_EQ(c["volumeMounts"][4]["mountPath"], "/host/run/testenv");
  EXPECT_EQ(c["volumeMounts"][4]["readOnly"], false);
  EXPECT_EQ(spec["template"]["metadata"]["annotations"][kNodeAnnotation], "w1");
}

TEST(BuildJobTest, AuditJobIsReadOnlyAndUnprivileged) {
  JobSpecInput in{"kpa-w1-1", "audit", "w1", AuditArgs({"/etc/kubernetes/a.conf"}), nullptr, ""};
  json job = BuildJob(in, RemediationOptions{});
  EXPECT_FALSE(job["metadata"].contains("ownerReferences"));
  EXPECT_EQ(job["spec"]["ttlSecondsAfterFinished"], 3600);
  const json& c = job["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["args"], json::array({"agent", "audit-files", "--host-root", "/host", "--file", "/etc/kubernetes/a.conf"}));
  EXPECT_FALSE(c["securityContext"].contains("privileged"));
  for (const auto& m : c["volumeMounts"]) EXPECT_EQ(m["readOnly"], true);
}

TEST(JobViewTest, ReadsOutcomeAndBookkeeping) {
  json job = json::parse(R"({"metadata": {"name": "kp-a", "uid": "1", "creationTimestamp": "2026-11-22T08:00:00Z",
      "labels": {"kubeletpolicy.io/job-type": "remediate", "kubeletpolicy.io/policy": "cis"},
      "annotations": {"kubeletpolicy.io/node": "w1", "kubeletpolicy.io/policy-generation": "4",
                      "kubeletpolicy.io/verification": "Succeeded"}},
      "status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-22T08:01:00Z"}]}})");
  auto v = JobViewFromJson(job);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->policy, "cis");
  EXPECT_EQ(v->node, "w1");
  EXPECT_EQ(v->generation, 4);
  EXPECT_TRUE(v->succeeded);
  EXPECT_FALSE(v->Active());
  EXPECT_EQ(v->finished_unix - v->created_unix, 60);
  EXPECT_EQ(v->verification, "Succeeded");
  job["status"]["conditions"] = json::parse(
      R"([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit code 3"}])");
  v = JobViewFromJson(job);
  EXPECT_TRUE(v->failed);
  EXPECT_EQ(v->failure_message, "PodFailurePolicy: exit code 3");
  EXPECT_FALSE(JobViewFromJson(json::parse(R"({"metadata": {"name": "x"}})")));  // not ours: no node
  EXPECT_FALSE(JobViewFromJson(json::parse("[1]")));
}

json PodWithMessage(const json& terminated) {
  return {{"metadata", {{"name", "p"}}},
          {"status", {{"containerStatuses", json::array({{{"name", "agent"}, {"state", {{"terminated", terminated}}}}})}}}};
}

TEST(AgentResultFromPodTest, ReadsTheTerminationMessage) {
  agent::AgentResult r;
  r.command = "remediate";
  r.ok = true;
  r.restarted = true;
  auto got = AgentResultFromPod(PodWithMessage({{"exitCode", 0}, {"message", agent::FitToLimit(r)}}));
  ASSERT_TRUE(got && got->result.ok()) << (got ? got->result.status().message() : "nullopt");
  EXPECT_TRUE(got->result->restarted);
  EXPECT_FALSE(got->refused_by);

  got = AgentResultFromPod(PodWithMessage({{"exitCode", 1}}));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->result.ok());
  EXPECT_NE(got->result.status().message().find("code 1 without a result"), std::string::npos);

  got = AgentResultFromPod(PodWithMessage({{"exitCode", 2}, {"message", "error: unknown flag --frob"}}));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->result.ok());
  EXPECT_NE(got->result.status().message().find("unknown flag --frob"), std::string::npos);

  json running = {{"status", {{"containerStatuses", json::array({{{"state", {{"running", json::object()}}}}})}}}};
  EXPECT_FALSE(AgentResultFromPod(running));
  EXPECT_FALSE(AgentResultFromPod(json::parse("null")));
}

TEST(MergeAuditFactsTest, ResolvesTargetsPreferringTheFlagsDropIn) {
  agent::AgentResult r;
  r.kubelet.config_file = "/var/lib/kubelet/config.yaml";
  r.kubelet.flags_files = {"/var/lib/kubelet/kubeadm-flags.env", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"};
  r.kubelet.service_files = {"/lib/systemd/system/kubelet.service"};
  pol::NodeFacts facts;
  MergeAuditFacts(r, facts);
  EXPECT_EQ(facts.file_targets["KubeletConfigFile"], "/var/lib/kubelet/config.yaml");
  EXPECT_EQ(facts.file_targets["KubeletServiceFile"], "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf");
  EXPECT_EQ(facts.file_targets.count("KubeletKubeconfig"), 0u);
}

TEST(TransformTest, KeepsWhatTheOperatorReads) {
  json pod = {{"metadata", {{"name", "p"}, {"labels", {{"a", "b"}}}, {"managedFields", json::array()}}},
              {"spec", {{"containers", json::array()}}},
              {"status", {{"phase", "Succeeded"}, {"containerStatuses", json::array()}, {"conditions", json::array()}}}};
  json t = TransformPod(pod);
  EXPECT_FALSE(t.contains("spec"));
  EXPECT_FALSE(t["metadata"].contains("managedFields"));
  EXPECT_FALSE(t["status"].contains("conditions"));
  EXPECT_EQ(t["status"]["phase"], "Succeeded");
  json job = {{"metadata", {{"name", "j"}}}, {"spec", {{"template", json::object()}}}, {"status", {{"active", 1}}}};
  EXPECT_FALSE(TransformJob(job).contains("spec"));
  EXPECT_EQ(TransformJob(job)["status"]["active"], 1);
}

TEST(PolicyStatusRolloutTest, StalledAndRemediatingConditions) {
  StatusInput in;
  in.generation = 2;
  in.rule_ids = {"a"};
  NodeResult n;
  n.node = "w1";
  n.state = NodeState::kRemediationFailed;
  in.nodes = {n};
  in.rollout_stalled = "stopped";
  json st = ComputeStatus(in, nullptr);
  EXPECT_EQ(FindCondition(st, "Stalled")["status"], "True");
  EXPECT_EQ(FindCondition(st, "Stalled")["reason"], "RolloutStalled");
  EXPECT_EQ(FindCondition(st, "Ready")["status"], "False");
  EXPECT_EQ(FindCondition(st, "Reconciling")["status"], "False");
  in.rollout_stalled.reset();
  in.remediating = true;
  in.nodes[0].state = NodeState::kRemediating;
  st = ComputeStatus(in, st);
  EXPECT_EQ(FindCondition(st, "Stalled")["status"], "False");
  EXPECT_EQ(FindCondition(st, "Reconciling")["status"], "True");
  EXPECT_EQ(FindCondition(st, "Ready")["reason"], "Remediating");
  EXPECT_EQ(st["summary"]["remediatingNodes"], 1);
}

TEST(AgentResultFromPodTest, TerminationMessagesOverALimitAreRefusedAndSayWhichLimit) {
  agent::AgentResult r;
  r.command = "remediate";
  r.ok = true;
  std::string message = agent::ToJson(r).dump();
  message.insert(message.size() - 1, ",\"pad\":\"" + std::string(5000, 'x') + "\"");
  auto got = AgentResultFromPod(PodWithMessage({{"exitCode", 0}, {"message", message}}));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->result.ok());
  ASSERT_TRUE(got->refused_by);
  EXPECT_EQ(*got->refused_by, policy::InputLimit::kBytes);
  EXPECT_NE(got->result.status().message().find("over the 4 KiB limit"), std::string::npos);
  EXPECT_LT(got->result.status().message().size(), 300u);

  got = AgentResultFromPod(PodWithMessage({{"exitCode", 0}, {"message", std::string(3000, '[')}}));
  ASSERT_TRUE(got && got->refused_by);
  EXPECT_EQ(*got->refused_by, policy::InputLimit::kDepth);
  EXPECT_NE(got->result.status().message().find("nests deeper than 64 levels"), std::string::npos);
}

}  // namespace
}  // namespace kpc::controller
