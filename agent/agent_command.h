#pragma once
// `kubelet-policy-controller agent remediate|audit-files ...`: the node agent's command line.
// See README.md, "The node agent", for the flags, detection order, backups and exit codes.
// Prints the AgentResult JSON (agent/result.h) on `out`, usage errors and progress on `err`;
// returns the exit code (kExitOk, kExitFailed, kExitUsage, kExitBlocked).
// remediate reads the node's state, decides with PlanAgentRemediation (agent/plan.h), then
// carries the plan out; nothing is written unless every step was planned without error.
// Runs the restart command with fork/execvp (its stdout goes to this process's stderr, so that
// stdout stays one JSON document). Keeps no state between calls.

#include <ostream>
#include <string>
#include <vector>

namespace kpc::agent {

// `args` excludes "agent" itself: {"remediate", "--host-root", "/host", ...}.
int RunAgent(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace kpc::agent
