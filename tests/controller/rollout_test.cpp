#include "controller/rollout.h"

#include <gtest/gtest.h>

#include <deque>

#include "tests/controller/fixtures.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;
using namespace std::chrono_literals;

class RolloutTest : public ::testing::Test {
 protected:
  const TimePoint now_ = TimePoint(1h);

  // `n` selected nodes n1..nN that fail every rule of `p`, audited, Ready, checked just now.
  RolloutInput Input(const pol::KubeletPolicy& p, int n) {
    policy_ = p;
    RolloutInput in;
    in.policy = &policy_;
    in.now = now_;
    for (int i = 1; i <= n; ++i)
      AddNode(in, "n" + std::to_string(i), fixtures::FailingEverything(p));
    return in;
  }
  void AddNode(RolloutInput& in, const std::string& name, pol::NodeEvaluation ev) {
    evaluations_.push_back(std::move(ev));
    RolloutNode node;
    node.result.node = name;
    node.result.state =
        evaluations_.back().Compliant() ? NodeState::kCompliant : NodeState::kNonCompliant;
    node.result.failed_rules = evaluations_.back().FailedRules();
    node.result.message = "fails";
    node.evaluation = &evaluations_.back();
    node.audited = true;
    node.info.name = name;
    node.info.uid = "uid-" + name;
    node.info.ready = true;
    node.info.labels = {{"pool", "web"}};
    node.last_check = now_ - 1s;
    in.nodes.push_back(std::move(node));
  }
  // The name of the Job that would fix node `node` of the current policy.
  std::string FixJobName(const std::string& node) {
    auto args = RemediateArgs(policy_, PlanRemediation(policy_, evaluations_.front()),
                              RemediationOptions{});
    return RemediationJobName(policy_.name, node, policy_.generation, args);
  }

  pol::KubeletPolicy policy_;
  std::deque<pol::NodeEvaluation> evaluations_;
};

JobView Job(const std::string& name, const std::string& node, int64_t generation,
            const std::string& state, int64_t finished_unix = 0) {
  JobView j;
  j.name = name;
  j.node = node;
  j.type = "remediate";
  j.policy = "cis";
  j.generation = generation;
  j.created_unix = finished_unix ? finished_unix - 10 : 100;
  j.finished_unix = finished_unix;
  j.succeeded = state == "Succeeded";
  j.failed = state == "Failed";
  if (j.failed)
    j.failure_message = "BackoffLimitExceeded: Job has reached the specified backoff limit";
  j.plan = "set streamingConnectionIdleTimeout 0s -> 4h0m0s";
  return j;
}

template <typename T>
std::vector<const T*> ActionsOf(const RolloutPlan& plan) {
  std::vector<const T*> out;
  for (const auto& a : plan.actions) {
    if (const T* t = std::get_if<T>(&a)) out.push_back(t);
  }
  return out;
}

std::vector<std::string> CreatedOn(const RolloutPlan& plan) {
  std::vector<std::string> out;
  for (const CreateJob* c : ActionsOf<CreateJob>(plan)) out.push_back(c->node);
  return out;
}

TEST_F(RolloutTest, MaxUnavailableAsNumberAndPercent) {
  struct Case {
    json max_unavailable;
    int nodes;
    int active;  // nodes with a running Job already
    std::vector<std::string> created;
    std::string message;
  };
  const std::vector<Case> cases = {
      {2, 5, 0, {"n1", "n2"}, "remediating 2 node(s) (maxUnavailable 2), 3 waiting"},
      {"40%", 5, 0, {"n1", "n2"}, "remediating 2 node(s) (maxUnavailable 2), 3 waiting"},
      {"10%", 5, 0, {"n1"}, "remediating 1 node(s) (maxUnavailable 1), 4 waiting"},  // at least one
      {"100%", 3, 0, {"n1", "n2", "n3"}, "remediating 3 node(s) (maxUnavailable 3), 0 waiting"},
      {2, 5, 1, {"n2"}, "remediating 2 node(s) (maxUnavailable 2), 3 waiting"},
      {1, 3, 1, {}, "remediating 1 node(s) (maxUnavailable 1), 2 waiting"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.max_unavailable.dump() + " of " + std::to_string(c.nodes));
    auto in = Input(fixtures::Policy({{"remediation", {{"maxUnavailable", c.max_unavailable}}}}),
                    c.nodes);
    for (int i = 1; i <= c.active; ++i)
      in.jobs.push_back(Job("running-" + std::to_string(i), "n" + std::to_string(i), 3, "Active"));
    RolloutPlan plan = PlanRollout(in);
    EXPECT_EQ(CreatedOn(plan), c.created);
    EXPECT_EQ(RemediatingMessage(plan), c.message);
    for (const CreateJob* cj : ActionsOf<CreateJob>(plan)) {
      const NodeResult& nr = plan.nodes[cj->node_index];
      EXPECT_EQ(nr.state, NodeState::kRemediating);
      EXPECT_EQ(nr.remediation["phase"], "Pending");
      EXPECT_EQ(cj->manifest["spec"]["template"]["spec"]["nodeName"], cj->node);
      EXPECT_EQ(cj->if_failed.state, NodeState::kNonCompliant);
      EXPECT_NE(cj->event_message.find("started on node " + cj->node), std::string::npos);
    }
  }
}

TEST_F(RolloutTest, FailureThresholdStallsTheRolloutOnce) {
  auto in = Input(fixtures::Policy({{"remediation", {{"failureThreshold", 2}}}}), 4);
  in.jobs = {Job(FixJobName("n1"), "n1", 3, "Failed", 200), Job("b", "n2", 3, "Failed", 300)};
  RolloutPlan plan = PlanRollout(in);
  ASSERT_TRUE(plan.stalled.has_value());
  EXPECT_NE(plan.stalled->find("after 2 consecutive failed node remediations (failureThreshold 2)"),
            std::string::npos);
  EXPECT_TRUE(CreatedOn(plan).empty());
  auto events = ActionsOf<PolicyEvent>(plan);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->reason, "RolloutStalled");
  EXPECT_EQ(RemediatingMessage(plan), "");
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediationFailed);

  // Reported stalled already (this generation): no second Event, still stalled.
  in.previous_status = {{"conditions",
                         {{{"type", "Stalled"},
                           {"status", "True"},
                           {"reason", "RolloutStalled"},
                           {"observedGeneration", 3}}}}};
  plan = PlanRollout(in);
  EXPECT_TRUE(plan.stalled.has_value());
  EXPECT_TRUE(ActionsOf<PolicyEvent>(plan).empty());

  // A success in between resets the count.
  in.previous_status = json();
  in.jobs = {Job(FixJobName("n1"), "n1", 3, "Failed", 200), Job("c", "n3", 3, "Succeeded", 250),
             Job("b", "n2", 3, "Failed", 300)};
  in.jobs[1].verification = "Succeeded";
  plan = PlanRollout(in);
  EXPECT_FALSE(plan.stalled.has_value());
  EXPECT_FALSE(CreatedOn(plan).empty());

  // Stalled for an older generation: the new spec starts over.
  in.jobs.clear();
  in.previous_status = {{"conditions",
                         {{{"type", "Stalled"},
                           {"status", "True"},
                           {"reason", "RolloutStalled"},
                           {"observedGeneration", 2}}}}};
  EXPECT_FALSE(PlanRollout(in).stalled.has_value());
}

TEST_F(RolloutTest, JobsOfNodesNoLongerSelectedAreNoFailuresAndTakeNoSlot) {
  auto in = Input(
      fixtures::Policy({{"remediation", {{"failureThreshold", 2}, {"maxUnavailable", 1}}}}), 2);
  // Two failed Jobs and a running one on nodes that were deleted or relabelled mid-rollout.
  in.jobs = {Job("a", "gone-1", 3, "Failed", 200), Job("b", "gone-2", 3, "Failed", 300),
             Job("c", "gone-3", 3, "Active")};
  RolloutPlan plan = PlanRollout(in);
  EXPECT_FALSE(plan.stalled.has_value());
  EXPECT_EQ(CreatedOn(plan), std::vector<std::string>{"n1"});
}

TEST_F(RolloutTest, ANodeDeletedMidRemediationCountsForNothing) {
  // failureThreshold 2, maxUnavailable 1, n1 and n2 selected: n1 already failed once, so one
  // more failure stalls the rollout, and one more Job in flight fills the only slot.
  struct Case {
    std::string name;
    JobView job;                                                 // on `job.node`
    std::optional<std::pair<std::string, std::string>> created;  // memory: Job name -> node
    bool stalled;
    std::vector<std::string> created_now;
  };
  auto failed = [](const std::string& node) { return Job("b-" + node, node, 3, "Failed", 300); };
  auto verified_failed = [](const std::string& node) {
    JobView j = Job("b-" + node, node, 3, "Succeeded", 300);
    j.verification = "Failed";
    return j;
  };
  auto active = [](const std::string& node) { return Job("b-" + node, node, 3, "Active"); };
  const std::vector<Case> cases = {
      {"failed on a selected node", failed("n2"), std::nullopt, true, {}},
      {"failed on a deleted node", failed("gone"), std::nullopt, false, {"n2"}},
      {"verified Failed on a selected node", verified_failed("n2"), std::nullopt, true, {}},
      {"verified Failed on a deleted node", verified_failed("gone"), std::nullopt, false, {"n2"}},
      {"running on a selected node", active("n2"), std::nullopt, false, {}},
      {"running on a deleted node", active("gone"), std::nullopt, false, {"n2"}},
      {"just created on a deleted node",
       active("other"),
       std::pair{"c-gone", "gone"},
       false,
       {"n2"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto in = Input(
        fixtures::Policy({{"remediation", {{"failureThreshold", 2}, {"maxUnavailable", 1}}}}), 2);
    in.jobs = {Job(FixJobName("n1"), "n1", 3, "Failed", 200)};
    if (c.job.node != "other") in.jobs.push_back(c.job);
    if (c.created) in.memory.created_jobs[c.created->first] = {c.created->second, now_ - 10s};
    RolloutPlan plan = PlanRollout(in);
    EXPECT_EQ(plan.stalled.has_value(), c.stalled);
    EXPECT_EQ(CreatedOn(plan), c.created_now);
    EXPECT_EQ(plan.nodes.size(), 2u) << "a deleted node has no status entry";
    EXPECT_TRUE(plan.memory.created_jobs.count("c-gone") == 0) << "forgotten with its node";
  }
}

TEST_F(RolloutTest, TheMemoryForgetsJobsAndNodesThatAreGone) {
  auto in = Input(fixtures::Policy({{"remediation", {{"maxUnavailable", 5}}}}), 2);
  for (int i = 0; i < 20; ++i) {
    const std::string n = "deleted-" + std::to_string(i);
    in.memory.created_jobs["created-" + n] = {n, now_ - 5s};
    in.memory.finished_seen["finished-" + n] = now_ - 5s;  // its Job is gone
  }
  in.jobs = {Job("fix", "n1", 3, "Succeeded", 200)};
  in.memory.finished_seen["fix"] = now_;  // still there, still verifying
  RolloutPlan plan = PlanRollout(in);
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Verifying");
  EXPECT_EQ(CreatedOn(plan), std::vector<std::string>{"n2"});
  EXPECT_TRUE(plan.memory.created_jobs.empty());
  EXPECT_EQ(plan.memory.finished_seen.size(), 1u);
  EXPECT_EQ(plan.memory.finished_seen.count("fix"), 1u);
  // Every node and Job gone: nothing is left.
  in.memory = plan.memory;
  in.nodes.clear();
  in.jobs.clear();
  plan = PlanRollout(in);
  EXPECT_TRUE(plan.memory.created_jobs.empty());
  EXPECT_TRUE(plan.memory.finished_seen.empty());
}

TEST_F(RolloutTest, ConflictingEnforcePolicyBlocksTheNodesBothSelect) {
  auto in = Input(fixtures::Policy({{"remediation", {{"maxUnavailable", 2}}}}), 2);
  auto other = fixtures::Policy({{"rules",
                                  {{{"id", "s"},
                                    {"config",
                                     {{"path", "streamingConnectionIdleTimeout"},
                                      {"operator", "NotEquals"},
                                      {"value", "0s"}}},
                                    {"remediation", {{"value", "1h"}}}}}},
                                 {"nodeSelector", {{"matchLabels", {{"pool", "web"}}}}}},
                                "other");
  in.others = {other};
  in.nodes[1].info.labels = {{"pool", "db"}};  // the other policy does not select n2
  RolloutPlan plan = PlanRollout(in);
  EXPECT_EQ(plan.nodes[0].state, NodeState::kBlocked);
  EXPECT_EQ(plan.nodes[0].remediation["reason"], "Conflict");
  EXPECT_NE(plan.nodes[0].message.find("\"other\""), std::string::npos);
  EXPECT_EQ(CreatedOn(plan), std::vector<std::string>{"n2"});

  // An Audit policy remediates nothing: no conflict. Neither is the policy itself.
  in.others[0].enforcement = pol::Enforcement::kAudit;
  in.others.push_back(policy_);
  EXPECT_EQ(CreatedOn(PlanRollout(in)), (std::vector<std::string>{"n1", "n2"}));
}

TEST_F(RolloutTest, BlockedAgentIsBlockedNotAFailure) {
  auto in = Input(fixtures::Policy({{"remediation", {{"failureThreshold", 1}}}}), 1);
  std::string job = FixJobName("n1");
  in.jobs = {Job(job, "n1", 3, "Failed", 200)};
  agent::AgentResult r;
  r.command = "remediate";
  r.blocked = agent::Blocked{"FlagOverride",
                             "--streaming-connection-idle-timeout on the kubelet's command line"};
  in.job_results.emplace(job, r);
  RolloutPlan plan = PlanRollout(in);
  EXPECT_FALSE(plan.stalled.has_value());
  EXPECT_EQ(plan.nodes[0].state, NodeState::kBlocked);
  EXPECT_EQ(plan.nodes[0].remediation["reason"], "FlagOverride");
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Blocked");
  EXPECT_NE(plan.nodes[0].message.find("FlagOverride: --streaming"), std::string::npos);
  EXPECT_TRUE(CreatedOn(plan).empty());  // not retried

  // Ended by the pod failure policy with no readable result: blocked too.
  in.job_results.clear();
  in.jobs[0].failure_message =
      "PodFailurePolicy: Container agent for pod x failed with exit code 3";
  plan = PlanRollout(in);
  EXPECT_FALSE(plan.stalled.has_value());
  EXPECT_EQ(plan.nodes[0].state, NodeState::kBlocked);

  // An ordinary failure of the same plan: RemediationFailed, counted, not retried.
  in.jobs[0].failure_message = "BackoffLimitExceeded: x";
  plan = PlanRollout(in);
  EXPECT_TRUE(plan.stalled.has_value());
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediationFailed);
}

TEST_F(RolloutTest, WaitsForTheFirstFileAudit) {
  auto in = Input(fixtures::Policy(), 2);
  in.nodes[0].audited = false;
  RolloutPlan plan = PlanRollout(in);
  EXPECT_EQ(CreatedOn(plan), std::vector<std::string>{"n2"});
  EXPECT_EQ(plan.nodes[0].state, NodeState::kNonCompliant);
  EXPECT_EQ(plan.nodes[0].message.rfind("waiting for the node's first file audit", 0), 0u);
  EXPECT_EQ(RemediatingMessage(plan), "remediating 1 node(s) (maxUnavailable 1), 1 waiting");
}

TEST_F(RolloutTest, VerificationWaitsForACheckAfterTheJobThenRecordsTheVerdict) {
  auto in = Input(fixtures::Policy(), 1);
  in.jobs = {Job("fix", "n1", 3, "Succeeded", 200)};
  // First seen: a check is asked for, the node is Verifying.
  RolloutPlan plan = PlanRollout(in);
  ASSERT_EQ(ActionsOf<TriggerCheck>(plan).size(), 1u);
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediating);
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Verifying");
  EXPECT_EQ(plan.memory.finished_seen.at("fix"), now_);
  EXPECT_TRUE(ActionsOf<PatchVerification>(plan).empty());

  // Still no check after it: no second trigger.
  in.memory = plan.memory;
  in.now = now_ + 5s;
  plan = PlanRollout(in);
  EXPECT_TRUE(ActionsOf<TriggerCheck>(plan).empty());
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Verifying");

  // A check after it, the node still failing: Failed, counted.
  in.nodes[0].last_check = now_ + 2s;
  plan = PlanRollout(in);
  auto patches = ActionsOf<PatchVerification>(plan);
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_FALSE(patches[0]->fixed);
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediationFailed);
  EXPECT_FALSE(plan.memory.finished_seen.count("fix"));
  EXPECT_TRUE(CreatedOn(plan).empty());
  EXPECT_TRUE(std::holds_alternative<PatchVerification>(plan.actions.front()));

  // The same with the node now passing: Succeeded, with its Event; the verdict stands.
  in.nodes.clear();
  AddNode(in, "n1", fixtures::PassingEverything(policy_));
  in.nodes[0].last_check = now_ + 2s;
  plan = PlanRollout(in);
  patches = ActionsOf<PatchVerification>(plan);
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_TRUE(patches[0]->fixed);
  EXPECT_EQ(patches[0]->node_uid, "uid-n1");
  EXPECT_NE(patches[0]->event_message.find("verified through /configz"), std::string::npos);
  EXPECT_EQ(plan.nodes[0].state, NodeState::kCompliant);
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Succeeded");

  // Not Ready: keep waiting.
  in.nodes[0].info.ready = false;
  EXPECT_TRUE(ActionsOf<PatchVerification>(PlanRollout(in)).empty());
}

TEST_F(RolloutTest, ARestartedLeaderReadsTheRolloutBackFromJobsAndStatus) {
  // Fresh memory; the caches hold a running Job and one created a moment ago is not there yet.
  auto in = Input(fixtures::Policy({{"remediation", {{"maxUnavailable", 2}}}}), 4);
  in.jobs = {Job("running", "n1", 3, "Active")};
  in.memory.created_jobs["just-created"] = {"n2", now_ - 10s};
  in.memory.created_jobs["long-ago"] = {"n3", now_ - 3min};  // never showed up: forgotten
  RolloutPlan plan = PlanRollout(in);
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediating);
  EXPECT_EQ(plan.nodes[0].remediation["phase"], "Running");
  EXPECT_EQ(plan.nodes[1].state, NodeState::kRemediating);
  EXPECT_TRUE(CreatedOn(plan).empty());  // two in progress = maxUnavailable
  EXPECT_EQ(plan.memory.created_jobs.count("long-ago"), 0u);
  EXPECT_EQ(plan.memory.created_jobs.count("just-created"), 1u);

  // Once the Job cache shows it, the memory lets go of it.
  in.jobs.push_back(Job("just-created", "n2", 3, "Active"));
  EXPECT_EQ(PlanRollout(in).memory.created_jobs.count("just-created"), 0u);

  // Until the Job and Pod caches have listed, nothing is decided.
  in.jobs_synced = false;
  plan = PlanRollout(in);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(RemediatingMessage(plan), "waiting for the Job and Pod caches to sync");
}

TEST_F(RolloutTest, DriftAfterAVerifiedFixRunsItAgain) {
  auto in = Input(fixtures::Policy(), 1);
  std::string job = FixJobName("n1");
  in.jobs = {Job(job, "n1", 3, "Succeeded", 200)};
  in.jobs[0].verification = "Succeeded";
  RolloutPlan plan = PlanRollout(in);
  auto deletes = ActionsOf<DeleteJob>(plan);
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0]->job, job);
  EXPECT_TRUE(CreatedOn(plan).empty());  // created again once the old Job is gone

  // Verified Failed before: RemediationFailed, nothing run again.
  in.jobs[0].verification = "Failed";
  plan = PlanRollout(in);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.nodes[0].state, NodeState::kRemediationFailed);
}

TEST_F(RolloutTest, DryRunPlansAndTouchesNothing) {
  auto in = Input(fixtures::Policy({{"enforcement", "DryRun"}}), 2);
  in.jobs_synced = false;  // DryRun does not need the Job caches
  RolloutPlan plan = PlanRollout(in);
  EXPECT_TRUE(plan.actions.empty());
  for (const auto& nr : plan.nodes) {
    EXPECT_EQ(nr.state, NodeState::kRemediationPlanned);
    EXPECT_EQ(nr.remediation["phase"], "Planned");
    EXPECT_EQ(nr.remediation["changes"][0], "set streamingConnectionIdleTimeout 0s -> 4h0m0s");
  }
  EXPECT_EQ(RemediatingMessage(plan), "");
}

TEST_F(RolloutTest, PendingUnknownAndCompliantNodesAreLeftAlone) {
  auto in = Input(fixtures::Policy(), 0);
  AddNode(in, "ok", fixtures::PassingEverything(policy_));
  AddNode(in, "pending", fixtures::FailingEverything(policy_));
  in.nodes[1].result.state = NodeState::kPending;
  in.nodes[1].evaluation = nullptr;
  AddNode(in, "unknown", fixtures::FailingEverything(policy_));
  in.nodes[2].result.state = NodeState::kUnknown;
  RolloutPlan plan = PlanRollout(in);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.nodes[0].state, NodeState::kCompliant);
  EXPECT_EQ(plan.nodes[1].state, NodeState::kPending);
  EXPECT_EQ(plan.nodes[2].state, NodeState::kUnknown);
}

}  // namespace
}  // namespace kpc::controller
