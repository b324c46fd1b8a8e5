#pragma once
// Limits on untrusted text, checked before any parser sees it, and the one way to quote
// untrusted text back in a message.
//
// Every JSON or YAML document that comes from a node (/configz), a Job's termination message
// (agent results), the network (AdmissionReview) or a policy source is checked here first:
// its size, then how deeply it nests. nlohmann::json parses without recursion, but copying,
// dumping and comparing its values recurse once per level, and so do yaml-cpp's parser and
// our YAML converter; bounding the depth is what keeps them far from the end of the stack.
// The scans run in one pass over the text, without recursion.
//
// JSON: exact — the deepest nesting of objects and arrays outside strings. Text that is not
// JSON is left to the parser, which does not recurse and refuses it at the first bad byte: the
// scan stops there too.
// YAML: an upper bound for the documents Kubernetes tools write — flow collections ([ {)
// outside quoted scalars, comments and block scalars, plus block collections by indentation.
// The YAML converter (policy/yaml_json.h) checks the exact depth of what was parsed, and
// yaml-cpp stops at its own, deeper, limit, for constructs the scan does not model.
//
// Pure; thread-safe.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace kpc::policy {

// What refused an input: its size or its nesting.
enum class InputLimit { kBytes, kDepth };
// "bytes", "depth": the `limit` label of kubeletpolicy_input_rejected_total.
std::string_view InputLimitName(InputLimit limit);

struct ShapeLimits {
  size_t max_bytes = 0;
  size_t max_depth = 0;  // levels of objects/arrays (mappings/sequences); 1 = flat
};

// Real kubelet configurations nest fewer than 10 levels, policies fewer than 12.
inline constexpr size_t kMaxNestingDepth = 64;
// A kubelet's /configz answer: a few KiB in practice.
inline constexpr ShapeLimits kConfigzLimits{4u << 20, kMaxNestingDepth};
// A kubelet config file (JSON or YAML).
inline constexpr ShapeLimits kKubeletConfigFileLimits{4u << 20, kMaxNestingDepth};
// Policy text given to `check`: one policy, a multi-document stream or a List. The API server
// takes objects of at most ~1.5 MiB, so this leaves room for many.
inline constexpr ShapeLimits kPolicyTextLimits{16u << 20, kMaxNestingDepth};
// A policy's free-form values (config.value, config.default, remediation.value): kubelet
// configuration values are scalars, lists or maps of scalars.
inline constexpr size_t kMaxPolicyValueDepth = 16;

// The counter of refused inputs, registered (with these labels) by each component that reads
// untrusted input: source is "configz", "agent-result" or "admission"; limit is InputLimitName.
inline constexpr const char* kInputRejectedMetric = "kubeletpolicy_input_rejected_total";
inline constexpr const char* kInputRejectedHelp =
    "Untrusted inputs refused by a size or nesting limit before parsing, by source and limit.";

// An input refused by a limit, with a message that names the limit.
struct Refusal {
  InputLimit limit = InputLimit::kBytes;
  std::string message;
};
// InvalidArgument with the refusal's message.
Status RefusalStatus(const Refusal& refusal);

// Size, then nesting depth of JSON text. nullopt when within `limits`. `what` names the input
// in the message: "/configz is 5242880 bytes, over the 4 MiB limit", "/configz nests deeper
// than 64 levels (at byte 65)".
std::optional<Refusal> CheckJsonShape(std::string_view text, ShapeLimits limits,
                                      std::string_view what);

// Size, then an upper bound of the nesting depth of a YAML stream (see above). nullopt when
// within `limits`; the depth message names the line.
std::optional<Refusal> CheckYamlShape(std::string_view text, ShapeLimits limits,
                                      std::string_view what);

// Whether a parsed value nests deeper than `max_depth` levels of objects and arrays (a scalar
// is 0 levels). Iterative; stops early.
bool NestsDeeperThan(const nlohmann::json& value, size_t max_depth);

// Untrusted text quoted for a message: in double quotes, control bytes escaped (\n, \x01),
// cut after `max` bytes (on a UTF-8 boundary) with its full size: "abc…" (100000 bytes).
inline constexpr size_t kQuotedChars = 64;
std::string Quoted(std::string_view text, size_t max = kQuotedChars);
// The same without the quotes, for values shown as they are (numbers, JSON).
std::string Shortened(std::string_view text, size_t max = kQuotedChars);

// "4 MiB", "1 KiB", "1000 bytes": exact, for messages about limits.
std::string FormatByteSize(size_t bytes);

}  // namespace kpc::policy
