#pragma once
// The kubelet field catalog: what this project knows about each KubeletConfiguration
// (kubelet.config.k8s.io/v1beta1) field — its type, Go zero value, the kubelet's defaulting
// of a config file, the legacy flag default (kubelet without --config), and the command-line
// flag that overrides it. Facts come from the Kubernetes sources
// (staging/src/k8s.io/kubelet/config/v1beta1/types.go, pkg/kubelet/apis/config/v1beta1/defaults.go,
// cmd/kubelet/app/options/options.go, pkg/features/kube_features.go).
// Immutable static data; thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/field_path.h"
#include "policy/value_type.h"

namespace kpc::policy {

// How a kubelet command-line flag's value is written.
enum class FlagSyntax {
  kNone,        // the field has no flag
  kScalar,      // parsed by the field's type: --event-qps=5, --anonymous-auth (bare = true for bools)
  kStringList,  // comma separated: --tls-cipher-suites=A,B
  kMap,         // comma separated key<sep>value pairs merged over the file's map:
                // --feature-gates=A=true,B=false   --eviction-hard=memory.available<100Mi
};

struct FieldInfo {
  std::string path;                 // rule path syntax, e.g. "authentication.anonymous.enabled"
  ValueType type = ValueType::kUnknown;
  ValueType element_type = ValueType::kUnknown;  // for kMap / kStringList: the element type
  nlohmann::json zero;              // Go zero value: what an absent /configz field means
  nlohmann::json file_default;      // what v1beta1 defaulting gives an absent field of a config
                                    // file; null = no default (stays zero)
  bool zero_is_defaulted = false;   // true when defaulting also replaces an explicit zero
                                    // (non-pointer Go fields, e.g. streamingConnectionIdleTimeout)
  nlohmann::json flag_default;      // value of a kubelet started without --config (legacy flag
                                    // defaults, options.NewKubeletConfiguration); null = zero
  std::string flag;                 // flag name without dashes; empty = none
  FlagSyntax flag_syntax = FlagSyntax::kNone;
  char map_separator = '=';         // kMap flags: between key and value ('=' or '<')
  std::string description;          // one line, for messages and docs
};

// Every field the catalog knows, sorted by path.
const std::vector<FieldInfo>& KubeletFieldCatalog();

// A rule path resolved against the catalog.
struct FieldMatch {
  const FieldInfo* field = nullptr;  // the catalog entry (the map field for a map key)
  std::optional<std::string> map_key;  // featureGates.SeccompDefault -> "SeccompDefault"
  ValueType type = ValueType::kUnknown;  // type of the value the path names
};
// nullopt when the path is not in the catalog (rules may still use it; the webhook warns).
std::optional<FieldMatch> LookupField(const FieldPath& path);

// Catalog entry for a kubelet flag name (without dashes), or nullptr.
const FieldInfo* FindFieldByFlag(std::string_view flag);

// Default of a feature gate for a kubelet minor version (1.N -> N); nullopt when unknown.
// A missing key in featureGates means this default, not false.
std::optional<bool> FeatureGateDefault(std::string_view gate, int kubelet_minor);
// The minor version assumed when a node's kubelet version is unknown.
int DefaultKubeletMinor();

}  // namespace kpc::policy
