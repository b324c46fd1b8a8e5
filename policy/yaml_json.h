#pragma once
// YAML (1.2 core schema, as Kubernetes reads it) to JSON, keeping the source line of every
// value so that validation errors can name "file:line". Pure; thread-safe.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "policy/limits.h"

namespace kpc::policy {

struct YamlDocument {
  nlohmann::json value;
  // JSON Pointer ("/spec/rules/3/config/value") -> 1-based line in the stream.
  std::map<std::string, int> lines;
  int first_line = 1;
};

// Parses a stream of one or more YAML documents ("---" separated). Empty documents are skipped.
// JSON is YAML, so JSON input parses too. Errors say the line (and column, for syntax).
// Scalars and keys that are not UTF-8 are refused, as Kubernetes' YAML reader does (a JSON
// string must be UTF-8). Text over `limits` is refused before yaml-cpp sees it
// (CheckYamlShape), and so is a parsed document that nests deeper than limits.max_depth levels
// or expands (through aliases) to millions of values.
StatusOr<std::vector<YamlDocument>> ParseYamlStream(std::string_view text,
                                                    ShapeLimits limits = kPolicyTextLimits);

// Parses one document; an error when the stream holds more or fewer than one.
StatusOr<YamlDocument> ParseYamlDocument(std::string_view text,
                                         ShapeLimits limits = kPolicyTextLimits);

// Line of the value at `pointer`, or of its nearest ancestor that has one; 0 when unknown.
int LineOf(const YamlDocument& doc, const std::string& pointer);

}  // namespace kpc::policy
