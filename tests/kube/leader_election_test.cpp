// LeaderElector against the in-memory fake with short durations (1 s lease, 600 ms renew
// deadline, 50 ms retry period). Expiry and the renew deadline are driven by a FakeClock; the
// retry period stays real (the elector's loop waits on it).

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

std::unique_ptr<LeaderElector> Elector(FakeKube& kube, const Clock& clock, const std::string& id, Counts& c) {
  return std::make_unique<LeaderElector>(kube, clock, Config(id), [&c] { ++c.started; }, [&c] { ++c.stopped; });
}

std::string Spec(FakeKube& kube, const char* field) {
  auto lease = kube.Object(kLeasePath);
  if (!lease || !(*lease)["spec"].contains(field)) return "";
  const auto& v = (*lease)["spec"][field];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

size_t CallCount(FakeKube& kube) { return kube.Calls().size(); }

// Waits until the elector(s) made `n` more requests: at least one more loop iteration each.
bool WaitForRequests(FakeKube& kube, size_t n) {
  size_t start = CallCount(kube);
  return WaitFor([&] { return CallCount(kube) >= start + n; });
}

TEST(LeaderElectionTest, AcquiresAFreshLease) {
  FakeKube kube;
  FakeClock clock(1800000000);
  Counts c;
  auto e = Elector(kube, clock, "a", c);
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
  EXPECT_EQ((*lease)["spec"]["acquireTime"], "2027-01-15T08:00:00.000000Z") << "stamped from the clock";
  // Renewals keep acquireTime and move renewTime.
  clock.Advance(234567us);  // within the renew deadline
  ASSERT_TRUE(WaitFor([&] { return Spec(kube, "renewTime") == "2027-01-15T08:00:00.234567Z"; }))
      << Spec(kube, "renewTime");
  EXPECT_EQ(Spec(kube, "acquireTime"), "2027-01-15T08:00:00.000000Z");
  e->Stop();
  EXPECT_EQ(c.stopped, 1);
}

TEST(LeaderElectionTest, OnlyOneLeadsAndStopHandsOverFast) {
  FakeKube kube;
  FakeClock clock;
  Counts ca, cb;
  auto a = Elector(kube, clock, "a", ca);
  auto b = Elector(kube, clock, "b", cb);
  a->Start();
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }));
  b->Start();
  for (int i = 0; i < 10; ++i) {  // 1.5 s: longer than the lease, a keeps renewing
    clock.Advance(150ms);
    const std::string renewed = FormatRfc3339Micro(clock.WallNow());
    ASSERT_TRUE(WaitFor([&] { return Spec(kube, "renewTime") == renewed; }));
    ASSERT_TRUE(WaitForRequests(kube, 4));  // b sees the renewal before the clock moves again
    EXPECT_FALSE(a->IsLeader() && b->IsLeader());
  }
  EXPECT_TRUE(a->IsLeader());
  EXPECT_FALSE(b->IsLeader());
  a->Stop();  // releases: b may already have taken the released lease when we look
  EXPECT_NE((*kube.Object(kLeasePath))["spec"]["holderIdentity"], "a");
  // The clock stands still: b takes over because the lease was released, not because it expired.
  ASSERT_TRUE(WaitFor([&] { return b->IsLeader(); }, 3000ms));
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
  FakeClock clock;
  Counts c;
  auto e = Elector(kube, clock, "a", c);
  e->Start();
  // Expiry is measured on our clock from when we first saw the record, not from its renewTime.
  ASSERT_TRUE(WaitForRequests(kube, 3));
  EXPECT_FALSE(e->IsLeader());
  clock.Advance(999ms);
  ASSERT_TRUE(WaitForRequests(kube, 3));
  EXPECT_FALSE(e->IsLeader()) << "the lease has 1 ms left";
  clock.Advance(1ms);
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }, 3000ms));
  EXPECT_EQ((*kube.Object(kLeasePath))["spec"]["leaseTransitions"], 5);
  e->Stop();
}

TEST(LeaderElectionTest, LosesLeadershipWhenRenewalsFail) {
  FakeKube kube;
  FakeClock clock;
  Counts c;
  auto e = Elector(kube, clock, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  kube.fail_all = true;
  ASSERT_TRUE(WaitForRequests(kube, 2));  // a renewal in flight before the failures has landed
  clock.Advance(600ms);                   // exactly the renew deadline: still leading
  ASSERT_TRUE(WaitForRequests(kube, 3));
  EXPECT_TRUE(e->IsLeader());
  EXPECT_EQ(c.stopped, 0);
  clock.Advance(1ms);  // past it, and before the lease (1 s) expires for others
  ASSERT_TRUE(WaitFor([&] { return c.stopped == 1; }, 3000ms));
  EXPECT_FALSE(e->IsLeader());
  e->Stop();
  EXPECT_EQ(c.stopped, 1);  // not called twice
}

TEST(LeaderElectionTest, LosesLeadershipWhileARenewHangs) {
  FakeKube kube;
  FakeClock clock;
  Counts c;
  auto e = Elector(kube, clock, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  std::atomic<bool> hang{true}, hanging{false};
  kube.SetHook([&](const std::string&, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    hanging = true;
    while (hang) std::this_thread::sleep_for(5ms);
    return std::nullopt;
  });
  ASSERT_TRUE(WaitFor([&] { return hanging.load(); }));
  clock.Advance(601ms);  // the watchdog notices while the loop is stuck in the request
  ASSERT_TRUE(WaitFor([&] { return c.stopped == 1; }, 2000ms));
  EXPECT_FALSE(e->IsLeader());
  hang = false;
  e->Stop();
}

TEST(LeaderElectionTest, TheGateClosesByTheClockBeforeTheLossIsDeclared) {
  FakeKube kube;
  FakeClock clock;
  Counts c;
  auto e = Elector(kube, clock, "a", c);
  EXPECT_EQ(e->MayMutate().code(), StatusCode::kFailedPrecondition) << "not started";
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  EXPECT_TRUE(e->MayMutate().ok());
  LeaseHold hold = e->Hold();
  EXPECT_TRUE(hold.leader);
  EXPECT_EQ(hold.lease, "kpc/lock");
  EXPECT_EQ(hold.renew_deadline, 600ms);
  // Stopped (SIGSTOP): no renewal lands, the clock moves on. At the deadline the gate is closed
  // although the elector still leads (it declares the loss only past the deadline).
  std::atomic<bool> hang{true};
  kube.SetHook([&](const std::string&, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    while (hang) std::this_thread::sleep_for(5ms);
    return std::nullopt;
  });
  ASSERT_TRUE(WaitForRequests(kube, 1));  // the loop is stuck in a request
  clock.Advance(600ms);
  Status s = e->MayMutate();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("not the leader: lease kpc/lock was held until"), std::string::npos)
      << s.message();
  hang = false;
  e->Stop();
  EXPECT_FALSE(e->MayMutate().ok());
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
  FakeClock clock;
  Counts c;
  auto e = Elector(kube, clock, "a", c);
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return e->IsLeader(); }));
  EXPECT_EQ(conflicts.load(), 3);
  e->Stop();
}

}  // namespace
}  // namespace kpc::kube
