#include "controller/compliance.h"

#include <gtest/gtest.h>

#include <thread>

#include "base/clock.h"
#include "base/metrics.h"
#include "tests/controller/fakes.h"
#include "tests/controller/fixtures.h"
#include "tests/kube/fake_client.h"

namespace kpc::controller {
namespace {

using nlohmann::json;
namespace pol = kpc::policy;
using namespace std::chrono_literals;

// ---- pure pieces ----

TEST(CompliancePureTest, CheckIntervalIsTheShortestOfTheSelectingPolicies) {
  auto every = fixtures::Policy({{"checkInterval", "10m"}}, "every");
  auto web = fixtures::Policy(
      {{"checkInterval", "2m"}, {"nodeSelector", {{"matchLabels", {{"pool", "web"}}}}}}, "web");
  NodeInfo w{"w", "", {{"pool", "web"}}, "", std::nullopt, true};
  NodeInfo d{"d", "", {{"pool", "db"}}, "", std::nullopt, true};
  EXPECT_EQ(CheckInterval(w, {every, web}), std::chrono::nanoseconds(2min));
  EXPECT_EQ(CheckInterval(d, {every, web}), std::chrono::nanoseconds(10min));
  EXPECT_EQ(CheckInterval(d, {web}), std::nullopt);
}

TEST(CompliancePureTest, EvaluateCheckMapsTheVerdict) {
  auto p = fixtures::Policy();
  NodeInfo node{"n1", "", {}, "v1.34.1", 34, true};
  ConfigzResult failed =
      ConfigzResultFrom(StatusOr<std::string>(Unavailable("connection refused")));
  failed.checked_unix = 77;
  NodeResult r = EvaluateCheck(p, node, failed, {}, 0, nullptr);
  EXPECT_EQ(r.state, NodeState::kUnknown);
  EXPECT_NE(r.message.find("connection refused"), std::string::npos);
  EXPECT_EQ(r.last_checked_unix, 77);

  ConfigzResult bad = ConfigzResultFrom(
      std::string(R"({"kubeletconfig": {"streamingConnectionIdleTimeout": "0s"}})"));
  pol::NodeEvaluation ev;
  r = EvaluateCheck(p, node, bad, {}, 0, &ev);
  EXPECT_EQ(r.state, NodeState::kNonCompliant);
  EXPECT_EQ(r.failed_rules, (std::vector<std::string>{"stream", "qps"}));
  EXPECT_EQ(ev.rules.size(), 4u);  // the file rule is NotApplicable without an audit

  ConfigzResult good = ConfigzResultFrom(std::string(
      R"({"kubeletconfig": {"streamingConnectionIdleTimeout": "4h", "eventRecordQPS": 5}})"));
  EXPECT_EQ(EvaluateCheck(p, node, good, {}, 0, nullptr).state, NodeState::kCompliant);
}

TEST(CompliancePureTest, TransitionEvents) {
  struct Case {
    std::optional<NodeState> before;  // nullopt: never reported
    NodeState now;
    std::string reason;  // "" = no Event
  };
  const std::vector<Case> cases = {
      {std::nullopt, NodeState::kCompliant, ""},
      {std::nullopt, NodeState::kNonCompliant, "NodeNonCompliant"},
      {NodeState::kNonCompliant, NodeState::kNonCompliant, ""},
      {NodeState::kNonCompliant, NodeState::kCompliant, "NodeCompliant"},
      {NodeState::kCompliant, NodeState::kUnknown, "ConfigzUnavailable"},
      {NodeState::kUnknown, NodeState::kNonCompliant, "NodeNonCompliant"},
      {NodeState::kRemediationFailed, NodeState::kNonCompliant,
       ""},  // between non-compliant states
      {NodeState::kBlocked, NodeState::kNonCompliant, ""},
      {NodeState::kNonCompliant, NodeState::kRemediationPlanned, "RemediationPlanned"},
      {NodeState::kRemediating, NodeState::kRemediationFailed, "RemediationFailed"},
      {NodeState::kNonCompliant, NodeState::kBlocked, "RemediationBlocked"},
      {NodeState::kNonCompliant, NodeState::kRemediating, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.before ? NodeStateName(*c.before) : "none") + " -> " +
                 NodeStateName(c.now));
    std::map<std::string, NodeState> before;
    if (c.before) before["n1"] = *c.before;
    NodeResult r;
    r.node = "n1";
    r.state = c.now;
    r.message = "why";
    std::map<std::string, NodeState> next;
    auto events = TransitionEvents("cis", before, {r}, &next);
    if (c.reason.empty()) {
      EXPECT_TRUE(events.empty());
    } else {
      ASSERT_EQ(events.size(), 1u);
      EXPECT_EQ(events[0].reason, c.reason);
      EXPECT_NE(events[0].message.find("cis"), std::string::npos);
    }
    EXPECT_EQ(next.at("n1"), c.now);
  }
  // Pending keeps what was reported and says nothing; nodes gone drop out.
  NodeResult pending;
  pending.node = "n1";
  pending.state = NodeState::kPending;
  std::map<std::string, NodeState> next;
  EXPECT_TRUE(TransitionEvents("cis",
                               {{"n1", NodeState::kBlocked}, {"gone", NodeState::kNonCompliant}},
                               {pending}, &next)
                  .empty());
  EXPECT_EQ(next, (std::map<std::string, NodeState>{{"n1", NodeState::kBlocked}}));
}

TEST(CompliancePureTest, StatesFromStatusAndExceptionExpiry) {
  json status = {{"nodes",
                  {{{"name", "a"}, {"state", "NonCompliant"}},
                   {{"name", "b"}, {"state", "Blocked"}},
                   {{"name", "c"}, {"state", "garbage"}},
                   "not an object"}}};
  EXPECT_EQ(StatesFromStatus(status),
            (std::map<std::string, NodeState>{{"a", NodeState::kNonCompliant},
                                              {"b", NodeState::kBlocked},
                                              {"c", NodeState::kCompliant}}));
  EXPECT_TRUE(StatesFromStatus(json("x")).empty());

  auto p = fixtures::Policy();
  p.exceptions.push_back({});
  p.exceptions.back().expires_unix = 500;
  p.exceptions.push_back({});
  p.exceptions.back().expires_unix = 300;
  p.exceptions.push_back({});  // never expires
  EXPECT_EQ(NextExceptionExpiry(p, 100), 300);
  EXPECT_EQ(NextExceptionExpiry(p, 300), 500);
  EXPECT_EQ(NextExceptionExpiry(p, 500), std::nullopt);
}

// ---- the controller over fake caches, a fake API and a fake clock ----

json PolicyObject(const json& spec_patch = json::object()) {
  json obj = {
      {"apiVersion", "kubeletpolicy.io/v1alpha1"},
      {"kind", "KubeletPolicy"},
      {"metadata", {{"name", "cis"}, {"uid", "u-1"}, {"generation", 3}, {"resourceVersion", "7"}}},
      {"spec",
       {{"enforcement", "Audit"},
        {"rules",
         {{{"id", "stream"},
           {"config",
            {{"path", "streamingConnectionIdleTimeout"},
             {"operator", "NotEquals"},
             {"value", "0s"}}},
           {"remediation", {{"value", "4h0m0s"}}}}}}}}};
  obj["spec"].merge_patch(spec_patch);
  return obj;
}

json NodeObject(const std::string& name) {
  return {{"metadata", {{"name", name}, {"uid", "uid-" + name}, {"labels", {{"pool", "web"}}}}},
          {"status",
           {{"nodeInfo", {{"kubeletVersion", "v1.34.1"}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

// The API server's node proxy, or — while `throttle` is set — a 429 with that Retry-After.
class ThrottlingSource : public ConfigzSource {
 public:
  explicit ThrottlingSource(kube::Client& kube) : proxy_(NewApiserverProxySource(kube)) {}
  ConfigzSourceKind kind() const override { return proxy_->kind(); }
  ConfigzResult Fetch(const std::string& node, std::chrono::milliseconds timeout) override {
    ++fetches;
    if (const std::string ra = throttle.Get(); !ra.empty()) {
      net::HttpResponse r;
      r.status = 429;
      r.headers["retry-after"] = ra;
      return ThrottledConfigzResult("the API server's node proxy", r);
    }
    return proxy_->Fetch(node, timeout);
  }
  struct {
    std::string Get() {
      std::lock_guard<std::mutex> l(mu);
      return value;
    }
    void Set(std::string v) {
      std::lock_guard<std::mutex> l(mu);
      value = std::move(v);
    }
    std::mutex mu;
    std::string value;  // empty: not throttled
  } throttle;
  std::atomic<int> fetches{0};

 private:
  std::unique_ptr<ConfigzSource> proxy_;
};

class ComplianceControllerTest : public ::testing::Test {
 protected:
  ComplianceControllerTest()
      : index_(policies_, parse_cache_),
        remediation_(kube_, events_, metrics_, clock_, jobs_, pods_, facts_, RemediationOptions{},
                     {}),
        configz_(std::make_unique<ThrottlingSource>(kube_)),
        source_(*static_cast<ThrottlingSource*>(configz_.get())),
        compliance_(kube_, *configz_, events_, metrics_, clock_, policies_, nodes_, index_, facts_,
                    remediation_, {}, {}) {
    kube_.SetHook([this](const std::string& verb, const std::string& path, const std::string&,
                         const json& body) -> std::optional<kube::Result> {
      if (verb == "PUT") {
        status_writes_.push_back(body["status"]);
        json stored = body;
        stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
        policies_.Put(stored);  // what the informer would deliver
        return kube::testing::Ok(stored);
      }
      if (verb == "POST" && create_fails_)
        return kube::testing::ErrorResult(500, "InternalError", "etcd is sad");
      if (verb == "PATCH" && patch_fails_)
        return kube::testing::ErrorResult(503, "ServiceUnavailable", "try later");
      (void)path;
      return std::nullopt;
    });
    nodes_.Put(NodeObject("n1"));
    nodes_.Put(NodeObject("n2"));
  }

  void Check(const std::string& node, const std::string& kubeletconfig) {
    ConfigzResult r = ConfigzResultFrom(std::string(R"({"kubeletconfig": )") + kubeletconfig + "}");
    r.checked_at = clock_.Now();
    r.checked_unix = clock_.UnixSeconds();
    compliance_.Record(node, std::move(r));
  }

  FakeClock clock_;
  Registry metrics_;
  kube::testing::FakeKube kube_;
  fakes::FakeEvents events_;
  fakes::FakeStore policies_, nodes_, jobs_, pods_;
  policy::PolicyParseCache parse_cache_;
  PolicyIndex index_;
  NodeFactsStore facts_;
  RemediationController remediation_;
  std::unique_ptr<ConfigzSource> configz_;
  ThrottlingSource& source_;
  ComplianceController compliance_;
  std::vector<json> status_writes_;
  int rv_ = 100;
  bool create_fails_ = false;
  bool patch_fails_ = false;
};

TEST_F(ComplianceControllerTest, StatusFollowsTheChecksAndWritesOnlyChanges) {
  policies_.Put(PolicyObject());
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  ASSERT_EQ(status_writes_.size(), 1u);
  EXPECT_EQ(status_writes_[0]["summary"]["unknownNodes"], 2);  // both pending
  EXPECT_EQ(FindCondition(status_writes_[0], "Reconciling")["status"], "True");

  clock_.Advance(1s);
  Check("n1", R"({"streamingConnectionIdleTimeout": "0s"})");
  Check("n2", R"({"streamingConnectionIdleTimeout": "4h"})");
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  ASSERT_EQ(status_writes_.size(), 2u);
  const json& st = status_writes_[1];
  EXPECT_EQ(st["summary"]["compliantNodes"], 1);
  EXPECT_EQ(st["summary"]["nonCompliantNodes"], 1);
  EXPECT_EQ(st["nodes"][0]["name"], "n1");
  EXPECT_EQ(st["nodes"][0]["failedRules"], json::array({"stream"}));
  EXPECT_EQ(events_.Reasons("Node"), std::vector<std::string>{"n1 NodeNonCompliant"});
  EXPECT_EQ(events_.Reasons("KubeletPolicy"), std::vector<std::string>{"cis NodeNonCompliant"});

  // Nothing changed: no write, no Event.
  events_.Take();
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(status_writes_.size(), 2u);
  EXPECT_TRUE(events_.Take().empty());

  // n1 fixed: one write, NodeCompliant.
  clock_.Advance(1s);
  Check("n1", R"({"streamingConnectionIdleTimeout": "5m"})");
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  ASSERT_EQ(status_writes_.size(), 3u);
  EXPECT_EQ(status_writes_[2]["summary"]["compliantNodes"], 2);
  EXPECT_EQ(events_.Reasons("Node"), std::vector<std::string>{"n1 NodeCompliant"});
  EXPECT_NE(metrics_.Render().find("kubeletpolicy_nodes{policy=\"cis\",state=\"compliant\"} 2"),
            std::string::npos);

  // Deleted: the policy's metrics go.
  policies_.Remove("cis");
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(metrics_.Render().find("policy=\"cis\""), std::string::npos);
}

TEST_F(ComplianceControllerTest, ARestartContinuesFromTheStatusWithoutRepeatingEvents) {
  json obj = PolicyObject();
  obj["status"] = {{"nodes", {{{"name", "n1"}, {"state", "NonCompliant"}}}}};
  policies_.Put(obj);
  Check("n1", R"({"streamingConnectionIdleTimeout": "0s"})");
  Check("n2", R"({"streamingConnectionIdleTimeout": "4h"})");
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_TRUE(events_.Take().empty());
}

TEST_F(ComplianceControllerTest, InvalidSpecStallsAndAnExpiringExceptionRequeues) {
  policies_.Put(PolicyObject({{"checkInterval", "1s"}}));
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  ASSERT_EQ(status_writes_.size(), 1u);
  EXPECT_EQ(FindCondition(status_writes_[0], "Stalled")["reason"], "InvalidSpec");
  EXPECT_NE(FindCondition(status_writes_[0], "Stalled")["message"].get<std::string>().find(
                "checkInterval"),
            std::string::npos);

  const int64_t expires = clock_.UnixSeconds() + 90;
  json obj = PolicyObject({{"exceptions",
                            {{{"rules", {"stream"}},
                              {"nodeSelector", {{"matchLabels", {{"pool", "web"}}}}},
                              {"reason", "migrating"},
                              {"expires", FormatRfc3339(expires)}}}}});
  obj["metadata"]["resourceVersion"] = "8";
  policies_.Put(obj);
  ReconcileResult r = compliance_.Reconcile("cis");
  ASSERT_TRUE(r.status.ok());
  ASSERT_TRUE(r.requeue_after.has_value());
  EXPECT_EQ(*r.requeue_after, std::chrono::nanoseconds(91s));
}

TEST_F(ComplianceControllerTest, EnforceStartsAJobAndAFailedCreateIsRetried) {
  policies_.Put(PolicyObject({{"enforcement", "Enforce"}}));
  Check("n1", R"({"streamingConnectionIdleTimeout": "0s"})");
  Check("n2", R"({"streamingConnectionIdleTimeout": "4h"})");
  create_fails_ = true;
  ReconcileResult r = compliance_.Reconcile("cis");
  EXPECT_FALSE(r.status.ok());           // retried with backoff
  ASSERT_EQ(status_writes_.size(), 1u);  // the status is written all the same
  EXPECT_EQ(status_writes_[0]["nodes"][0]["state"], "NonCompliant");
  EXPECT_EQ(FindCondition(status_writes_[0], "Ready")["message"],
            "remediating 0 node(s) (maxUnavailable 1), 1 waiting");

  create_fails_ = false;
  r = compliance_.Reconcile("cis");
  EXPECT_TRUE(r.status.ok());
  ASSERT_EQ(status_writes_.size(), 2u);
  EXPECT_EQ(status_writes_[1]["nodes"][0]["state"], "Remediating");
  auto jobs = kube_.ObjectsUnder("/apis/batch/v1/namespaces/kubelet-policy-remediation/jobs/");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["spec"]["template"]["spec"]["nodeName"], "n1");
  auto node_events = events_.Reasons("Node");
  EXPECT_NE(std::find(node_events.begin(), node_events.end(), "n1 RemediationStarted"),
            node_events.end());
}

TEST_F(ComplianceControllerTest, AFailedVerificationPatchWritesNothingAndIsRetried) {
  policies_.Put(PolicyObject({{"enforcement", "Enforce"}}));
  // A succeeded Job of this generation, seen before the latest check of n1.
  JobSpecInput js;
  js.name = "kp-cis-n1-fix";
  js.type = "remediate";
  js.node = "n1";
  auto p = fixtures::Policy();
  js.policy = &p;
  json job = BuildJob(js, RemediationOptions{});
  job["metadata"]["labels"][kPolicyLabel] = "cis";
  job["metadata"]["creationTimestamp"] = "2026-11-29T10:00:00Z";
  job["status"] = {{"conditions",
                    {{{"type", "Complete"},
                      {"status", "True"},
                      {"lastTransitionTime", "2026-11-29T10:01:00Z"}}}}};
  jobs_.Put(job);
  Check("n2", R"({"streamingConnectionIdleTimeout": "4h"})");
  Check("n1", R"({"streamingConnectionIdleTimeout": "0s"})");
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());  // first seen: Verifying
  const size_t writes = status_writes_.size();
  clock_.Advance(1s);
  Check("n1", R"({"streamingConnectionIdleTimeout": "4h"})");
  patch_fails_ = true;
  ReconcileResult r = compliance_.Reconcile("cis");
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("recording the verification"), std::string::npos);
  EXPECT_EQ(status_writes_.size(), writes);

  // Once the patch goes through, the node is verified and the status says so.
  patch_fails_ = false;
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_GT(status_writes_.size(), writes);
  auto node_events = events_.Reasons("Node");
  EXPECT_NE(std::find(node_events.begin(), node_events.end(), "n1 RemediationSucceeded"),
            node_events.end());
}

TEST_F(ComplianceControllerTest, AConfigzRefusedByALimitIsUnknownAndCounted) {
  json deep = 1;
  for (int i = 0; i < 100; ++i) deep = json::array({std::move(deep)});
  kube_.Put("/api/v1/nodes/n1/proxy/configz", json{{"kubeletconfig", {{"a", deep}}}});
  const pol::KubeletPolicy p = fixtures::Policy();
  compliance_.Start();
  compliance_.Reschedule(NodeInfoFromJson(NodeObject("n1")), {p});
  const std::string want =
      "kubeletpolicy_input_rejected_total{source=\"configz\",limit=\"depth\"} 1";
  for (int i = 0; i < 500 && metrics_.Render().find(want) == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  compliance_.Stop();
  EXPECT_NE(metrics_.Render().find(want), std::string::npos) << metrics_.Render();
  EXPECT_NE(metrics_.Render().find("kubeletpolicy_configz_fetch_errors_total{reason=\"Malformed\","
                                   "source=\"apiserver-proxy\"} 1"),
            std::string::npos);
  NodeResult r = EvaluateCheck(p, NodeInfoFromJson(NodeObject("n1")),
                               ConfigzResultFrom(json{{"kubeletconfig", {{"a", deep}}}}.dump()), {},
                               0, nullptr);
  EXPECT_EQ(r.state, NodeState::kUnknown);
  EXPECT_NE(r.message.find("nests deeper than 64 levels"), std::string::npos) << r.message;
}

template <typename Pred>
bool Eventually(Pred p) {
  for (int i = 0; i < 300 && !p(); ++i) std::this_thread::sleep_for(10ms);
  return p();
}

TEST_F(ComplianceControllerTest, AThrottledCheckKeepsTheNodesStateAndWaitsForRetryAfter) {
  policies_.Put(PolicyObject());
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  clock_.Advance(1s);
  Check("n1", R"({"streamingConnectionIdleTimeout": "0s"})");  // n2: never checked
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  const size_t writes = status_writes_.size();
  const json before = status_writes_.back();
  ASSERT_EQ(before["nodes"][0]["state"], "NonCompliant");
  events_.Take();

  source_.throttle.Set("30");
  const pol::KubeletPolicy p = fixtures::Policy();
  compliance_.Start();
  compliance_.Reschedule(NodeInfoFromJson(NodeObject("n1")), {p});
  compliance_.Reschedule(NodeInfoFromJson(NodeObject("n2")), {p});
  const std::string counted =
      "kubeletpolicy_configz_fetch_errors_total{reason=\"Throttled\",source=\"apiserver-proxy\"} 2";
  ASSERT_TRUE(Eventually([&] { return metrics_.Render().find(counted) != std::string::npos; }))
      << metrics_.Render();
  EXPECT_EQ(source_.fetches.load(), 2);

  // Nothing about the nodes changed: no status write, no Event, n1 still NonCompliant and n2
  // still not checked.
  clock_.Advance(1s);
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(status_writes_.size(), writes);
  EXPECT_TRUE(events_.Take().empty());
  EXPECT_EQ(compliance_.CheckedNodes(), 1u);

  // Not asked again before the Retry-After, whatever triggers a check.
  compliance_.Trigger("n1");
  clock_.Advance(28s);
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(source_.fetches.load(), 2);
  source_.throttle.Set("");
  kube_.Put("/api/v1/nodes/n1/proxy/configz",
            json{{"kubeletconfig", {{"streamingConnectionIdleTimeout", "4h"}}}});
  kube_.Put("/api/v1/nodes/n2/proxy/configz",
            json{{"kubeletconfig", {{"streamingConnectionIdleTimeout", "4h"}}}});
  clock_.Advance(1s);
  ASSERT_TRUE(Eventually([&] { return compliance_.CheckedNodes() == 2; }));
  compliance_.Stop();
  EXPECT_EQ(source_.fetches.load(), 4);
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(status_writes_.back()["summary"]["compliantNodes"], 2);
}

TEST_F(ComplianceControllerTest, NothingStaysBehindDeletedNodes) {
  constexpr int kNodes = 50;
  const pol::KubeletPolicy p = fixtures::Policy();
  policies_.Put(PolicyObject());
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  clock_.Advance(1s);
  std::vector<std::string> names = {"n1", "n2"};
  for (int i = 0; i < kNodes; ++i) names.push_back("extra-" + std::to_string(i));
  for (const auto& n : names) {
    nodes_.Put(NodeObject(n));
    compliance_.Reschedule(NodeInfoFromJson(NodeObject(n)), {p});
    Check(n, R"({"streamingConnectionIdleTimeout": "0s"})");
  }
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(compliance_.ScheduledNodes(), names.size());
  EXPECT_EQ(compliance_.CheckedNodes(), names.size());
  EXPECT_EQ(compliance_.RememberedNodes("cis"), names.size());

  // The informer's delete: the node leaves the cache, the controller forgets it, and the
  // policies that selected it are reconciled.
  for (const auto& n : names) {
    nodes_.Remove(n);
    compliance_.Forget(n);
  }
  ASSERT_TRUE(compliance_.Reconcile("cis").status.ok());
  EXPECT_EQ(compliance_.ScheduledNodes(), 0u);
  EXPECT_EQ(compliance_.CheckedNodes(), 0u);
  EXPECT_EQ(compliance_.RememberedNodes("cis"), 0u);
  EXPECT_EQ(status_writes_.back()["nodes"].size(), 0u);
}

}  // namespace
}  // namespace kpc::controller
