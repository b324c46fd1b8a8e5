#pragma once
// The node agent's result: what `kubelet-policy-controller agent remediate|audit-files` found and
// changed on one node. The agent prints it as JSON on stdout and writes it (shrunk to fit) to the
// container's termination message; the controller reads it back from the pod's status.
// This file is the contract between the two. Pure; no I/O.
//
// JSON shape (every key optional on input except "command"):
// {
//   "apiVersion": "kubeletpolicy.io/v1alpha1", "kind": "AgentResult",
//   "command": "remediate" | "audit-files",
//   "ok": true,                                   // everything asked for is in place
//   "blocked": {"reason": "FlagOverride", "message": "..."},   // absent unless blocked
//   "kubelet": {"configFile": "/var/lib/kubelet/config.yaml", "kubeconfig": "/etc/kubernetes/kubelet.conf",
//               "flagsFiles": ["/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"],
//               "serviceFiles": ["/lib/systemd/system/kubelet.service", "..."]},
//   "changes": [
//     {"kind": "config", "field": "streamingConnectionIdleTimeout", "file": "...", "from": "0s", "to": "4h0m0s", "changed": true},
//     {"kind": "flag", "field": "...", "flag": "streaming-connection-idle-timeout", "file": "...", "from": "0", "to": "4h0m0s", "changed": true},
//     {"kind": "mode", "path": "/etc/kubernetes/kubelet.conf", "from": "0644", "to": "0600", "changed": true},
//     {"kind": "owner", "path": "...", "from": "1000:1000", "to": "root:root", "changed": true}
//     (any change may carry "note": "..." with a remark, e.g. that a file was rewritten in full)
//   ],
//   "files": {"/etc/kubernetes/kubelet.conf": {"exists": true, "mode": "0600", "uid": 0, "gid": 0,
//                                               "owner": "root", "group": "root"},
//             "/etc/kubernetes/missing": {"exists": false},
//             "/etc/kubernetes/unreadable": {"error": "permission denied"}},
//   "restarted": true,
//   "errors": ["..."],
//   "truncated": false                            // details dropped to fit a size limit
// }
// "from"/"to" are display strings (absent "from": the field or flag was not set).
// "files" holds the state *after* the command (audit-files: the files asked for plus the
// detected kubelet files; remediate: every file it touched or checked).

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "policy/evaluate.h"
#include "policy/limits.h"

namespace kpc::agent {

// Exit codes of `agent` subcommands.
inline constexpr int kExitOk = 0;        // everything asked for is in place
inline constexpr int kExitFailed = 1;    // something could not be done (see errors)
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitBlocked = 3;   // cannot be fixed by the agent (e.g. FlagOverride)

// The kubelet's files as detected on the node (paths as seen on the node).
struct KubeletFiles {
  std::string config_file;                 // --config; empty when none
  std::string kubeconfig;                  // --kubeconfig; empty when none
  std::vector<std::string> flags_files;    // files that set kubelet flags (drop-ins, env files)
  std::vector<std::string> service_files;  // the systemd unit and its drop-ins
};

struct Change {
  std::string kind;   // config | flag | mode | owner
  std::string field;  // config/flag: the rule path of the field
  std::string flag;   // flag: the flag name without dashes
  std::string file;   // config/flag: the file edited
  std::string path;   // mode/owner: the file
  std::optional<std::string> from;
  std::string to;
  bool changed = false;  // false: already so
  // Optional remark, e.g. "file rewritten in full (flow style): comments were not kept".
  std::string note;
};

struct Blocked {
  std::string reason;  // FlagOverride, ...
  std::string message;
};

struct AgentResult {
  std::string command;  // remediate | audit-files
  bool ok = false;
  std::optional<Blocked> blocked;
  KubeletFiles kubelet;
  std::vector<Change> changes;
  std::map<std::string, policy::FileFacts> files;
  bool restarted = false;
  std::vector<std::string> errors;
  bool truncated = false;
};

// A termination message: the kubelet keeps at most 4096 bytes of it (FitToLimit's default).
inline constexpr policy::ShapeLimits kTerminationMessageLimits{4096, policy::kMaxNestingDepth};
// A whole result as the agent prints it (stdout, its result file).
inline constexpr policy::ShapeLimits kResultLimits{1u << 20, policy::kMaxNestingDepth};

nlohmann::json ToJson(const AgentResult& r);
// Lenient about missing keys, strict about types: a termination message that is not an
// AgentResult is an InvalidArgument error saying what was wrong. Text over `limits` is refused
// before it is parsed (policy::CheckJsonShape).
StatusOr<AgentResult> AgentResultFromJson(const nlohmann::json& j);
StatusOr<AgentResult> ParseAgentResult(const std::string& text,
                                       policy::ShapeLimits limits = kResultLimits);

// Compact JSON of `r` that fits in `limit` bytes (the kubelet keeps at most 4096 bytes of a
// termination message): drops, in order, "files" entries not named by a change, unchanged
// changes, then the rest of the details, setting "truncated": true; "command", "ok",
// "blocked" and the first error always stay.
std::string FitToLimit(const AgentResult& r, std::size_t limit = 4096);

// "0644" <-> 0644.
std::string FormatMode(uint32_t mode);
// Octal permission bits ("0600", "600", "4755"); nullopt when not octal or above 07777.
std::optional<uint32_t> ParseMode(std::string_view text);

// The exit code for a finished result: kExitBlocked when blocked, kExitFailed when there are
// errors (or !ok), else kExitOk.
int ExitCodeOf(const AgentResult& r);

}  // namespace kpc::agent
