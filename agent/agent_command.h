#pragma once
// `kubelet-policy-controller agent remediate|audit-files ...`: the node agent's command line.
// See README.md, "The node agent", for the flags, detection order, backups and exit codes.
// Prints the AgentResult JSON (agent/result.h) on `out`, usage errors and progress on `err`;
// returns the exit code (kExitOk, kExitFailed, kExitUsage, kExitBlocked).
// Runs the restart command with fork/execvp (its stdout goes to this process's stderr, so that
// stdout stays one JSON document).

#include <ostream>
#include <string>
#include <vector>

namespace kpc::agent {

// `args` excludes "agent" itself: {"remediate", "--host-root", "/host", ...}.
int RunAgent(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace kpc::agent
