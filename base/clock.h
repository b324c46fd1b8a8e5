#pragma once
// Time is injected so that tests advance a fake clock instead of sleeping.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace kpc {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;  // for intervals and deadlines
  virtual int64_t UnixSeconds() const = 0;                         // for timestamps in status
};

class RealClock : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override { return std::chrono::steady_clock::now(); }
  int64_t UnixSeconds() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Thread-safe fake clock: starts at an arbitrary point and only moves when told to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t unix_seconds = 1795000000) : unix_(unix_seconds) {}
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(nanos_.load()));
  }
  int64_t UnixSeconds() const override { return unix_ + nanos_.load() / 1'000'000'000; }
  void Advance(std::chrono::nanoseconds d) { nanos_ += d.count(); }

 private:
  int64_t unix_;
  std::atomic<int64_t> nanos_{1'000'000'000};
};

// RFC 3339 UTC with seconds: "2026-11-22T08:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);

}  // namespace kpc
