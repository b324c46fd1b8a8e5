#include "policy/compare.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "policy/limits.h"
#include "policy/units.h"

namespace kpc::policy {
namespace {

// The effective comparison type when the catalog does not know the field: from the JSON types.
ValueType InferType(const nlohmann::json& observed, const nlohmann::json& want) {
  const nlohmann::json& probe = want.is_array() && !want.empty() ? want.front() : want;
  if (probe.is_boolean()) return ValueType::kBool;
  if (probe.is_number()) return ValueType::kFloat;
  if (probe.is_string()) {
    // Two Go durations compare as durations, two quantities as quantities.
    const auto& s = probe.get_ref<const std::string&>();
    bool obs_str = observed.is_string();
    if (ParseGoDuration(s) && s != "0" &&
        (!obs_str || ParseGoDuration(observed.get_ref<const std::string&>()))) {
      return ValueType::kDuration;
    }
    return ValueType::kString;
  }
  if (observed.is_array()) return ValueType::kStringList;
  if (observed.is_object()) return ValueType::kMap;
  return ValueType::kUnknown;
}

// A value in a message: never whole (a node can serve a megabyte where a word was expected).
constexpr size_t kShownValueChars = 128;
std::string Shown(const nlohmann::json& v) { return Shortened(DisplayValue(v), kShownValueChars); }

// A scalar as a comparable key: numbers and durations as long double, others as string.
struct Scalar {
  bool numeric = false;
  long double num = 0;
  std::string text;
  bool operator==(const Scalar& o) const {
    return numeric == o.numeric && (numeric ? num == o.num : text == o.text);
  }
};

std::optional<Scalar> ToScalar(ValueType type, const nlohmann::json& v, std::string& err) {
  Scalar s;
  switch (type) {
    case ValueType::kBool:
      if (v.is_boolean()) {
        s.text = v.get<bool>() ? "true" : "false";
        return s;
      }
      if (v.is_string() && (v == "true" || v == "false")) {
        s.text = v.get<std::string>();
        return s;
      }
      err = Shown(v) + " is not a boolean";
      return std::nullopt;
    case ValueType::kInt:
    case ValueType::kFloat:
      if (v.is_number()) {
        s.numeric = true;
        s.num = v.get<long double>();
        return s;
      }
      if (v.is_string()) {
        if (auto q = ParseQuantity(v.get_ref<const std::string&>());
            q && v.get_ref<const std::string&>().find_first_not_of("+-0123456789.eE") ==
                     std::string::npos) {
          s.numeric = true;
          s.num = *q;
          return s;
        }
      }
      err = Shown(v) + " is not a number";
      return std::nullopt;
    case ValueType::kDuration:
      if (auto d = DurationFromJson(v)) {
        s.numeric = true;
        s.num = static_cast<long double>(*d);
        return s;
      }
      err = Shown(v) + " is not a duration (examples: 0s, 30m, 4h0m0s)";
      return std::nullopt;
    case ValueType::kQuantity:
      if (auto q = QuantityFromJson(v)) {
        s.numeric = true;
        s.num = *q;
        return s;
      }
      err = Shown(v) + " is not a resource quantity (examples: 100Mi, 1Gi, 500m)";
      return std::nullopt;
    default:
      // A list or a map where one value is expected is an error, not a string to compare.
      if (v.is_structured()) {
        err = Shown(v) + " is " + (v.is_array() ? "a list" : "a map") + ", not a single value";
        return std::nullopt;
      }
      if (v.is_string())
        s.text = v.get<std::string>();
      else
        s.text = v.dump();
      return s;
  }
}

// What makes `v` no value of a list or map type: the wrong kind of container, or (lists of
// strings) an element that is itself a list or map. Empty when it fits.
std::string ShapeProblem(ValueType type, const nlohmann::json& v) {
  if (type == ValueType::kStringList) {
    if (!v.is_array()) return "is not a list";
    for (const auto& e : v) {
      if (e.is_structured()) return "has an element that is not a single value";
    }
    return "";
  }
  if ((type == ValueType::kMap || type == ValueType::kObject) && !v.is_object()) {
    return std::string("is not ") + (type == ValueType::kMap ? "a map" : "an object");
  }
  return "";
}

bool IsEmptyValue(const nlohmann::json& v) {
  if (v.is_null()) return true;
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

}  // namespace

namespace {
constexpr std::pair<Operator, std::string_view> kOperators[] = {
    {Operator::kEquals, "Equals"},
    {Operator::kNotEquals, "NotEquals"},
    {Operator::kIn, "In"},
    {Operator::kNotIn, "NotIn"},
    {Operator::kGreaterThan, "GreaterThan"},
    {Operator::kGreaterThanOrEqual, "GreaterThanOrEqual"},
    {Operator::kLessThan, "LessThan"},
    {Operator::kLessThanOrEqual, "LessThanOrEqual"},
    {Operator::kExists, "Exists"},
    {Operator::kNotExists, "NotExists"},
    {Operator::kNotEmpty, "NotEmpty"},
};
}  // namespace

std::string_view OperatorName(Operator o) {
  for (const auto& [op, name] : kOperators) {
    if (op == o) return name;
  }
  return "Equals";
}

std::optional<Operator> ParseOperator(std::string_view s) {
  for (const auto& [op, name] : kOperators) {
    if (name == s) return op;
  }
  return std::nullopt;
}

bool IsOrderingOperator(Operator o) {
  return o == Operator::kGreaterThan || o == Operator::kGreaterThanOrEqual ||
         o == Operator::kLessThan || o == Operator::kLessThanOrEqual;
}

bool OperatorTakesValue(Operator o) {
  return o != Operator::kExists && o != Operator::kNotExists && o != Operator::kNotEmpty;
}

std::string DisplayValue(const nlohmann::json& v) {
  if (v.is_null()) return "not set";
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return s.empty() ? "\"\"" : s;
  }
  return v.dump();
}

std::string ValueTypeProblem(ValueType type, const nlohmann::json& v) {
  if (type == ValueType::kUnknown || type == ValueType::kObject) return "";
  if (type == ValueType::kStringList) {
    if (!v.is_array()) return "must be a list of strings";
    for (const auto& e : v) {
      if (!e.is_string()) return "must be a list of strings";
    }
    return "";
  }
  if (type == ValueType::kMap) return v.is_object() ? "" : "must be a map";
  if (type == ValueType::kString) {
    return v.is_string() ? "" : "must be a string";
  }
  if (type == ValueType::kInt) {
    if (v.is_number_integer() || v.is_number_unsigned()) return "";
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return "";
    return "must be an integer";
  }
  std::string err;
  if (!ToScalar(type, v, err)) return err;
  if (type == ValueType::kBool && !v.is_boolean()) return "must be a boolean (true or false)";
  if (type == ValueType::kFloat && !v.is_number()) return "must be a number";
  return "";
}

Comparison Compare(Operator op, ValueType type, const nlohmann::json& observed,
                   const nlohmann::json& want) {
  Comparison c;
  switch (op) {
    case Operator::kExists:
      c.matches = !observed.is_null();
      return c;
    case Operator::kNotExists:
      c.matches = observed.is_null();
      return c;
    case Operator::kNotEmpty:
      c.matches = !IsEmptyValue(observed);
      return c;
    default:
      break;
  }
  if (type == ValueType::kUnknown) type = InferType(observed, want);

  // Lists and maps: Equals/NotEquals compare as sets/objects; In/NotIn test every element.
  if (type == ValueType::kStringList || type == ValueType::kMap || type == ValueType::kObject) {
    if (IsOrderingOperator(op)) {
      c.ok = false;
      c.error =
          std::string(OperatorName(op)) + " cannot compare a " + std::string(ValueTypeName(type));
      return c;
    }
    if (observed.is_null()) {
      c.matches = op == Operator::kNotEquals || op == Operator::kNotIn;
      return c;
    }
    if (auto problem = ShapeProblem(type, observed); !problem.empty()) {
      c.ok = false;
      c.error = "observed value " + Shown(observed) + " " + problem;
      return c;
    }
    if (type == ValueType::kStringList) {
      auto set_of = [](const nlohmann::json& a) {
        std::vector<std::string> v;
        for (const auto& e : a) v.push_back(DisplayValue(e));
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
      };
      auto obs = set_of(observed);
      if (op == Operator::kEquals || op == Operator::kNotEquals) {
        bool eq = want.is_array() && obs == set_of(want);
        c.matches = (op == Operator::kEquals) == eq;
        return c;
      }
      auto allowed = set_of(want.is_array() ? want : nlohmann::json::array({want}));
      bool all_in = std::all_of(obs.begin(), obs.end(), [&](const std::string& e) {
        return std::binary_search(allowed.begin(), allowed.end(), e);
      });
      bool none_in = std::none_of(obs.begin(), obs.end(), [&](const std::string& e) {
        return std::binary_search(allowed.begin(), allowed.end(), e);
      });
      c.matches = op == Operator::kIn ? all_in : none_in;
      return c;
    }
    bool eq = observed == want;
    if (op == Operator::kEquals || op == Operator::kIn)
      c.matches = eq;
    else
      c.matches = !eq;
    return c;
  }

  // Scalars.
  if (observed.is_null()) {
    // "not set" equals nothing, so it is NotEquals/NotIn anything and fails ordering.
    c.matches = op == Operator::kNotEquals || op == Operator::kNotIn;
    return c;
  }
  std::string err;
  auto obs = ToScalar(type, observed, err);
  if (!obs) {
    c.ok = false;
    c.error = "observed value " + err;
    return c;
  }
  if (op == Operator::kIn || op == Operator::kNotIn) {
    bool found = false;
    const nlohmann::json list = want.is_array() ? want : nlohmann::json::array({want});
    for (const auto& w : list) {
      auto ws = ToScalar(type, w, err);
      if (!ws) {
        c.ok = false;
        c.error = "rule value " + err;
        return c;
      }
      if (*ws == *obs) found = true;
    }
    c.matches = (op == Operator::kIn) == found;
    return c;
  }
  auto ws = ToScalar(type, want, err);
  if (!ws) {
    c.ok = false;
    c.error = "rule value " + err;
    return c;
  }
  if (op == Operator::kEquals || op == Operator::kNotEquals) {
    bool eq = *ws == *obs;
    // Strings of enum-like fields are case-sensitive in the kubelet; keep exact comparison.
    c.matches = (op == Operator::kEquals) == eq;
    return c;
  }
  if (!obs->numeric || !ws->numeric) {
    c.ok = false;
    c.error = std::string(OperatorName(op)) + " needs numbers, durations or quantities, not " +
              std::string(ValueTypeName(type));
    return c;
  }
  switch (op) {
    case Operator::kGreaterThan:
      c.matches = obs->num > ws->num;
      break;
    case Operator::kGreaterThanOrEqual:
      c.matches = obs->num >= ws->num;
      break;
    case Operator::kLessThan:
      c.matches = obs->num < ws->num;
      break;
    case Operator::kLessThanOrEqual:
      c.matches = obs->num <= ws->num;
      break;
    default:
      break;
  }
  return c;
}

}  // namespace kpc::policy
