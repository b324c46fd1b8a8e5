#pragma once
// The KubeletPolicy (kubeletpolicy.io/v1alpha1) model: parsing from JSON/YAML with every
// validation rule of the API contract, and defaulting. Validation collects *all* problems,
// each with its field path ("spec.rules[3].config.value"), never just the first.
// Pure (no I/O); thread-compatible.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/compare.h"
#include "policy/field_issue.h"
#include "policy/field_path.h"
#include "policy/label_selector.h"
#include "base/status.h"
#include "policy/value_type.h"

namespace kpc::policy {

inline constexpr std::string_view kApiVersion = "kubeletpolicy.io/v1alpha1";
inline constexpr std::string_view kKind = "KubeletPolicy";

enum class Enforcement { kAudit, kDryRun, kEnforce };
enum class Severity { kCritical, kHigh, kMedium, kLow, kInfo };
enum class FileTarget { kKubeletConfigFile, kKubeletKubeconfig, kKubeletServiceFile, kPath };

std::string_view EnforcementName(Enforcement e);
std::string_view SeverityName(Severity s);
std::string_view FileTargetName(FileTarget t);

struct ConfigCheck {
  std::string path_text;  // as written
  FieldPath path;
  ValueType type = ValueType::kUnknown;  // from the catalog; kUnknown for unknown paths
  Operator op = Operator::kEquals;
  std::optional<nlohmann::json> value;          // absent for Exists/NotExists/NotEmpty
  std::optional<nlohmann::json> default_value;  // config.default
};

struct FileCheck {
  FileTarget target = FileTarget::kPath;
  std::string path;                 // for kPath
  std::optional<uint32_t> max_mode;  // permission bits
  std::string owner;                // name or numeric id; empty = not checked
  std::string group;
  bool must_exist = false;
};

struct RuleRemediation {
  std::optional<nlohmann::json> value;  // config rules
  bool enabled = true;
};

struct Rule {
  std::string id;
  std::string title;
  Severity severity = Severity::kMedium;
  std::vector<std::string> references;
  std::optional<ConfigCheck> config;
  std::optional<FileCheck> file;
  RuleRemediation remediation;
};

struct PolicyException {
  std::vector<std::string> rules;
  LabelSelector node_selector;   // empty = every node of the policy
  std::string reason;
  std::optional<int64_t> expires_unix;  // seconds since the epoch; nullopt = never
};

struct IntOrPercent {
  int value = 1;
  bool percent = false;
  // Resolves against a node count: percentages round down, at least 1.
  int Resolve(int total) const;
};

struct RemediationSettings {
  IntOrPercent max_unavailable;
  int failure_threshold = 3;
  bool restart_kubelet = true;
  int64_t timeout_ns = 10LL * 60 * 1'000'000'000;
  std::string kubelet_config_file;
};

struct KubeletPolicy {
  std::string name;
  std::string uid;
  int64_t generation = 0;
  std::string resource_version;
  LabelSelector node_selector;
  int64_t check_interval_ns = 5LL * 60 * 1'000'000'000;
  Enforcement enforcement = Enforcement::kAudit;
  bool suspend = false;
  std::vector<Rule> rules;
  std::vector<PolicyException> exceptions;
  RemediationSettings remediation;

  const Rule* FindRule(std::string_view id) const;
  // Whether a rule checks a file (the selected nodes then need file audits).
  bool HasFileRules() const;
};

struct PolicyParseResult {
  std::optional<KubeletPolicy> policy;  // set when there are no errors
  std::vector<FieldIssue> errors;
  std::vector<FieldIssue> warnings;  // legal but suspicious (unknown kubelet field, ...)
};

// Validates and defaults one KubeletPolicy object (as JSON, e.g. from the API server).
PolicyParseResult ParsePolicy(const nlohmann::json& object);

// A policy read from a text source, with its position there.
struct SourcedPolicy {
  KubeletPolicy policy;
  std::vector<FieldIssue> warnings;
  int line = 0;
};

// Parses policies from YAML or JSON text: one object, a multi-document YAML stream, or a
// `List` (kind: List / KubeletPolicyList). Every problem in every document is reported with
// `source_name:line: field: message` lines in one InvalidArgument status.
StatusOr<std::vector<SourcedPolicy>> ParsePolicies(std::string_view text,
                                                   std::string_view source_name);

// "spec.rules[3].config.value" -> "/spec/rules/3/config/value"
std::string FieldToPointer(const std::string& field);

// The directories file rules may name (api.md): the kubelet's own files and its service units,
// each ending in '/'. The node agent holds the paths it detects on a node to the same roots.
const std::vector<std::string>& AllowedFilePrefixes();
// Whether `path` names something strictly below one of AllowedFilePrefixes() (a plain prefix
// test: ".." segments and characters are the caller's to check).
bool UnderAllowedFilePrefix(std::string_view path);

}  // namespace kpc::policy
