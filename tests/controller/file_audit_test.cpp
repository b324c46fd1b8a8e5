#include "controller/file_audit.h"

#include <gtest/gtest.h>

#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "tests/controller/fixtures.h"
#include "tests/kube/fake_client.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;
using namespace std::chrono_literals;

TEST(PlanAuditTest, OneJobPerNodeSlotAndPathSet) {
  auto files = fixtures::Policy(json::parse(R"({"rules": [
      {"id": "a", "file": {"target": "Path", "path": "/etc/kubernetes/b.conf", "maxMode": "0600"}},
      {"id": "b", "file": {"target": "KubeletKubeconfig", "maxMode": "0600"}}]})"),
                                "files");
  auto more =
      fixtures::Policy(json::parse(R"({"nodeSelector": {"matchLabels": {"pool": "web"}}, "rules": [
      {"id": "c", "file": {"target": "Path", "path": "/etc/kubernetes/a.conf", "maxMode": "0600"}}]})"),
                       "more");
  auto config_only = fixtures::Policy(json::parse(R"({"rules": [
      {"id": "s", "config": {"path": "readOnlyPort", "operator": "Equals", "value": 0}}]})"),
                                      "config");
  NodeInfo web{"w1", "", {{"pool", "web"}}, "", std::nullopt, true};
  NodeInfo db{"d1", "", {{"pool", "db"}}, "", std::nullopt, true};

  EXPECT_FALSE(PlanAudit(web, {config_only}, 1000, std::chrono::seconds(3600)).has_value());
  auto job = PlanAudit(web, {files, more, config_only}, 1000, std::chrono::seconds(3600));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->type, "audit");
  EXPECT_EQ(job->node, "w1");
  EXPECT_EQ(job->args, (std::vector<std::string>{"agent", "audit-files", "--host-root", "/host",
                                                 "--file", "/etc/kubernetes/a.conf", "--file",
                                                 "/etc/kubernetes/b.conf"}));
  // The same slot: the same Job (a second leader finds it); the next slot or other paths: another.
  EXPECT_EQ(PlanAudit(web, {files, more}, 3599, std::chrono::seconds(3600))->name, job->name);
  EXPECT_NE(PlanAudit(web, {files, more}, 3600, std::chrono::seconds(3600))->name, job->name);
  auto on_db = PlanAudit(db, {files, more}, 1000, std::chrono::seconds(3600));
  ASSERT_TRUE(on_db.has_value());
  EXPECT_EQ(on_db->args, (std::vector<std::string>{"agent", "audit-files", "--host-root", "/host",
                                                   "--file", "/etc/kubernetes/b.conf"}));
  EXPECT_TRUE(NeedsFileAudit(db, {files}));
  EXPECT_FALSE(NeedsFileAudit(db, {more, config_only}));
}

json AuditPod(const std::string& uid, const std::string& created, const std::string& message) {
  return {{"metadata",
           {{"name", "kpa-w1-" + uid},
            {"uid", uid},
            {"creationTimestamp", created},
            {"labels", {{kJobTypeLabel, "audit"}}},
            {"annotations", {{kNodeAnnotation, "w1"}}}}},
          {"status",
           {{"containerStatuses",
             {{{"state", {{"terminated", {{"exitCode", 0}, {"message", message}}}}}}}}}}};
}

// A terminated audit pod on `node` with an empty, successful result.
json AuditPodOn(const std::string& node) {
  agent::AgentResult r;
  r.command = "audit-files";
  r.ok = true;
  json pod = AuditPod("uid-" + node, "2026-11-29T10:00:00Z", agent::ToJson(r).dump());
  pod["metadata"]["annotations"][kNodeAnnotation] = node;
  return pod;
}

TEST(FileAuditControllerTest, TerminatedAuditPodsBecomeTheNodesFacts) {
  FakeClock clock;
  Registry metrics;
  kube::testing::FakeKube kube;
  NodeFactsStore facts;
  std::vector<std::string> changed;
  FileAuditController audits(kube, metrics, clock, facts, FileAuditOptions{},
                             {[](const std::string&) { return std::nullopt; },
                              [] { return std::vector<pol::KubeletPolicy>{}; },
                              [&](const std::string& n) { changed.push_back(n); }});
  agent::AgentResult r;
  r.command = "audit-files";
  r.ok = true;
  r.kubelet.kubeconfig = "/etc/kubernetes/kubelet.conf";
  pol::FileFacts f;
  f.exists = true;
  f.mode = 0600;
  r.files["/etc/kubernetes/kubelet.conf"] = f;
  audits.OnPod(AuditPod("p2", "2026-11-29T10:00:00Z", agent::ToJson(r).dump()));
  ASSERT_EQ(changed, std::vector<std::string>{"w1"});
  uint64_t version = 0;
  pol::NodeFacts got = facts.FactsFor("w1", &version);
  EXPECT_NE(version, 0u);
  EXPECT_EQ(got.file_targets.at("KubeletKubeconfig"), "/etc/kubernetes/kubelet.conf");
  EXPECT_EQ(got.files.at("/etc/kubernetes/kubelet.conf").mode, 0600u);

  // The same pod again, or an older one: nothing changes.
  audits.OnPod(AuditPod("p2", "2026-11-29T10:00:00Z", agent::ToJson(r).dump()));
  audits.OnPod(AuditPod("p1", "2026-11-29T09:00:00Z", "garbage"));
  EXPECT_EQ(changed.size(), 1u);
  // A pod of another type is not an audit.
  json other = AuditPod("p3", "2026-11-29T11:00:00Z", agent::ToJson(r).dump());
  other["metadata"]["labels"][kJobTypeLabel] = "remediate";
  audits.OnPod(other);
  EXPECT_EQ(changed.size(), 1u);
  // A newer audit without a readable result keeps the facts but counts as a change.
  audits.OnPod(AuditPod("p4", "2026-11-29T12:00:00Z", "not json"));
  EXPECT_EQ(changed.size(), 2u);
  uint64_t v2 = 0;
  EXPECT_EQ(facts.FactsFor("w1", &v2).files.size(), 1u);
  EXPECT_GT(v2, version);
  // A remediation's changed files land at once.
  f.mode = 0400;
  EXPECT_TRUE(facts.RecordChangedFiles("w1", {{"/etc/kubernetes/kubelet.conf", f}}));
  EXPECT_EQ(facts.FactsFor("w1", &v2).files.at("/etc/kubernetes/kubelet.conf").mode, 0400u);
  EXPECT_FALSE(facts.RecordChangedFiles("never-audited", {{"/x", f}}));
  audits.Forget("w1");
  facts.FactsFor("w1", &v2);
  EXPECT_EQ(v2, 0u);
}

TEST(FileAuditControllerTest, ResultsRefusedByALimitAreCountedOncePerPod) {
  FakeClock clock;
  Registry metrics;
  kube::testing::FakeKube kube;
  NodeFactsStore facts;
  FileAuditController audits(kube, metrics, clock, facts, FileAuditOptions{},
                             {[](const std::string&) { return std::nullopt; },
                              [] { return std::vector<pol::KubeletPolicy>{}; }, nullptr});
  const std::string big = R"({"command": "audit-files", "x": ")" + std::string(5000, 'x') + R"("})";
  audits.OnPod(AuditPod("p1", "2026-11-29T10:00:00Z", big));
  audits.OnPod(AuditPod("p1", "2026-11-29T10:00:00Z", big));
  EXPECT_NE(metrics.Render().find(
                "kubeletpolicy_input_rejected_total{source=\"agent-result\",limit=\"bytes\"} 1"),
            std::string::npos)
      << metrics.Render();
}

TEST(AuditRetryDelayTest, FiveSecondsDoublingToFiveMinutesWithinTheInterval) {
  struct Case {
    int failures;
    std::chrono::seconds interval, want;
  };
  const std::vector<Case> cases =
      {
          {1, 3600s, 5s},
          {2, 3600s, 10s},
          {3, 3600s, 20s},
          {4, 3600s, 40s},
          {5, 3600s, 80s},
          {6, 3600s, 160s},
          {7, 3600s, 300s},
          {8, 3600s, 300s},
          {1000000, 3600s, 300s},  // no overflow however long it fails
          {6, 120s, 120s},         // never later than the next regular audit
          {1, 3s, 3s},
          {1, 0s, 1s},
          {0, 3600s, 5s},
      };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.failures) + " failures, interval " +
                 std::to_string(c.interval.count()));
    EXPECT_EQ(AuditRetryDelay(c.failures, c.interval), c.want);
  }
}

// Audit Job creates through a fake API that fails them while `failing` is set.
class FileAuditRetryTest : public ::testing::Test {
 protected:
  FileAuditRetryTest()
      : audits_(kube_, metrics_, clock_, facts_, FileAuditOptions{},
                {[](const std::string& n) -> std::optional<NodeInfo> {
                   return NodeInfo{n, "uid-" + n, {}, "", std::nullopt, true};
                 },
                 [this] { return std::vector<pol::KubeletPolicy>{policy_}; }, nullptr}) {
    kube_.SetHook([this](const std::string& verb, const std::string&, const std::string&,
                         const json&) -> std::optional<kube::Result> {
      if (verb != "POST") return std::nullopt;
      ++creates_;
      if (failing_) return kube::testing::ErrorResult(500, "InternalError", "etcd is sad");
      return std::nullopt;
    });
  }
  bool CreatesReach(int n) {
    for (int i = 0; i < 300 && creates_.load() < n; ++i) std::this_thread::sleep_for(10ms);
    return creates_.load() == n;
  }
  bool NoMoreCreatesThan(int n) {
    std::this_thread::sleep_for(150ms);
    return creates_.load() == n;
  }

  // Waits up to 2 s until `n` nodes back off. A failed create is counted after it returns and
  // its retry is scheduled just after that: the extra 50 ms of real time cover the gap, so
  // the retry is measured from before the test moves the clock.
  bool BackingOff(size_t n) {
    for (int i = 0; i < 200 && audits_.BackingOffNodes() != n; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(50ms);
    return audits_.BackingOffNodes() == n;
  }

  FakeClock clock_;
  Registry metrics_;
  kube::testing::FakeKube kube_;
  NodeFactsStore facts_;
  const pol::KubeletPolicy policy_ = fixtures::Policy();  // has a file rule
  FileAuditController audits_;
  std::atomic<int> creates_{0};
  std::atomic<bool> failing_{true};
};

TEST_F(FileAuditRetryTest, AFailedCreateIsRetriedWithBackoffAndASuccessResetsIt) {
  audits_.Start();
  audits_.Reschedule(NodeInfo{"w1", "uid-w1", {}, "", std::nullopt, true}, {policy_});
  ASSERT_TRUE(CreatesReach(1));
  EXPECT_TRUE(NoMoreCreatesThan(1));
  clock_.Advance(4s);
  EXPECT_TRUE(NoMoreCreatesThan(1)) << "the first retry comes after 5 s";
  clock_.Advance(1s);
  ASSERT_TRUE(CreatesReach(2));
  ASSERT_TRUE(BackingOff(1)) << "the failure is recorded before the clock moves on";
  clock_.Advance(9s);
  EXPECT_TRUE(NoMoreCreatesThan(2)) << "then after 10 s";
  EXPECT_EQ(audits_.BackingOffNodes(), 1u);
  failing_ = false;
  clock_.Advance(1s);
  ASSERT_TRUE(CreatesReach(3));
  for (int i = 0; i < 100 && audits_.BackingOffNodes() != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(audits_.BackingOffNodes(), 0u) << "a success resets the backoff";
  clock_.Advance(300s);
  EXPECT_TRUE(NoMoreCreatesThan(3)) << "back to the interval (an hour)";
  // Failing again starts over at 5 s, not where the last streak ended.
  failing_ = true;
  audits_.Trigger("w1");
  ASSERT_TRUE(CreatesReach(4));
  ASSERT_TRUE(BackingOff(1)) << "the failure is recorded before the clock moves on";
  clock_.Advance(5s);
  ASSERT_TRUE(CreatesReach(5));
  audits_.Stop();
}

TEST_F(FileAuditRetryTest, NothingStaysBehindDeletedNodes) {
  constexpr int kNodes = 20;
  audits_.Start();
  for (int i = 0; i < kNodes; ++i) {
    audits_.Reschedule(NodeInfo{"n" + std::to_string(i), "", {}, "", std::nullopt, true},
                       {policy_});
  }
  // Every node's create failed once (the scheduler creates at most --file-audit-qps a second).
  for (int i = 0; i < 200 && audits_.BackingOffNodes() < static_cast<size_t>(kNodes); ++i) {
    clock_.Advance(1s);
    std::this_thread::sleep_for(20ms);
  }
  audits_.Stop();
  ASSERT_GE(creates_.load(), kNodes);
  EXPECT_EQ(audits_.ScheduledNodes(), static_cast<size_t>(kNodes));
  EXPECT_EQ(audits_.BackingOffNodes(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; ++i) audits_.OnPod(AuditPodOn("n" + std::to_string(i)));
  EXPECT_EQ(facts_.Size(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; ++i) audits_.Forget("n" + std::to_string(i));
  EXPECT_EQ(audits_.ScheduledNodes(), 0u);
  EXPECT_EQ(audits_.BackingOffNodes(), 0u);
  EXPECT_EQ(facts_.Size(), 0u);
}

}  // namespace
}  // namespace kpc::controller
