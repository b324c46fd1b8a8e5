#pragma once
// A path into a KubeletConfiguration (v1beta1 JSON names), in rule path syntax:
// dot-separated segments; a segment that itself contains dots (or brackets, quotes) is written
// in brackets and double quotes:  evictionHard["memory.available"], featureGates.SeccompDefault
// Pure value type; thread-compatible.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace kpc::policy {

class FieldPath {
 public:
  FieldPath() = default;
  explicit FieldPath(std::vector<std::string> segments) : segments_(std::move(segments)) {}

  // Parses rule path syntax. Errors name the offending position.
  static StatusOr<FieldPath> Parse(std::string_view text);

  const std::vector<std::string>& segments() const { return segments_; }
  bool empty() const { return segments_.empty(); }
  size_t size() const { return segments_.size(); }
  // Canonical rule-path text (brackets only where needed). Parse(ToString()) == *this.
  std::string ToString() const;
  // The first n segments.
  FieldPath Prefix(size_t n) const;
  FieldPath Child(std::string segment) const;

  // Looks the path up in a JSON object tree; nullptr when any segment is absent
  // or a non-object is traversed.
  const nlohmann::json* Find(const nlohmann::json& root) const;
  // Sets the value, creating intermediate objects (replacing non-objects on the way).
  void Set(nlohmann::json& root, nlohmann::json value) const;
  // Removes the leaf if present; returns whether something was removed.
  bool Erase(nlohmann::json& root) const;

  friend bool operator==(const FieldPath&, const FieldPath&) = default;
  friend auto operator<=>(const FieldPath&, const FieldPath&) = default;

 private:
  std::vector<std::string> segments_;
};

}  // namespace kpc::policy
