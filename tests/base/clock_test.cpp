// FakeClock moves only when told to, both readings together; the RFC 3339 formats the API
// server expects for metav1.Time and metav1.MicroTime.

#include "base/clock.h"

#include <gtest/gtest.h>

namespace kpc {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, StartsAtItsUnixTimeAndAdvancesBothReadings) {
  FakeClock clock(1800000000);
  const auto steady = clock.Now();
  EXPECT_EQ(clock.UnixSeconds(), 1800000000);
  EXPECT_EQ(clock.WallNow().time_since_epoch(), 1800000000s);
  EXPECT_GT(steady, std::chrono::steady_clock::time_point{}) << "a default time_point is long ago";
  EXPECT_EQ(clock.Now(), steady) << "never moves on its own";
  clock.Advance(1500ms);
  EXPECT_EQ(clock.Now() - steady, 1500ms);
  EXPECT_EQ(clock.WallNow().time_since_epoch(), 1800000001500ms);
  EXPECT_EQ(clock.UnixSeconds(), 1800000001) << "rounded down";
}

TEST(RealClockTest, ReadingsMoveForward) {
  RealClock clock;
  const auto steady = clock.Now();
  const auto wall = clock.WallNow();
  EXPECT_GE(clock.Now(), steady);
  EXPECT_GT(clock.UnixSeconds(), 1700000000);
  const auto wall_seconds = std::chrono::floor<std::chrono::seconds>(wall.time_since_epoch());
  EXPECT_LE(clock.UnixSeconds() - wall_seconds.count(), 1);
  EXPECT_GE(clock.UnixSeconds(), wall_seconds.count());
}

TEST(FormatRfc3339Test, SecondsAndMicroseconds) {
  struct Case {
    std::chrono::system_clock::duration since_epoch;
    const char* seconds;
    const char* micro;
  } cases[] = {
      {0s, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"},
      {1800000000s, "2027-01-15T08:00:00Z", "2027-01-15T08:00:00.000000Z"},
      {1800000000s + 234567us, "2027-01-15T08:00:00Z", "2027-01-15T08:00:00.234567Z"},
      // Sub-microsecond digits are cut, not rounded up into the next second.
      {1800000000s + 999999999ns, "2027-01-15T08:00:00Z", "2027-01-15T08:00:00.999999Z"},
  };
  for (const auto& c : cases) {
    std::chrono::system_clock::time_point t(c.since_epoch);
    const auto seconds = std::chrono::floor<std::chrono::seconds>(c.since_epoch).count();
    EXPECT_EQ(FormatRfc3339(seconds), c.seconds);
    EXPECT_EQ(FormatRfc3339Micro(t), c.micro);
  }
}

}  // namespace
}  // namespace kpc
