// EventRecorder: Event fields, aggregation by PATCH, per-object rate limit, expiry, drops.

#include "kube/events.h"

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
  auto rec = NewEventRecorder(kube, "kubelet-policy-controller");
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
  EXPECT_EQ(ev["firstTimestamp"], ev["lastTimestamp"]);
  EXPECT_EQ(ev["metadata"]["name"].get<std::string>().rfind("n1.", 0), 0u);
  auto policy_events = kube.ObjectsUnder("/api/v1/namespaces/team-a/events/");
  ASSERT_EQ(policy_events.size(), 1u);
  EXPECT_EQ(policy_events[0]["involvedObject"]["namespace"], "team-a");
}

TEST(EventRecorderTest, IdenticalEventsAreAggregated) {
  FakeKube kube;
  auto rec = NewEventRecorder(kube, "c");
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

TEST(EventRecorderTest, ExpiredEventIsRecreated) {
  FakeKube kube;
  auto rec = NewEventRecorder(kube, "c");
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  auto events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 1u);
  (void)kube.Delete("/api/v1/namespaces/default/events/" + events[0]["metadata"]["name"].get<std::string>(), "");
  std::this_thread::sleep_for(2ms);  // a distinct name suffix
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  events = kube.ObjectsUnder("/api/v1/namespaces/default/events/");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 1);
}

TEST(EventRecorderTest, PerObjectAndReasonRateLimit) {
  FakeKube kube;
  auto now = std::chrono::steady_clock::time_point(1000s);
  std::mutex clock_mu;
  EventRecorderOptions opts;
  opts.burst = 3;
  opts.refill_interval = 300s;
  opts.now = [&] {
    std::lock_guard<std::mutex> lock(clock_mu);
    return now;
  };
  auto rec = NewEventRecorder(kube, "c", "default", opts);
  for (int i = 0; i < 5; ++i) rec->Record(NodeRef("n1"), "Normal", "R", "m" + std::to_string(i));
  rec->Record(NodeRef("n2"), "Normal", "R", "other object has its own bucket");
  rec->Record(NodeRef("n1"), "Normal", "Other", "another reason has its own bucket");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(kube.ObjectsUnder("/api/v1/namespaces/default/events/").size(), 5u);
  EXPECT_EQ(rec->Dropped(), 2u);
  {
    std::lock_guard<std::mutex> lock(clock_mu);
    now += 301s;
  }
  rec->Record(NodeRef("n1"), "Normal", "R", "after refill");
  rec->Record(NodeRef("n1"), "Normal", "R", "over again");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(kube.ObjectsUnder("/api/v1/namespaces/default/events/").size(), 6u);
  EXPECT_EQ(rec->Dropped(), 3u);
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
  auto rec = NewEventRecorder(kube, "c", "default", opts);
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
  auto rec = NewEventRecorder(kube, "c");
  rec->Record(NodeRef("n1"), "Normal", "R", "m");
  ASSERT_TRUE(rec->Flush(5s));
  EXPECT_EQ(rec->Dropped(), 1u);
}

}  // namespace
}  // namespace kpc::kube
