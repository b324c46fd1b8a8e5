#pragma once
// Pure text edits of a KubeletConfiguration file: set one field, keep everything else.
//  * JSON: a targeted edit too: the value's bytes are replaced, or a member is inserted after the
//    last one of its object with the same separator and indentation; every other byte stays.
//    When that does not verify, the file is re-serialised (key order and the indentation style
//    kept) and the note says so.
//  * YAML: a targeted line-level edit of block-style YAML keeps comments, ordering and every
//    other byte: a scalar is replaced in place (its trailing comment stays), a missing key is
//    inserted at the end of its parent mapping with the mapping's indentation, missing parent
//    mappings are created. Where a targeted edit is unsafe (flow-style root, anchors, aliases,
//    tags, complex keys, several documents, tabs in indentation), the file is re-emitted in
//    full as block YAML and the edit's note says so. Every edit is verified by parsing the
//    result: it must equal the original with only the field changed.
// Also how a --set value is typed by the field catalog and written as YAML or as a flag.
// Pure functions (no I/O); thread-safe.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "policy/field_path.h"
#include "base/status.h"
#include "policy/value_type.h"

namespace kpc::agent {

enum class ConfigFormat { kJson, kYaml };
// By content (a first non-blank '{' is JSON), else by the file name's extension (.json).
ConfigFormat DetectConfigFormat(std::string_view content, std::string_view file_name);

// The content of a new config file: apiVersion and kind only.
std::string NewConfigFileContent(ConfigFormat format);

struct ConfigEdit {
  std::string text;                    // the new content; equal to the input when !changed
  std::optional<nlohmann::json> from;  // the value found at the path (nullopt: absent)
  bool changed = false;
  std::string note;  // set when the file had to be re-emitted in full, ...
};

// Sets `path` to `value` in a config file's content. Nothing changes when the present value
// already equals `value` under `type` (durations as durations, quantities as quantities, ...).
// Errors: the content is not a valid KubeletConfiguration (InvalidArgument naming the file).
StatusOr<ConfigEdit> SetConfigField(std::string_view content, std::string_view file_name,
                                    const policy::FieldPath& path, const nlohmann::json& value,
                                    policy::ValueType type);

// A --set VALUE typed for `path` by the field catalog: VALUE is JSON when it parses, else a
// string; then durations are normalised ("4h" -> "4h0m0s"), integers/booleans given as strings
// are converted, strings stay literal ("$(HOME)", "a;b"). Paths not in the catalog keep the JSON
// type. InvalidArgument says what the field wants.
StatusOr<nlohmann::json> TypeSetValue(const policy::FieldPath& path, std::string_view raw);
// The catalog type of the value at `path` (kUnknown when not in the catalog).
policy::ValueType TypeOfPath(const policy::FieldPath& path);

// Equality under a field type.
bool TypedEqual(const nlohmann::json& a, const nlohmann::json& b, policy::ValueType type);

// Whether YAML 1.1 or 1.2 could read the plain scalar `s` as something else than a string: a
// number (digits with '_', a fraction, an exponent, a 0x/0o/0b prefix), a date at its start
// (YYYY-M-D...), a boolean or null word (y, No, on, ~, .inf, ...); anything over 128 bytes counts
// as special too (it is quoted). One pass, linear in the input.
bool LooksSpecialYaml(std::string_view s);

// A JSON scalar as a YAML plain or double-quoted scalar (quoted whenever YAML 1.1 or 1.2 could
// read it as something else than the string: "true", "0755", "1e3", "", ": x", ...).
std::string FormatYamlScalar(const nlohmann::json& v);

}  // namespace kpc::agent
