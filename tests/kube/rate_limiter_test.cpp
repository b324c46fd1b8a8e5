#include "kube/rate_limiter.h"

#include <gtest/gtest.h>

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucketTest, BurstThenRefillAtQps) {
  FakeClock clock;
  TokenBucket b(clock, 10, 3);
  EXPECT_TRUE(b.TryTake());
  EXPECT_TRUE(b.TryTake());
  EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
  clock.Advance(100ms);  // one token at 10 qps
  EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
  clock.Advance(10s);  // never more than the burst
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
}

TEST(TokenBucketTest, PartialRefillIsNotAToken) {
  FakeClock clock;
  TokenBucket b(clock, 10, 1);
  EXPECT_TRUE(b.TryTake());
  clock.Advance(99ms);
  EXPECT_FALSE(b.TryTake());
  clock.Advance(1ms);  // the fractions add up
  EXPECT_TRUE(b.TryTake());
}

TEST(TokenBucketTest, ReservationsQueueUp) {
  FakeClock clock;
  TokenBucket b(clock, 4, 1);
  EXPECT_EQ(b.Reserve(), 0ns);
  EXPECT_EQ(b.Reserve(), 250ms);
  EXPECT_EQ(b.Reserve(), 500ms);
  clock.Advance(500ms);
  EXPECT_EQ(b.Reserve(), 250ms);
}

TEST(TokenBucketTest, NonPositiveQpsIsUnlimited) {
  FakeClock clock;
  TokenBucket b(clock, 0, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.TryTake());
  EXPECT_EQ(b.Reserve(), 0ns);
}

TEST(TokenBucketTest, AcquireSleepsForTheReservation) {
  FakeClock clock;
  TokenBucket b(clock, 2, 1);
  std::chrono::nanoseconds slept{0};
  auto sleep = [&](std::chrono::nanoseconds d) {
    slept += d;
    clock.Advance(d);
  };
  Acquire(b, sleep);
  EXPECT_EQ(slept, 0ns);
  Acquire(b, sleep);
  EXPECT_EQ(slept, 500ms);
  Acquire(b, sleep);  // the sleep moved the clock: the next token is 500 ms further, not 1 s
  EXPECT_EQ(slept, 1000ms);
}

}  // namespace
}  // namespace kpc::kube
