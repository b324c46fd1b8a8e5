#pragma once
// The effective kubelet configuration of a node and where each value came from.
//   * from a live /configz response: the kubelet has applied defaults and flags; absent fields
//     are Go zero values (omitempty), absent feature gates are the gate's default;
//   * computed from a config file and flags the way the kubelet does: the file, then the
//     kubelet's v1beta1 defaulting (absent -> default; zero -> default for the fields the
//     kubelet defaults on zero), then command-line flags on top. Without a config file the
//     kubelet starts from its legacy flag defaults instead.
// Pure functions (no I/O); thread-safe.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "policy/limits.h"

namespace kpc::policy {

enum class ValueSource { kConfigz, kZeroValue, kDefault, kConfigFile, kFlag, kRuleDefault };
// "configz", "zero-value", "default", "config-file", "flag", "rule-default"
std::string_view ValueSourceName(ValueSource s);

struct EffectiveConfig {
  nlohmann::json config = nlohmann::json::object();  // v1beta1 JSON field names
  bool live = false;  // true: /configz; false: computed from files
  // Canonical FieldPath::ToString() of a value -> its source, for values that did not come
  // from the primary input (defaults, flags). A present value with no entry came from the
  // primary input: kConfigz when live, kConfigFile otherwise.
  std::map<std::string, ValueSource> sources;
  // Canonical path -> "file:line" (or "flag --x") that set it, where known; for messages.
  std::map<std::string, std::string> origins;
  std::optional<int> kubelet_minor;  // for feature-gate defaults; nullopt = unknown
  std::vector<std::string> warnings;  // e.g. flags that are not in the catalog
};

// Parses a /configz body: {"kubeletconfig": {...}}. Garbage, a non-object, or a missing
// "kubeletconfig" key is an InvalidArgument error saying what was received; so is a body over
// `limits` (CheckJsonShape), refused before it is parsed.
StatusOr<EffectiveConfig> EffectiveConfigFromConfigz(std::string_view body,
                                                     ShapeLimits limits = kConfigzLimits);

// One kubelet command-line flag as found in a flags file.
struct KubeletFlag {
  std::string name;                  // without leading dashes
  std::optional<std::string> value;  // nullopt for a bare "--flag"
  std::string origin;                // "10-kubelet-args.conf:3"
};

// Parses a file that carries kubelet flags: a systemd unit or drop-in (Environment= lines,
// EnvironmentFile is ignored, ExecStart= command line), an env file (KUBELET_ARGS=...,
// KUBELET_EXTRA_ARGS, KUBELET_KUBEADM_ARGS, KUBELET_FLAGS, KUBELET_OPTS, KUBELET_CONFIG_ARGS ...,
// shell quoting and line continuations), or plain flags separated by whitespace/newlines.
// `file_name` is used for origins and to pick the style. Returns flags in the order the kubelet
// would see them (later wins).
StatusOr<std::vector<KubeletFlag>> ParseKubeletFlags(std::string_view content,
                                                     std::string_view file_name);

// Parses a KubeletConfiguration file (JSON or YAML, by content); kind/apiVersion, when present,
// must be KubeletConfiguration / kubelet.config.k8s.io/v1beta1. Errors name the line for YAML.
// Content over kKubeletConfigFileLimits is refused before it is parsed.
StatusOr<nlohmann::json> ParseKubeletConfigFile(std::string_view content,
                                                std::string_view file_name);

// file (or nullopt: a flags-only kubelet) -> defaults -> flags. Flags with a bad value are an
// InvalidArgument error naming the flag and its origin; unknown flags become warnings.
StatusOr<EffectiveConfig> ComputeEffectiveConfig(const std::optional<nlohmann::json>& config_file,
                                                 const std::vector<KubeletFlag>& flags);

}  // namespace kpc::policy
