#include "controller/configz_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

namespace kpc::controller {
namespace {

using namespace std::chrono_literals;

template <typename Pred>
bool Eventually(Pred p, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (p()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return p();
}

TEST(ConfigzSchedulerTest, ChecksNewNodesAtOnceThenPerInterval) {
  FakeClock clock;
  std::mutex mu;
  std::map<std::string, int> fetches;
  SchedulerOptions opt;
  opt.jitter = 0;
  ConfigzScheduler s(clock, opt, [&](const std::string& n) {
    std::lock_guard<std::mutex> l(mu);
    fetches[n]++;
  });
  s.Start();
  s.Schedule("a", 60s);
  s.Schedule("b", 60s);
  ASSERT_TRUE(Eventually([&] { std::lock_guard<std::mutex> l(mu); return fetches["a"] == 1 && fetches["b"] == 1; }));
  std::this_thread::sleep_for(150ms);
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(fetches["a"], 1) << "not again before the interval";
  }
  clock.Advance(61s);
  ASSERT_TRUE(Eventually([&] { std::lock_guard<std::mutex> l(mu); return fetches["a"] == 2; }));
  s.Trigger("b");
  ASSERT_TRUE(Eventually([&] { std::lock_guard<std::mutex> l(mu); return fetches["b"] == 3; }));
  s.Unschedule("a");
  clock.Advance(120s);
  std::this_thread::sleep_for(150ms);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(fetches["a"], 2) << "unscheduled nodes are not checked";
  s.Stop();
}

TEST(ConfigzSchedulerTest, BoundedConcurrency) {
  FakeClock clock;
  std::atomic<int> in_flight{0}, max_in_flight{0}, done{0};
  SchedulerOptions opt;
  opt.concurrency = 3;
  opt.qps = 1000;
  ConfigzScheduler s(clock, opt, [&](const std::string&) {
    int now = ++in_flight;
    int prev = max_in_flight.load();
    while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(20ms);
    --in_flight;
    ++done;
  });
  s.Start();
  for (int i = 0; i < 20; ++i) s.Schedule("n" + std::to_string(i), 3600s);
  ASSERT_TRUE(Eventually([&] { return done.load() == 20; }, 5000ms));
  EXPECT_LE(max_in_flight.load(), 3);
  EXPECT_GE(max_in_flight.load(), 2);
  s.Stop();
}

TEST(ConfigzSchedulerTest, QpsLimit) {
  FakeClock clock;  // frozen: no tokens refill, so only the initial bucket is spent
  std::atomic<int> done{0};
  SchedulerOptions opt;
  opt.concurrency = 50;
  opt.qps = 5;
  ConfigzScheduler s(clock, opt, [&](const std::string&) { ++done; });
  s.Start();
  for (int i = 0; i < 20; ++i) s.Schedule("n" + std::to_string(i), 3600s);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(done.load(), 5) << "a frozen clock refills nothing: only the burst of 5 runs";
  clock.Advance(1s);
  ASSERT_TRUE(Eventually([&] { return done.load() == 10; }));
  s.Stop();
}

TEST(ConfigzSchedulerTest, TriggerDuringFetchChecksAgain) {
  FakeClock clock;
  std::atomic<int> fetches{0};
  std::atomic<bool> release{false};
  ConfigzScheduler* self = nullptr;
  ConfigzScheduler s(clock, SchedulerOptions{}, [&](const std::string& n) {
    if (++fetches == 1) {
      self->Trigger(n);  // e.g. the node was relabelled while we were fetching
      while (!release) std::this_thread::sleep_for(1ms);
    }
  });
  self = &s;
  s.Start();
  s.Schedule("a", 3600s);
  std::this_thread::sleep_for(50ms);
  release = true;
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 2; }));
  s.Stop();
}

TEST(ConfigzSchedulerTest, ADeferredNodeIsCheckedAfterTheDelayAndNotBefore) {
  FakeClock clock;
  std::atomic<int> fetches{0};
  std::atomic<bool> defer{true};
  ConfigzScheduler* self = nullptr;
  SchedulerOptions opt;
  opt.jitter = 0;
  ConfigzScheduler s(clock, opt, [&](const std::string& n) {
    ++fetches;
    if (defer) {
      self->Trigger(n);     // a trigger during the fetch...
      self->Defer(n, 30s);  // ...is overridden by the deferral
    }
  });
  self = &s;
  s.Start();
  s.Schedule("a", 3600s);
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 1; }));
  s.Trigger("a");        // e.g. relabelled: still not before the 30 s
  s.Schedule("a", 10s);  // a shorter interval neither
  clock.Advance(29s);
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(fetches.load(), 1);
  defer = false;
  clock.Advance(1s);
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 2; }));
  // Not deferred any more: the (new) interval applies, and triggers work at once.
  clock.Advance(9s);
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(fetches.load(), 2);
  clock.Advance(1s);
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 3; }));
  s.Trigger("a");
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 4; }));
  // A deferral may also come earlier than the interval (a backoff after a failure).
  s.Defer("a", 2s);
  clock.Advance(2s);
  ASSERT_TRUE(Eventually([&] { return fetches.load() == 5; }));
  s.Defer("gone", 1s);  // not scheduled: nothing happens
  EXPECT_EQ(s.Scheduled(), std::set<std::string>{"a"});
  s.Stop();
}

}  // namespace
}  // namespace kpc::controller
