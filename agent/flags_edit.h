#pragma once
// Pure text edits of files that carry kubelet flags (systemd units and drop-ins with
// Environment="KUBELET_ARGS=..." or ExecStart=, env files such as KUBELET_ARGS="..." and
// kubeadm-flags.env): rewrite one flag's value in place, every other byte unchanged.
// Which flags a file sets comes from policy::ParseKubeletFlags (the semantics); where they are
// comes from a scan of the raw text; the two must agree, and the edited file must parse to the
// same flags with only the target's value changed, or the edit is refused (edit by hand).
// Pure functions (no I/O); thread-safe.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/catalog.h"
#include "policy/effective_config.h"
#include "base/status.h"

namespace kpc::agent {

// Whether `flags` (in kubelet order) override the field `match` names: the field's flag is
// present; for a feature gate (featureGates.X) only when the flag names gate X.
bool FlagsOverrideField(const std::vector<policy::KubeletFlag>& flags,
                        const policy::FieldMatch& match);

// The value `flags` give the field `match` names, when they override it (see above) and parse;
// nullopt otherwise.
std::optional<nlohmann::json> FlagsValue(const std::vector<policy::KubeletFlag>& flags,
                                         const policy::FieldMatch& match);

// The flag value text for a typed value: booleans true/false, durations as given, lists
// comma-joined, maps key<sep>value comma-joined.
std::string FlagValueText(const nlohmann::json& value, const policy::FieldInfo& field);

struct FlagsEdit {
  std::string text;  // new content (== input when !changed)
  bool changed = false;
  std::optional<std::string> from;  // the last value the file gave the flag (display)
  std::string to;                   // the value the flag has now
};

// Sets the field `match` (whose catalog entry has a flag) to `value` in every occurrence of its
// flag in `content`. For a map key: the key's pair is replaced or, for maps other than
// featureGates, added to the last occurrence. The new value must be plain (letters, digits and
// . _ - / : = , < + @, and % outside unit files); anything that needs quoting or escaping is
// refused with InvalidArgument.
// A file that does not set the flag is returned unchanged.
StatusOr<FlagsEdit> SetFlagInFile(std::string_view content, std::string_view file_name,
                                  const policy::FieldMatch& match, const nlohmann::json& value);

}  // namespace kpc::agent
