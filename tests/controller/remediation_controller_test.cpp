#include "controller/remediation_controller.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "tests/controller/fakes.h"
#include "tests/controller/fixtures.h"
#include "tests/kube/fake_client.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;

json RemediationPod(const std::string& job, const std::string& message) {
  return {{"metadata",
           {{"name", job + "-abcde"},
            {"uid", "pod-" + job},
            {"labels",
             {{kJobTypeLabel, "remediate"},
              {kPolicyLabel, "cis"},
              {"batch.kubernetes.io/job-name", job}}},
            {"annotations", {{kNodeAnnotation, "n1"}}}}},
          {"status",
           {{"containerStatuses",
             {{{"state", {{"terminated", {{"exitCode", 0}, {"message", message}}}}}}}}}}};
}

class RemediationControllerTest : public ::testing::Test {
 protected:
  RemediationControllerTest()
      : remediation_(kube_, events_, metrics_, clock_, jobs_, pods_, facts_, RemediationOptions{},
                     {[this](const std::string& n) { triggered_.push_back(n); },
                      [this](const std::string& p) { enqueued_.push_back(p); }}) {}

  FakeClock clock_;
  Registry metrics_;
  kube::testing::FakeKube kube_;
  fakes::FakeEvents events_;
  fakes::FakeStore jobs_, pods_;
  NodeFactsStore facts_;
  RemediationController remediation_;
  std::vector<std::string> triggered_, enqueued_;
};

TEST_F(RemediationControllerTest, PodResultsAreRecordedOnceAndChangedFilesReachTheFacts) {
  // The node was audited: its kubeconfig was 0644.
  agent::AgentResult audit;
  audit.command = "audit-files";
  audit.ok = true;
  pol::FileFacts before;
  before.exists = true;
  before.mode = 0644;
  audit.files["/etc/kubernetes/kubelet.conf"] = before;
  ASSERT_TRUE(facts_.RecordAudit("n1", "audit-pod", 100, audit));

  agent::AgentResult fixed;
  fixed.command = "remediate";
  fixed.ok = true;
  pol::FileFacts after = before;
  after.mode = 0600;
  fixed.files["/etc/kubernetes/kubelet.conf"] = after;
  remediation_.OnPod(RemediationPod("kp-cis-n1-x", agent::ToJson(fixed).dump()));
  EXPECT_EQ(enqueued_, std::vector<std::string>{"cis"});
  uint64_t version = 0;
  EXPECT_EQ(facts_.FactsFor("n1", &version).files.at("/etc/kubernetes/kubelet.conf").mode, 0600u);

  // The same pod again (an informer resync): nothing new.
  remediation_.OnPod(RemediationPod("kp-cis-n1-x", agent::ToJson(fixed).dump()));
  EXPECT_EQ(enqueued_.size(), 1u);
  // Pods that have not terminated, and audit pods, are not remediation results.
  json running = RemediationPod("kp-cis-n1-y", "");
  running["status"] = {{"containerStatuses", {{{"state", {{"running", json::object()}}}}}}};
  remediation_.OnPod(running);
  json audit_pod = RemediationPod("kpa-n1", agent::ToJson(audit).dump());
  audit_pod["metadata"]["labels"][kJobTypeLabel] = "audit";
  remediation_.OnPod(audit_pod);
  EXPECT_EQ(enqueued_.size(), 1u);

  // A deleted Job forgets its result; its policy is reconciled.
  JobSpecInput js;
  js.name = "kp-cis-n1-x";
  js.type = "remediate";
  js.node = "n1";
  auto p = fixtures::Policy();
  js.policy = &p;
  remediation_.OnJob(BuildJob(js, RemediationOptions{}), /*deleted=*/true);
  EXPECT_EQ(enqueued_.size(), 2u);
  remediation_.OnPod(RemediationPod("kp-cis-n1-x", agent::ToJson(fixed).dump()));
  EXPECT_EQ(enqueued_.size(), 3u);  // recorded again: it was forgotten
}

TEST_F(RemediationControllerTest, DryRunPlansAndWritesNothing) {
  auto p = fixtures::Policy({{"enforcement", "DryRun"}});
  pol::NodeEvaluation ev = fixtures::FailingEverything(p);
  RolloutNode n;
  n.result.node = "n1";
  n.result.state = NodeState::kNonCompliant;
  n.evaluation = &ev;
  n.audited = true;
  n.info.name = "n1";
  json obj = {{"metadata", {{"name", "cis"}, {"uid", "u-1"}}}};
  auto out = remediation_.Reconcile(p, obj, {n}, {});
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->nodes.size(), 1u);
  EXPECT_EQ(out->nodes[0].state, NodeState::kRemediationPlanned);
  EXPECT_TRUE(out->status.ok());
  EXPECT_TRUE(kube_.Calls().empty());  // DryRun writes nothing
}

TEST_F(RemediationControllerTest, ResultsRefusedByALimitAreCountedOncePerJob) {
  const std::string deep(3000, '[');
  remediation_.OnPod(RemediationPod("kp-cis-n1-z", deep));
  remediation_.OnPod(RemediationPod("kp-cis-n1-z", deep));  // a resync of the same pod
  EXPECT_NE(metrics_.Render().find(
                "kubeletpolicy_input_rejected_total{source=\"agent-result\",limit=\"depth\"} 1"),
            std::string::npos)
      << metrics_.Render();
}

TEST_F(RemediationControllerTest, NothingStaysBehindDeletedJobs) {
  constexpr int kJobs = 30;
  agent::AgentResult fixed;
  fixed.command = "remediate";
  fixed.ok = true;
  auto job_object = [](const std::string& name) {
    return json{{"metadata",
                 {{"name", name},
                  {"namespace", "kubelet-policy-remediation"},
                  {"labels", {{kJobTypeLabel, "remediate"}, {kPolicyLabel, "cis"}}},
                  {"annotations", {{kNodeAnnotation, "n1"}}}}}};
  };
  auto pod_of = [&](const std::string& job) {
    json pod = RemediationPod(job, agent::ToJson(fixed).dump());
    pod["metadata"]["namespace"] = "kubelet-policy-remediation";
    return pod;
  };
  for (int i = 0; i < kJobs; ++i) {
    const std::string job = "kp-cis-n" + std::to_string(i);
    jobs_.Put(job_object(job));
    remediation_.OnPod(pod_of(job));
  }
  EXPECT_EQ(remediation_.RecordedJobResults(), static_cast<size_t>(kJobs));

  // Half the Jobs are deleted the usual way: the Job first (its result goes), then its pod.
  for (int i = 0; i < kJobs / 2; ++i) {
    const std::string job = "kp-cis-n" + std::to_string(i);
    jobs_.Remove("kubelet-policy-remediation/" + job);
    remediation_.OnJob(job_object(job), /*deleted=*/true);
    remediation_.OnPodDeleted(pod_of(job));
  }
  EXPECT_EQ(remediation_.RecordedJobResults(), static_cast<size_t>(kJobs - kJobs / 2));
  // The rest: a late pod update after the Job's deletion brings a result back; the pod's own
  // deletion takes it away again.
  for (int i = kJobs / 2; i < kJobs; ++i) {
    const std::string job = "kp-cis-n" + std::to_string(i);
    jobs_.Remove("kubelet-policy-remediation/" + job);
    remediation_.OnJob(job_object(job), /*deleted=*/true);
    remediation_.OnPod(pod_of(job));
  }
  EXPECT_EQ(remediation_.RecordedJobResults(), static_cast<size_t>(kJobs - kJobs / 2));
  for (int i = kJobs / 2; i < kJobs; ++i) {
    remediation_.OnPodDeleted(pod_of("kp-cis-n" + std::to_string(i)));
  }
  EXPECT_EQ(remediation_.RecordedJobResults(), 0u);
}

TEST_F(RemediationControllerTest, APodDeletedWhileItsJobStaysKeepsTheResult) {
  agent::AgentResult fixed;
  fixed.command = "remediate";
  fixed.ok = true;
  json pod = RemediationPod("kp-cis-n1", agent::ToJson(fixed).dump());
  pod["metadata"]["namespace"] = "kubelet-policy-remediation";
  jobs_.Put(
      json{{"metadata", {{"name", "kp-cis-n1"}, {"namespace", "kubelet-policy-remediation"}}}});
  remediation_.OnPod(pod);
  remediation_.OnPodDeleted(pod);
  EXPECT_EQ(remediation_.RecordedJobResults(), 1u) << "the Job's outcome still needs it";
  // Before the Job cache has listed, a missing Job proves nothing either.
  jobs_.Remove("kubelet-policy-remediation/kp-cis-n1");
  jobs_.synced = false;
  remediation_.OnPodDeleted(pod);
  EXPECT_EQ(remediation_.RecordedJobResults(), 1u);
  jobs_.synced = true;
  remediation_.OnPodDeleted(pod);
  EXPECT_EQ(remediation_.RecordedJobResults(), 0u);
}

}  // namespace
}  // namespace kpc::controller
