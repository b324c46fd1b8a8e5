#pragma once
// A problem with one field of an object, as the validators of policy/ report it.

#include <string>

namespace kpc::policy {

// A problem with one field of an object.
struct FieldIssue {
  std::string field;    // "spec.rules[3].config.value"
  std::string message;  // what is wrong and how to fix it
  int line = 0;         // 1-based line in the source YAML, when known
};

}  // namespace kpc::policy
