#pragma once
#include <string_view>

namespace kpc::policy {

// The type of a KubeletConfiguration field, which decides how values compare.
enum class ValueType {
  kUnknown,     // not in the catalog: compared by the JSON type of the observed value
  kBool,
  kInt,
  kFloat,
  kString,
  kDuration,    // Go duration string ("4h0m0s")
  kQuantity,    // resource quantity ("100Mi")
  kStringList,
  kMap,         // map[string]string or map[string]bool (featureGates, evictionHard, ...)
  kObject,      // nested struct
};

std::string_view ValueTypeName(ValueType t);
// Whether GreaterThan/LessThan... make sense for the type.
bool IsOrdered(ValueType t);

}  // namespace kpc::policy
