#include "policy/value_type.h"

namespace kpc::policy {

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kUnknown: return "unknown";
    case ValueType::kBool: return "bool";
    case ValueType::kInt: return "int";
    case ValueType::kFloat: return "float";
    case ValueType::kString: return "string";
    case ValueType::kDuration: return "duration";
    case ValueType::kQuantity: return "quantity";
    case ValueType::kStringList: return "string list";
    case ValueType::kMap: return "map";
    case ValueType::kObject: return "object";
  }
  return "unknown";
}

bool IsOrdered(ValueType t) {
  return t == ValueType::kInt || t == ValueType::kFloat || t == ValueType::kDuration ||
         t == ValueType::kQuantity;
}

}  // namespace kpc::policy
