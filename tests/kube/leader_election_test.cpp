// LeaderElector against the in-memory fake with short durations (1 s lease, 600 ms renew
// deadline, 50 ms retry period).

#include "kube/leader_election.h"

#include <regex>

#include <gtest/gtest.h>

#include "fake_client.h"

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;
using testing::ErrorResult;
using testing::FakeKube;
using testing::WaitFor;

const char* kLeasePath = "/apis/coordination.k8s.io/v1/namespaces/kpc/leases/lock";

LeaderElectionConfig Config(const std::string& id) {
  LeaderElectionConfig c;
  c.lease_namespace = "kpc";
  c.lease_name = "lock";
  c.identity = id;
  c.lease_duration = 1000ms;
  c.renew_deadline = 600ms;
  c.retry_period = 50ms;
  return c;
}

struct Counts {
  std::atomic<int> started{0}, stopped{0};
};

std::unique_ptr<LeaderElector> Elector(FakeKube& kube, const std::string& id, Counts& c) {
  return std::make_unique<LeaderElector>(kube, Config(id), [&c] { ++c.started; }, [&c] { ++c.stopped; });
}

TEST(LeaderElectionTest, AcquiresAFreshLease) {
  FakeKube kube;
  Counts c;
  auto e = Elector(kube, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return c.started == 1; }));
  auto lease = kube.Object(kLeasePath);
  ASSERT_TRUE(lease);
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "a");
  EXPECT_EQ((*lease)["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 0);
  std::regex micro(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  EXPECT_TRUE(std::regex_match((*lease)["spec"]["renewTime"].get<std::string>(), micro));
  EXPECT_TRUE(std::regex_match((*lease)["spec"]["acquireTime"].get<std::string>(), micro));
  // Renewals keep acquireTime and move renewTime.
  auto first_renew = (*lease)["spec"]["renewTime"];
  ASSERT_TRUE(WaitFor([&] { return (*kube.Object(kLeasePath))["spec"]["renewTime"] != first_renew; }));
  EXPECT_EQ((*kube.Object(kLeasePath))["spec"]["acquireTime"], (*lease)["spec"]["acquireTime"]);
  e->Stop();
  EXPECT_EQ(c.stopped, 1);
}

TEST(LeaderElectionTest, OnlyOneLeadsAndStopHandsOverFast) {
  FakeKube kube;
  Counts ca, cb;
  auto a = Elector(kube, "a", ca);
  auto b = Elector(kube, "b", cb);
  a->Start();
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }));
  b->Start();
  for (int i = 0; i < 30; ++i) {  // 1.5 s: longer than the lease, a keeps renewing
    EXPECT_FALSE(a->IsLeader() && b->IsLeader());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(a->IsLeader());
  EXPECT_FALSE(b->IsLeader());
  auto start = std::chrono::steady_clock::now();
  a->Stop();  // releases
  EXPECT_EQ((*kube.Object(kLeasePath))["spec"]["holderIdentity"], "");
  ASSERT_TRUE(WaitFor([&] { return b->IsLeader(); }, 3000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 700ms);  // no need to wait for expiry
  EXPECT_EQ((*kube.Object(kLeasePath))["spec"]["leaseTransitions"], 1);
  b->Stop();
}

TEST(LeaderElectionTest, TakesOverAnExpiredLease) {
  FakeKube kube;
  kube.Put(kLeasePath, {{"metadata", {{"name", "lock"}, {"namespace", "kpc"}}},
                        {"spec",
                         {{"holderIdentity", "dead"},
                          {"leaseDurationSeconds", 1},
                          {"renewTime", "2020-01-01T00:00:00.000000Z"},
                          {"leaseTransitions", 4}}}});
  Counts c;
  auto e = Elector(kube, "a", c);
  auto start = std::chrono::steady_clock::now();
  e->Start();
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(e->IsLeader());  // expiry is measured on our clock from when we first saw it
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }, 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 950ms);
  EXPECT_EQ((*kube.Object(kLeasePath))["spec"]["leaseTransitions"], 5);
  e->Stop();
}

TEST(LeaderElectionTest, LosesLeadershipWhenRenewalsFail) {
  FakeKube kube;
  Counts c;
  auto e = Elector(kube, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  auto start = std::chrono::steady_clock::now();
  kube.fail_all = true;
  ASSERT_TRUE(WaitFor([&] { return c.stopped == 1; }, 3000ms));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(e->IsLeader());
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 1000ms);  // by the renew deadline, before the lease expires for others
  e->Stop();
  EXPECT_EQ(c.stopped, 1);  // not called twice
}

TEST(LeaderElectionTest, LosesLeadershipWhileARenewHangs) {
  FakeKube kube;
  Counts c;
  auto e = Elector(kube, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  std::atomic<bool> hang{true};
  kube.SetHook([&](const std::string&, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    while (hang) std::this_thread::sleep_for(5ms);
    return std::nullopt;
  });
  ASSERT_TRUE(WaitFor([&] { return c.stopped == 1; }, 2000ms));
  EXPECT_FALSE(e->IsLeader());
  hang = false;
  e->Stop();
}

TEST(LeaderElectionTest, ConflictsAreRetriedNotFatal) {
  FakeKube kube;
  kube.Put(kLeasePath, {{"metadata", {{"name", "lock"}, {"namespace", "kpc"}}},
                        {"spec", {{"holderIdentity", ""}, {"leaseDurationSeconds", 1}}}});
  std::atomic<int> conflicts{0};
  kube.SetHook([&](const std::string& verb, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    if (verb == "PUT" && conflicts < 3) {
      ++conflicts;
      return ErrorResult(409, "Conflict", "the object has been modified");
    }
    return std::nullopt;
  });
  Counts c;
  auto e = Elector(kube, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  EXPECT_EQ(conflicts.load(), 3);
  e->Stop();
}

}  // namespace
}  // namespace kpc::kube
