#pragma once
// Go duration strings and Kubernetes resource quantities, parsed into comparable numbers.
// Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kpc::policy {

// Parses a Go time.Duration string ("4h0m0s", "1h30m", "90s", "1.5h", "-2m", "0").
// Also accepts the bare strings "0" and numbers meaning 0 (a kubelet writes "0s").
// Returns nanoseconds, or nullopt when the text is not a Go duration.
std::optional<int64_t> ParseGoDuration(std::string_view text);
// A JSON value as a duration: a string parsed as above, or the number 0.
std::optional<int64_t> DurationFromJson(const nlohmann::json& v);
// Formats nanoseconds the way Go's Duration.String() does ("4h0m0s", "1.5s", "0s").
std::string FormatGoDuration(int64_t nanos);

// Parses a Kubernetes resource quantity ("100Mi", "1.5Gi", "10%"? no: percentages are not
// quantities, "500m", "1e3", "2k"). Returns the value as a long double, or nullopt.
std::optional<long double> ParseQuantity(std::string_view text);
// A JSON value as a quantity: a number, or a string parsed as above.
std::optional<long double> QuantityFromJson(const nlohmann::json& v);

// RFC 3339 time ("2027-01-31T00:00:00Z", "2027-01-31T02:00:00+02:00", fractions allowed) to
// Unix seconds; nullopt when malformed.
std::optional<int64_t> ParseRfc3339(const std::string& text);

}  // namespace kpc::policy
