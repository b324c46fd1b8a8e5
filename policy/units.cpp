#include "policy/units.h"

#include <cmath>
#include <ctime>
#include <limits>

namespace kpc::policy {
namespace {

constexpr int64_t kNs = 1;
constexpr int64_t kUs = 1000 * kNs;
constexpr int64_t kMs = 1000 * kUs;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads "12", "1.5", ".5" or "3." starting at s[i]; advances i. False when no digit was read.
bool ParseDecimal(std::string_view s, size_t& i, long double& value) {
  bool any = false;
  value = 0;
  while (i < s.size() && IsDigit(s[i])) {
    value = value * 10 + (s[i++] - '0');
    any = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    long double scale = 0.1L;
    while (i < s.size() && IsDigit(s[i])) {
      value += (s[i++] - '0') * scale;
      scale /= 10;
      any = true;
    }
  }
  return any;
}

}  // namespace

// Follows Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ or "0".
std::optional<int64_t> ParseGoDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double value = 0;
    if (!ParseDecimal(s, i, value)) return std::nullopt;
    // unit
    size_t j = i;
    while (j < s.size() && !IsDigit(s[j]) && s[j] != '.') ++j;
    std::string_view unit = s.substr(i, j - i);
    int64_t mult;
    if (unit == "ns") mult = kNs;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = kUs;
    else if (unit == "ms") mult = kMs;
    else if (unit == "s") mult = kSecond;
    else if (unit == "m") mult = kMinute;
    else if (unit == "h") mult = kHour;
    else return std::nullopt;  // missing or unknown unit
    total += value * static_cast<long double>(mult);
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    s.remove_prefix(j);
  }
  auto n = static_cast<int64_t>(std::llround(total));
  return neg ? -n : n;
}

std::optional<int64_t> DurationFromJson(const nlohmann::json& v) {
  if (v.is_string()) return ParseGoDuration(v.get_ref<const std::string&>());
  if (v.is_number() && v.get<double>() == 0) return 0;
  return std::nullopt;
}

// Mirrors Go's Duration.String().
std::string FormatGoDuration(int64_t d) {
  if (d == 0) return "0s";
  bool neg = d < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-(d + 1)) + 1 : static_cast<uint64_t>(d);
  auto frac = [](uint64_t v, int prec) {
    // v in units of 10^-prec; returns "int[.frac]" with trailing zeros removed
    uint64_t p = 1;
    for (int i = 0; i < prec; ++i) p *= 10;
    std::string out = std::to_string(v / p);
    uint64_t f = v % p;
    if (f != 0) {
      std::string fs = std::to_string(f);
      fs = std::string(prec - fs.size(), '0') + fs;
      while (!fs.empty() && fs.back() == '0') fs.pop_back();
      out += "." + fs;
    }
    return out;
  };
  std::string out;
  if (u < static_cast<uint64_t>(kSecond)) {
    if (u < static_cast<uint64_t>(kUs)) out = std::to_string(u) + "ns";
    else if (u < static_cast<uint64_t>(kMs)) out = frac(u, 3) + "\xC2\xB5s";
    else out = frac(u, 6) + "ms";
  } else {
    uint64_t hours = u / kHour;
    uint64_t rem = u % kHour;
    uint64_t minutes = rem / kMinute;
    uint64_t secs_ns = rem % kMinute;
    std::string secs = frac(secs_ns, 9) + "s";
    if (hours > 0) out = std::to_string(hours) + "h" + std::to_string(minutes) + "m" + secs;
    else if (minutes > 0) out = std::to_string(minutes) + "m" + secs;
    else out = secs;
  }
  return neg ? "-" + out : out;
}

// Kubernetes resource.Quantity: <signedNumber><suffix>, suffix binary (Ki..Ei), decimal
// (n u m "" k M G T P E) or an exponent (e3, E-2).
std::optional<long double> ParseQuantity(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[i] == '+' || s[i] == '-') {
    neg = s[i] == '-';
    ++i;
  }
  long double value = 0;
  if (!ParseDecimal(s, i, value)) return std::nullopt;
  std::string_view suffix = s.substr(i);
  long double mult = 1;
  if (suffix.empty()) mult = 1;
  else if (suffix == "Ki") mult = 1024.0L;
  else if (suffix == "Mi") mult = std::pow(1024.0L, 2);
  else if (suffix == "Gi") mult = std::pow(1024.0L, 3);
  else if (suffix == "Ti") mult = std::pow(1024.0L, 4);
  else if (suffix == "Pi") mult = std::pow(1024.0L, 5);
  else if (suffix == "Ei") mult = std::pow(1024.0L, 6);
  // Sub-unit suffixes divide, so that "500m" is exactly 0.5.
  else if (suffix == "n") mult = -1e9L;
  else if (suffix == "u") mult = -1e6L;
  else if (suffix == "m") mult = -1e3L;
  else if (suffix == "k") mult = 1e3L;
  else if (suffix == "M") mult = 1e6L;
  else if (suffix == "G") mult = 1e9L;
  else if (suffix == "T") mult = 1e12L;
  else if (suffix == "P") mult = 1e15L;
  else if (suffix == "E") mult = 1e18L;
  else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::string_view exp = suffix.substr(1);
    bool eneg = false;
    if (!exp.empty() && (exp[0] == '+' || exp[0] == '-')) {
      eneg = exp[0] == '-';
      exp.remove_prefix(1);
    }
    if (exp.empty() || exp.size() > 4) return std::nullopt;
    int e = 0;
    for (char c : exp) {
      if (!IsDigit(c)) return std::nullopt;
      e = e * 10 + (c - '0');
    }
    mult = std::pow(10.0L, eneg ? -e : e);
  } else {
    return std::nullopt;
  }
  long double out = mult < 0 ? value / -mult : value * mult;
  return neg ? -out : out;
}

std::optional<long double> QuantityFromJson(const nlohmann::json& v) {
  if (v.is_number()) return v.get<long double>();
  if (v.is_string()) return ParseQuantity(v.get_ref<const std::string&>());
  return std::nullopt;
}

// RFC 3339 ("2027-01-31T00:00:00Z", "2027-01-31T02:00:00+02:00") to Unix seconds:
// YYYY-MM-DD[Tt]hh:mm:ss(.digits)?([Zz]|[+-]hh:mm), read position by position.
std::optional<int64_t> ParseRfc3339(const std::string& s) {
  // The longest real form (nanoseconds and an offset) is 35 characters.
  if (s.size() > 64) return std::nullopt;
  size_t i = 0;
  auto number = [&](size_t digits) -> std::optional<int> {
    if (i + digits > s.size()) return std::nullopt;
    int v = 0;
    for (size_t k = 0; k < digits; ++k, ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto expect = [&](std::string_view one_of) {
    if (i >= s.size() || one_of.find(s[i]) == std::string_view::npos) return false;
    ++i;
    return true;
  };
  std::tm tm{};
  auto year = number(4);
  if (!year || !expect("-")) return std::nullopt;
  auto mon = number(2);
  if (!mon || !expect("-")) return std::nullopt;
  auto mday = number(2);
  if (!mday || !expect("Tt")) return std::nullopt;
  auto hour = number(2);
  if (!hour || !expect(":")) return std::nullopt;
  auto min = number(2);
  if (!min || !expect(":")) return std::nullopt;
  auto sec = number(2);
  if (!sec) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (!expect("Zz")) {
    if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return std::nullopt;
    const bool plus = s[i++] == '+';
    auto oh = number(2);
    if (!oh || !expect(":")) return std::nullopt;
    auto om = number(2);
    if (!om) return std::nullopt;
    offset = (plus ? -1 : 1) * (int64_t{*oh} * 3600 + int64_t{*om} * 60);
  }
  if (i != s.size()) return std::nullopt;
  if (*mon < 1 || *mon > 12 || *mday < 1 || *mday > 31 || *hour > 23 || *min > 59 || *sec > 60) {
    return std::nullopt;
  }
  tm.tm_year = *year - 1900;
  tm.tm_mon = *mon - 1;
  tm.tm_mday = *mday;
  tm.tm_hour = *hour;
  tm.tm_min = *min;
  tm.tm_sec = *sec;
  return static_cast<int64_t>(timegm(&tm)) + offset;
}

}  // namespace kpc::policy
