#include "controller/file_audit.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "tests/controller/fixtures.h"
#include "tests/kube/fake_client.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;

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

}  // namespace
}  // namespace kpc::controller
