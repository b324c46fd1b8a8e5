// EventRecorder: Event fields, aggregation by PATCH, per-object rate limit, expiry, drops.

#include "kube/events.h"

#include <set>

#include <gtest/gtest.h>

#include "fake_client.h"

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;
using testing::FakeKube;

ObjectRef NodeRef(const std::string& name) { return {"v1", "Node", name, "", "uid-" + name}; }
ObjectRef PolicyRef() { return {"kubeletpolicy.io/v1alpha1", "KubeletPolicy", "cis", "team-a", "uid-p"}; }

TEST(EventRecorderTest, CreatesEventsInTheRightNamespace) {
  FakeKube kube;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "kubelet-policy-controller");
  rec->Record(NodeRef("n1"), "Warning", "NonCompliant", "rule x failed");
  rec->Record(PolicyRef(), "Normal", "Ready", "all nodes checked");
  ASSERT_TRUE(rec->Flush(5s));
  auto node_events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(node_events.size(), 1u);
  const auto& ev = node_events[0];
  EXPECT_EQ(ev["involvedObject"]["kind"], "Node");
  EXPECT_EQ(ev["involvedObject"]["name"], "n1");
  EXPECT_EQ(ev["involvedObject"]["uid"], "uid-n1");
  EXPECT_FALSE(ev["involvedObject"].contains("namespace"));
  EXPECT_EQ(ev["reason"], "NonCompliant");
  EXPECT_EQ(ev["message"], "rule x failed");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["source"]["component"], "kubelet-policy-controller");
  EXPECT_EQ(ev["reportingComponent"], "kubelet-policy-controller");
  EXPECT_EQ(ev["count"], 1);
  EXPECT_EQ(ev["firstTimestamp"], FormatRfc3339(clock.UnixSeconds()));
  EXPECT_EQ(ev["firstTimestamp"], ev["lastTimestamp"]);
  EXPECT_EQ(ev["metadata"]["name"].get<std::string>().rfind("n1.", 0), 0u);
  auto policy_events = kube.ObjectsUnder("/api/v1/namespaces/team-a/events/");
  ASSERT_EQ(policy_events.size(), 1u);
  EXPECT_EQ(policy_events[0]["involvedObject"]["namespace"], "team-a");
}

TEST(EventRecorderTest, IdenticalEventsAreAggregated) {
  FakeKube kube;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "c");
  for (int i = 0; i < 3; ++i) rec->Record(NodeRef("n1"), "Warning", "NonCompliant", "same");
  rec->Record(NodeRef("n1"), "Warning", "NonCompliant", "different message");
  ASSERT_TRUE(rec->Flush(5s));
  auto events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 2u);
  int total = 0;
  for (auto& e : events) {
    total += e["count"].get<int>();
    if (e["message"] == "same") {
      EXPECT_EQ(e["count"], 3);
    }
  }
  EXPECT_EQ(total, 4);
  EXPECT_EQ(kube.last_patch_type(), "application/merge-patch+json");
}

TEST(EventRecorderTest, AggregationMovesLastTimestampOnly) {
  FakeKube kube;
  FakeClock clock(1800000000);
  auto rec = NewEventRecorder(kube, clock, "c");
  rec->Record(NodeRef("n1"), "Warning", "NonCompliant", "same");
  ASSERT_TRUE(rec->Flush(5s));
  clock.Advance(90s);
  rec->Record(NodeRef("n1"), "Warning", "NonCompliant", "same");
  ASSERT_TRUE(rec->Flush(5s));
  auto events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 2);
  EXPECT_EQ(events[0]["firstTimestamp"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(events[0]["lastTimestamp"], "2027-01-15T08:01:30Z");
}

TEST(EventRecorderTest, NamesStayUniqueWhileTheClockStandsStill) {
  FakeKube kube;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "c");
  for (int i = 0; i < 3; ++i) rec->Record(NodeRef("n1"), "Normal", "R" + std::to_string(i), "m");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(rec->Dropped(), 0u) << "a second Event at the same time must not collide (409)";
  auto events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> names;
  for (const auto& e : events) names.insert(e["metadata"]["name"].get<std::string>());
  EXPECT_EQ(names.size(), 3u);
}

TEST(EventRecorderTest, ExpiredEventIsRecreated) {
  FakeKube kube;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "c");
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  auto events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 1u);
  (void)kube.Delete("/api/v1/namespaces/default/events/" + events[0]["metadata"]["name"].get<std::string>(), "");
  clock.Advance(2ms);
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 1);
}

TEST(EventRecorderTest, PerObjectAndReasonRateLimit) {
  FakeKube kube;
  FakeClock clock;
  EventRecorderOptions opts;
  opts.burst = 3;
  opts.refill_interval = 300s;
  auto rec = NewEventRecorder(kube, clock, "c", "default", opts);
  for (int i = 0; i < 5; ++i) rec->Record(NodeRef("n1"), "Normal", "R", "m" + std::to_string(i));
  rec->Record(NodeRef("n2"), "Normal", "R", "other object has its own bucket");
  rec->Record(NodeRef("n1"), "Normal", "Other", "another reason has its own bucket");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(kube.ObjectsUnder("/api/v1/namespaces/default/events/").size(), 5u);
  EXPECT_EQ(rec->Dropped(), 2u);
  clock.Advance(299s);
  rec->Record(NodeRef("n1"), "Normal", "R", "not yet refilled");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(rec->Dropped(), 3u);
  clock.Advance(1s);
  rec->Record(NodeRef("n1"), "Normal", "R", "after refill");
  rec->Record(NodeRef("n1"), "Normal", "R", "over again");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(kube.ObjectsUnder("/api/v1/namespaces/default/events/").size(), 6u);
  EXPECT_EQ(rec->Dropped(), 4u);
}

TEST(EventRecorderTest, RecordNeverBlocksAndDropsWhenQueueIsFull) {
  FakeKube kube;
  std::atomic<bool> block{true};
  kube.SetHook([&](const std::string&, const std::string&, const std::string&,
                   const nlohmann::json&) -> std::optional<Result> {
    while (block) std::this_thread::sleep_for(2ms);
    return std::nullopt;
  });
  EventRecorderOptions opts;
  opts.queue_size = 5;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "c", "default", opts);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) rec->Record(NodeRef("n" + std::to_string(i)), "Normal", "R", "m");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_GE(rec->Dropped(), 44u);
  block = false;
  ASSERT_TRUE(rec->Flush(5s));
}

TEST(EventRecorderTest, ApiErrorsAreCountedNotFatal) {
  FakeKube kube;
  kube.fail_all = true;
  FakeClock clock;
  auto rec = NewEventRecorder(kube, clock, "c");
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(rec->Dropped(), 1u);
}

}  // namespace
}  // namespace kpc::kube
