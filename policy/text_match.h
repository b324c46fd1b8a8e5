#pragma once
// Hand-written matchers for the few text shapes the policy model and its YAML reader accept.
// They replace std::regex, which libstdc++ runs by recursion (one stack frame per character):
// on untrusted text — a policy from the API server, a file given to `check` — a long value
// would overflow the stack. Each runs in one pass, in time linear in the input, with no
// allocation. The pattern each one is equivalent to is written beside it.
// Pure; thread-safe.

#include <cstddef>
#include <optional>
#include <string_view>

namespace kpc::policy {

// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (any length; callers bound it).
bool MatchesDnsLabelShape(std::string_view s);
// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$
bool MatchesDnsSubdomainShape(std::string_view s);
// ^0?[0-7]{3,4}$
bool MatchesOctalMode(std::string_view s);
// ^([a-z_][a-z0-9_-]*\$?|[0-9]+)$
bool MatchesUserOrGroup(std::string_view s);
// ^([0-9]{1,3})%$ -> the number
std::optional<int> MatchPercent(std::string_view s);

// The patterns of the KubeletPolicy CRD (crds/kubeletpolicy.io_kubeletpolicies.yaml), as the
// API server's regular expressions (RE2) read them:
// ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+|\["([^"\\]|\\.)+"\])*$  (config.path; "." is not '\n')
bool MatchesRulePathShape(std::string_view s);
// ^/[-A-Za-z0-9._@+=,:/]+$  (file.path)
bool MatchesFilePathShape(std::string_view s);
// ^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$  (checkInterval, remediation.timeout)
bool MatchesDurationShape(std::string_view s);
// ^([1-9][0-9]?|100)%$  (remediation.maxUnavailable as a string)
bool MatchesPercentShape(std::string_view s);
// Label keys' name part and label values (Kubernetes' qualified-name rule):
// ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$  (any length; callers bound it)
bool MatchesQualifiedNameShape(std::string_view s);

// Characters (Unicode code points) of UTF-8 text, as the API server counts maxLength/minLength.
size_t CharCount(std::string_view s);
// Strict UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF): what
// nlohmann's dump() accepts in a string without throwing.
bool IsValidUtf8(std::string_view s);

// YAML 1.1 plain scalars, as go-yaml v2 resolves them:
// ^[-+]?[0-9][0-9_]*$
bool MatchesYamlDecimal(std::string_view s);
// ^[-+]?0x[0-9a-fA-F_]+$
bool MatchesYamlHex(std::string_view s);
// ^[-+]?0o?[0-7_]+$
bool MatchesYamlOctal(std::string_view s);
// ^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$
bool MatchesYamlFloat(std::string_view s);

}  // namespace kpc::policy
