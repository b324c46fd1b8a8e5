#include "kube/rate_limiter.h"

#include <gtest/gtest.h>

namespace kpc::kube {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucketTest, BurstThenRefillAtQps) {
  auto now = std::chrono::steady_clock::time_point(100s);
  TokenBucket b(10, 3, [&] { return now; });
  EXPECT_TRUE(b.TryTake());
  EXPECT_TRUE(b.TryTake());
  EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
  now += 100ms;  // one token at 10 qps
  EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
  now += 10s;  // never more than the burst
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.TryTake());
  EXPECT_FALSE(b.TryTake());
}

TEST(TokenBucketTest, ReservationsQueueUp) {
  auto now = std::chrono::steady_clock::time_point(100s);
  TokenBucket b(4, 1, [&] { return now; });
  EXPECT_EQ(b.Reserve(), 0ns);
  EXPECT_EQ(b.Reserve(), 250ms);
  EXPECT_EQ(b.Reserve(), 500ms);
  now += 500ms;
  EXPECT_EQ(b.Reserve(), 250ms);
}

TEST(TokenBucketTest, NonPositiveQpsIsUnlimited) {
  TokenBucket b(0, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.TryTake());
  EXPECT_EQ(b.Reserve(), 0ns);
}

TEST(TokenBucketTest, AcquireSleepsForTheReservation) {
  auto now = std::chrono::steady_clock::time_point(100s);
  TokenBucket b(2, 1, [&] { return now; });
  std::chrono::nanoseconds slept{0};
  Acquire(b, [&](std::chrono::nanoseconds d) { slept += d; });
  EXPECT_EQ(slept, 0ns);
  Acquire(b, [&](std::chrono::nanoseconds d) { slept += d; });
  EXPECT_EQ(slept, 500ms);
}

}  // namespace
}  // namespace kpc::kube
