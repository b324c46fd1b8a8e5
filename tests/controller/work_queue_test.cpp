#include "controller/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace kpc::controller {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  q.Add("a");
  q.Add("b");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(10ms), "a");
  EXPECT_EQ(q.Get(10ms), "b");
  EXPECT_EQ(q.Get(10ms), std::nullopt);
}

TEST(WorkQueueTest, KeyBeingProcessedIsNotHandedOutTwice) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  auto k = q.Get(10ms);
  ASSERT_EQ(k, "a");
  q.Add("a");  // changed while processing
  EXPECT_EQ(q.Get(10ms), std::nullopt) << "a is still being processed";
  q.Done("a");
  EXPECT_EQ(q.Get(10ms), "a") << "re-queued once processing ended";
  q.Done("a");
  EXPECT_EQ(q.Get(10ms), std::nullopt);
}

TEST(WorkQueueTest, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 5s);
  EXPECT_EQ(q.Get(5ms), std::nullopt);
  EXPECT_EQ(q.DelayedLen(), 1u);
  clock.Advance(5s);
  EXPECT_EQ(q.Get(50ms), "a");
}

TEST(WorkQueueTest, EarlierAddAfterWins) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 10s);
  q.AddAfter("a", 1s);
  q.AddAfter("a", 20s);
  EXPECT_EQ(q.DelayedLen(), 1u);
  clock.Advance(1s);
  EXPECT_EQ(q.Get(50ms), "a");
}

TEST(WorkQueueTest, ExponentialBackoffPerKeyAndForget) {
  FakeClock clock;
  WorkQueue q(clock);
  EXPECT_EQ(q.AddRateLimited("a"), 5ms);
  EXPECT_EQ(q.AddRateLimited("a"), 10ms);
  EXPECT_EQ(q.AddRateLimited("a"), 20ms);
  EXPECT_EQ(q.NumRequeues("a"), 3);
  EXPECT_EQ(q.AddRateLimited("b"), 5ms) << "backoff is per key";
  q.Forget("a");
  EXPECT_EQ(q.AddRateLimited("a"), 5ms);
  for (int i = 0; i < 40; ++i) q.AddRateLimited("c");
  EXPECT_LE(q.AddRateLimited("c"), std::chrono::nanoseconds(1000s)) << "capped";
}

TEST(WorkQueueTest, OverallBucketLimitsBursts) {
  FakeClock clock;
  WorkQueueOptions opt;
  opt.overall_qps = 10;
  opt.overall_burst = 2;
  WorkQueue q(clock, opt);
  q.AddRateLimited("a");
  q.AddRateLimited("b");
  auto d = q.AddRateLimited("c");  // bucket empty: wait for a token (100 ms at 10 qps)
  EXPECT_GE(d, 99ms);
}

TEST(WorkQueueTest, GetTimesOutWhenTheClockPassesTheTimeout) {
  FakeClock clock;
  WorkQueue q(clock);
  std::atomic<bool> returned{false};
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] {
    EXPECT_EQ(q.Get(60s), std::nullopt);
    returned = true;
  });
  std::this_thread::sleep_for(20ms);
  clock.Advance(59s);
  std::this_thread::sleep_for(300ms);  // longer than one wait slice
  EXPECT_FALSE(returned) << "1 s of the timeout is left on the clock";
  clock.Advance(1s);
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "not the 60 s of real waiting";
}

TEST(WorkQueueTest, GetWakesForAKeyMadeDueByTheClock) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 30s);
  std::optional<std::string> got;
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] { got = q.Get(60s); });
  std::this_thread::sleep_for(20ms);
  clock.Advance(30s);  // no Add, no notify: the waiting Get must notice on its own
  t.join();
  EXPECT_EQ(got, "a");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "not the 30 s of real waiting";
  EXPECT_EQ(q.DelayedLen(), 0u);
}

TEST(WorkQueueTest, ShutDownWakesWaiters) {
  FakeClock clock;
  WorkQueue q(clock);
  std::atomic<bool> returned{false};
  std::thread t([&] {
    EXPECT_EQ(q.Get(10s), std::nullopt);
    returned = true;
  });
  std::this_thread::sleep_for(20ms);
  q.ShutDown();
  t.join();
  EXPECT_TRUE(returned);
  q.Add("x");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKey) {
  FakeClock clock;
  WorkQueue q(clock);
  std::atomic<int> in_flight_a{0}, max_in_flight_a{0}, processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.Get(100ms)) {
        if (*k == "a") {
          int now = ++in_flight_a;
          max_in_flight_a = std::max(max_in_flight_a.load(), now);
          std::this_thread::sleep_for(1ms);
          --in_flight_a;
        }
        ++processed;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    q.Add("a");
    q.Add("k" + std::to_string(i % 7));
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(max_in_flight_a.load(), 1);
  EXPECT_GT(processed.load(), 0);
}

}  // namespace
}  // namespace kpc::controller
