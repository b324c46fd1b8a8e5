// kube/ against the REAL API server of e2e/testenv. Runs only when KPC_TESTENV_KUBECONFIG
// names an admin kubeconfig (e.g. the last line printed by `e2e/testenv/up`); skipped
// otherwise. Each run works in a fresh namespace and deletes it afterwards.

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "kube/client.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/leader_election.h"
#define KPC_LSAN_COARSE 1  // timing-sensitive: see the header
#include "tests/net/lsan_suppressions.h"

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds timeout = 15000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

std::string RandomSuffix() {
  std::mt19937_64 rng{std::random_device{}()};
  const char* alphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 6; ++i) s.push_back(alphabet[rng() % 27]);
  return s;
}

class TestenvTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* path = std::getenv("KPC_TESTENV_KUBECONFIG");
    if (!path || !*path) return;
    auto cfg = LoadKubeconfig(path);
    ASSERT_TRUE(cfg.ok()) << cfg.status().message();
    cfg_ = new ClientConfig(*cfg);
    cfg_->qps = 100;
    cfg_->burst = 200;
    client_ = NewClient(clock_, *cfg_).release();
    ns_ = new std::string("kpc-it-" + RandomSuffix());
    Result r = client_->Create("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                     {"metadata", {{"name", *ns_}}}});
    ASSERT_TRUE(r.ok()) << r.status.message();
  }
  static void TearDownTestSuite() {
    if (client_ && ns_) (void)client_->Delete("/api/v1/namespaces/" + *ns_);
    delete client_;
    delete cfg_;
    delete ns_;
    client_ = nullptr;
  }
  void SetUp() override {
    if (!client_) GTEST_SKIP() << "KPC_TESTENV_KUBECONFIG not set (run e2e/testenv/up and export its kubeconfig path)";
  }
  static std::string Cms() { return "/api/v1/namespaces/" + *ns_ + "/configmaps"; }
  static nlohmann::json ConfigMap(const std::string& name, nlohmann::json labels = nlohmann::json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", *ns_}, {"labels", labels}}},
            {"data", {{"k", "v1"}}}};
  }
  static std::string FirstNode() {
    Result r = client_->Get("/api/v1/nodes");
    if (!r.ok() || r.body["items"].empty()) return "";
    return r.body["items"][0]["metadata"]["name"].get<std::string>();
  }

  static inline const RealClock clock_;
  static inline ClientConfig* cfg_ = nullptr;
  static inline Client* client_ = nullptr;
  static inline std::string* ns_ = nullptr;
};

TEST_F(TestenvTest, ListNodes) {
  Result r = client_->Get("/api/v1/nodes", "limit=500");
  ASSERT_TRUE(r.ok()) << r.status.message();
  EXPECT_EQ(r.body["kind"], "NodeList");
  EXPECT_FALSE(r.body["items"].empty());
  auto counts = client_->RequestCounts();
  EXPECT_GE((counts[{"GET", "200"}]), 1u);
}

TEST_F(TestenvTest, ConfigMapCrudAndTypedErrors) {
  Result created = client_->Create(Cms(), ConfigMap("crud"));
  ASSERT_TRUE(created.ok()) << created.status.message();
  Result again = client_->Create(Cms(), ConfigMap("crud"));
  EXPECT_EQ(again.status.code(), StatusCode::kAlreadyExists) << again.status.message();
  ASSERT_TRUE(again.api_error);
  EXPECT_EQ(again.api_error->reason, "AlreadyExists");

  Result got = client_->Get(Cms() + "/crud");
  ASSERT_TRUE(got.ok());
  auto obj = got.body;
  obj["data"]["k"] = "v2";
  Result updated = client_->Update(Cms() + "/crud", obj);
  ASSERT_TRUE(updated.ok()) << updated.status.message();
  EXPECT_EQ(updated.body["data"]["k"], "v2");

  obj["data"]["k"] = "stale";  // still carries the old resourceVersion
  Result conflict = client_->Update(Cms() + "/crud", obj);
  EXPECT_EQ(conflict.status.code(), StatusCode::kConflict) << conflict.status.message();

  Result patched = client_->Patch(Cms() + "/crud", {{"data", {{"p", "x"}}}}, "application/merge-patch+json");
  ASSERT_TRUE(patched.ok()) << patched.status.message();
  EXPECT_EQ(patched.body["data"]["p"], "x");

  Result invalid = client_->Create(Cms(), ConfigMap("Not_A_Valid_Name"));
  EXPECT_EQ(invalid.status.code(), StatusCode::kInvalidArgument) << invalid.status.message();

  ASSERT_TRUE(client_->Delete(Cms() + "/crud").ok());
  Result gone = client_->Get(Cms() + "/crud");
  EXPECT_EQ(gone.status.code(), StatusCode::kNotFound);
  ASSERT_TRUE(gone.api_error);
  EXPECT_NE(gone.api_error->message.find("not found"), std::string::npos);
}

TEST_F(TestenvTest, WatchSeesAddedModifiedDeleted) {
  Result list = client_->Get(Cms(), "labelSelector=w%3D1");
  ASSERT_TRUE(list.ok());
  std::string rv = list.body["metadata"]["resourceVersion"];
  std::mutex mu;
  std::vector<std::string> seen;
  std::atomic<bool> stop{false};
  Status result;
  std::thread watcher([&] {
    result = client_->Watch(Cms(), "labelSelector=w%3D1&timeoutSeconds=30&resourceVersion=" + rv,
                            [&](const WatchEvent& ev) {
                              std::lock_guard<std::mutex> lock(mu);
                              if (ev.type != "BOOKMARK") seen.push_back(ev.type + " " + ev.object["metadata"]["name"].get<std::string>());
                              return true;
                            },
                            [&] { return stop.load(); });
  });
  ASSERT_TRUE(client_->Create(Cms(), ConfigMap("w", {{"w", "1"}})).ok());
  ASSERT_TRUE(client_->Patch(Cms() + "/w", {{"data", {{"k", "v2"}}}}, "application/merge-patch+json").ok());
  ASSERT_TRUE(client_->Delete(Cms() + "/w").ok());
  bool all = WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size() >= 3;
  });
  auto start = std::chrono::steady_clock::now();
  stop = true;
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // stop honoured promptly
  ASSERT_TRUE(all);
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED w", "MODIFIED w", "DELETED w"}));
  EXPECT_TRUE(result.ok()) << result.message();
}

TEST_F(TestenvTest, TooOldResourceVersionIsGone) {
  // In a young cluster resourceVersion 1 may still be servable (the watch cache has evicted
  // nothing and etcd has not compacted yet). Leases churn (node heartbeats every 10 s), so
  // their watch cache window moves within minutes; an exact list at revision 1 fails once
  // etcd compacted (every 5 min).
  Status watch = client_->Watch("/apis/coordination.k8s.io/v1/leases", "resourceVersion=1&timeoutSeconds=3",
                                [](const WatchEvent&) { return true; }, [] { return false; });
  ASSERT_TRUE(watch.ok() || watch.code() == StatusCode::kGone) << watch.message();
  Result list = client_->Get("/api/v1/configmaps", "resourceVersion=1&resourceVersionMatch=Exact");
  ASSERT_TRUE(list.ok() || list.status.code() == StatusCode::kGone) << list.status.message();
  if (!list.ok()) {
    ASSERT_TRUE(list.api_error);
    EXPECT_EQ(list.api_error->http_status, 410);
    EXPECT_EQ(list.api_error->reason, "Expired");
  }
  if (watch.ok() && list.ok()) GTEST_SKIP() << "cluster too young: revision 1 is neither compacted nor out of the watch cache";
  if (watch.code() == StatusCode::kGone) {
    EXPECT_NE(watch.message().find("too old"), std::string::npos) << watch.message();
  }
}

TEST_F(TestenvTest, InformerCacheFollows) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client_->Create(Cms(), ConfigMap("inf-" + std::to_string(i), {{"inf", "1"}})).ok());
  }
  InformerOptions opts;
  opts.list_path = Cms();
  opts.label_selector = "inf=1";
  opts.page_size = 2;  // forces a continue token
  opts.watch_timeout_seconds = 10;
  opts.transform = [](const nlohmann::json& o) {
    return nlohmann::json{{"metadata", o["metadata"]}, {"data", o.value("data", nlohmann::json::object())}};
  };
  std::atomic<int> deletes{0};
  InformerHandlers h;
  h.on_delete = [&](const nlohmann::json&) { ++deletes; };
  Informer inf(*client_, clock_, opts, h);
  inf.Start();
  ASSERT_TRUE(WaitFor([&] { return inf.HasSynced(); }));
  EXPECT_EQ(inf.Size(), 3u);
  ASSERT_TRUE(client_->Create(Cms(), ConfigMap("inf-3", {{"inf", "1"}})).ok());
  ASSERT_TRUE(client_->Patch(Cms() + "/inf-0", {{"data", {{"k", "changed"}}}}, "application/merge-patch+json").ok());
  ASSERT_TRUE(client_->Delete(Cms() + "/inf-1").ok());
  std::string k0 = *ns_ + "/inf-0";
  ASSERT_TRUE(WaitFor([&] {
    auto o = inf.Get(k0);
    return inf.Size() == 3 && inf.Get(*ns_ + "/inf-3") && !inf.Get(*ns_ + "/inf-1") && o &&
           (*o)["data"]["k"] == "changed";
  }));
  EXPECT_EQ(deletes.load(), 1);
  auto start = std::chrono::steady_clock::now();
  inf.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(TestenvTest, LeaderElectionBetweenTwoElectors) {
  auto config = [&](const std::string& id) {
    LeaderElectionConfig c;
    c.lease_namespace = *ns_;
    c.lease_name = "it-lock";
    c.identity = id;
    c.lease_duration = 3000ms;
    c.renew_deadline = 2000ms;
    c.retry_period = 200ms;
    return c;
  };
  std::atomic<int> a_stopped{0};
  LeaderElector a(*client_, clock_, config("replica-a"), [] {}, [&] { ++a_stopped; });
  LeaderElector b(*client_, clock_, config("replica-b"), [] {}, [] {});
  a.Start();
  ASSERT_TRUE(WaitFor([&] { return a.IsLeader(); }));
  b.Start();
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(a.IsLeader() && b.IsLeader());
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());
  Result lease = client_->Get("/apis/coordination.k8s.io/v1/namespaces/" + *ns_ + "/leases/it-lock");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease.body["spec"]["holderIdentity"], "replica-a");
  EXPECT_EQ(lease.body["spec"]["leaseDurationSeconds"], 3);

  auto start = std::chrono::steady_clock::now();
  a.Stop();
  EXPECT_EQ(a_stopped.load(), 1);
  ASSERT_TRUE(WaitFor([&] { return b.IsLeader(); }, 10000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2000ms);  // released, not expired
  lease = client_->Get("/apis/coordination.k8s.io/v1/namespaces/" + *ns_ + "/leases/it-lock");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease.body["spec"]["holderIdentity"], "replica-b");
  EXPECT_GE(lease.body["spec"]["leaseTransitions"].get<int>(), 1);
  b.Stop();
}

TEST_F(TestenvTest, EventsAreCreatedAndAggregated) {
  std::string node = FirstNode();
  ASSERT_FALSE(node.empty());
  Result n = client_->Get("/api/v1/nodes/" + node);
  ASSERT_TRUE(n.ok());
  auto rec = NewEventRecorder(*client_, clock_, "kpc-integration-test");
  std::string reason = "ItCheck" + RandomSuffix();
  ObjectRef node_ref{"v1", "Node", node, "", n.body["metadata"]["uid"]};
  rec->Record(node_ref, "Warning", reason, "integration test message");
  rec->Record(node_ref, "Warning", reason, "integration test message");
  ASSERT_TRUE(client_->Create(Cms(), ConfigMap("ev")).ok());
  ObjectRef cm_ref{"v1", "ConfigMap", "ev", *ns_, ""};
  rec->Record(cm_ref, "Normal", reason, "namespaced object");
  ASSERT_TRUE(rec->Flush(10s));
  EXPECT_EQ(rec->Dropped(), 0u);

  Result evs = client_->Get("/api/v1/namespaces/default/events",
                            "fieldSelector=" + QueryEscape("involvedObject.name=" + node + ",reason=" + reason));
  ASSERT_TRUE(evs.ok()) << evs.status.message();
  ASSERT_EQ(evs.body["items"].size(), 1u);
  const auto& ev = evs.body["items"][0];
  EXPECT_EQ(ev["count"], 2);
  EXPECT_EQ(ev["involvedObject"]["kind"], "Node");
  EXPECT_EQ(ev["source"]["component"], "kpc-integration-test");
  EXPECT_EQ(ev["type"], "Warning");
  (void)client_->Delete("/api/v1/namespaces/default/events/" + ev["metadata"]["name"].get<std::string>());

  Result nsevs = client_->Get("/api/v1/namespaces/" + *ns_ + "/events", "fieldSelector=" + QueryEscape("reason=" + reason));
  ASSERT_TRUE(nsevs.ok());
  ASSERT_EQ(nsevs.body["items"].size(), 1u);
  EXPECT_EQ(nsevs.body["items"][0]["involvedObject"]["namespace"], *ns_);
}

TEST_F(TestenvTest, NodeProxyConfigz) {
  std::string node = FirstNode();
  ASSERT_FALSE(node.empty());
  auto resp = client_->GetRaw("/api/v1/nodes/" + node + "/proxy/configz", 15s, 4u << 20);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  auto j = nlohmann::json::parse(resp->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << resp->body.substr(0, 200);
  ASSERT_TRUE(j.contains("kubeletconfig")) << resp->body.substr(0, 200);
  EXPECT_TRUE(j["kubeletconfig"].is_object());
  auto missing = client_->GetRaw("/api/v1/nodes/no-such-node-" + RandomSuffix() + "/proxy/configz",
                                 15s, 4u << 20);
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace kpc::kube
