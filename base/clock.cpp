#include "base/clock.h"

#include <cstdio>
#include <ctime>

namespace kpc {

int64_t Clock::UnixSeconds() const {
  return std::chrono::floor<std::chrono::seconds>(WallNow().time_since_epoch()).count();
}

std::chrono::steady_clock::time_point RealClock::Now() const {
  return std::chrono::steady_clock::now();
}

std::chrono::system_clock::time_point RealClock::WallNow() const {
  return std::chrono::system_clock::now();
}

std::string FormatRfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatRfc3339Micro(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch());
  auto secs = std::chrono::floor<std::chrono::seconds>(us);
  std::string out = FormatRfc3339(secs.count());
  char frac[32];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>((us - secs).count()));
  out.replace(out.size() - 1, 1, frac);
  return out;
}

}  // namespace kpc
