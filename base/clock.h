#pragma once
// The one time source. Components take `const Clock&` (the clock must outlive them); pure
// functions take `now` as a parameter; nothing else reads a clock, so tests advance a
// FakeClock instead of sleeping. Both implementations are safe for concurrent use.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace kpc {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic: for intervals, deadlines and rate limits.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall time with sub-second precision: for timestamps written to the API server
  // (Lease MicroTime, Event times, names derived from the time).
  virtual std::chrono::system_clock::time_point WallNow() const = 0;
  // Whole seconds of WallNow() since the Unix epoch (rounded down): for timestamps in status.
  int64_t UnixSeconds() const;
};

class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override;
  std::chrono::system_clock::time_point WallNow() const override;
};

// Starts at an arbitrary point and only moves when told to: Advance moves both readings.
// Now() starts one second after the steady epoch, so a default time_point reads as "long ago".
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_seconds = 1795000000) : unix_(unix_seconds) {}
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(kSteadyStart + advanced_.load()));
  }
  std::chrono::system_clock::time_point WallNow() const override {
    auto since_epoch = std::chrono::seconds(unix_) + std::chrono::nanoseconds(advanced_.load());
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
  }
  void Advance(std::chrono::nanoseconds d) { advanced_ += d.count(); }

 private:
  static constexpr int64_t kSteadyStart = 1'000'000'000;
  const int64_t unix_;
  std::atomic<int64_t> advanced_{0};  // nanoseconds
};

// RFC 3339 UTC with seconds: "2026-11-22T08:00:00Z" (metav1.Time).
std::string FormatRfc3339(int64_t unix_seconds);
// RFC 3339 UTC with microseconds: "2026-11-22T08:00:00.000000Z" (metav1.MicroTime).
std::string FormatRfc3339Micro(std::chrono::system_clock::time_point t);

}  // namespace kpc
