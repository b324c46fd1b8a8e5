#pragma once
// Rule operators and typed comparison of kubelet configuration values: what a rule's
// `operator` means for a catalog type (durations, quantities, lists, ...), used by the
// validator (is this value valid for the field?), the evaluator and the conflict check.
// Pure; thread-safe.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "policy/value_type.h"

namespace kpc::policy {

enum class Operator {
  kEquals,
  kNotEquals,
  kIn,
  kNotIn,
  kGreaterThan,
  kGreaterThanOrEqual,
  kLessThan,
  kLessThanOrEqual,
  kExists,
  kNotExists,
  kNotEmpty,
};
std::string_view OperatorName(Operator o);
std::optional<Operator> ParseOperator(std::string_view s);
bool IsOrderingOperator(Operator o);
bool OperatorTakesValue(Operator o);  // false for Exists, NotExists, NotEmpty

// Compares `observed` with `want` under `op`, typed by `type` (kUnknown: by the JSON types).
// `observed` null means "not set". Returns an error message when the values cannot be
// compared (e.g. observed "abc" for a duration field); otherwise the verdict.
struct Comparison {
  bool ok = true;  // false: could not compare; see error
  bool matches = false;
  std::string error;
};
Comparison Compare(Operator op, ValueType type, const nlohmann::json& observed,
                   const nlohmann::json& want);

// Whether `v` is a valid value of `type` (e.g. "5m" for a duration, a number for an int).
// Returns an empty string when valid, else what is wrong.
std::string ValueTypeProblem(ValueType type, const nlohmann::json& v);

// Human-readable JSON value: strings bare, others as JSON.
std::string DisplayValue(const nlohmann::json& v);

}  // namespace kpc::policy
