// kubelet-policy-controller: one binary, several jobs (see `--help`).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "agent/agent_command.h"
#include "base/clock.h"
#include "cli/check_command.h"
#include "cli/run_command.h"

namespace {

constexpr const char* kUsage = R"(kubelet-policy-controller keeps every node's kubelet configuration compliant
with KubeletPolicy objects.

Usage:
  kubelet-policy-controller <command> [flags]

Commands:
  run       run the operator against a cluster
  check     evaluate policy files against kubelet configurations (offline)
  agent     the node agent: audit kubelet files, remediate them (runs in Jobs on a node)
  version   print build information

Run 'kubelet-policy-controller <command> --help' for a command's flags.
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "version" || cmd == "--version") {
    std::cout << "kubelet-policy-controller " << KPC_VERSION << " (commit " << KPC_GIT_COMMIT << ")\n";
    return 0;
  }
  if (cmd == "run") return kpc::cli::RunOperator(args);
  if (cmd == "check") {
    const kpc::RealClock clock;
    return kpc::cli::RunCheck(args, std::cout, std::cerr, clock.UnixSeconds(), isatty(STDOUT_FILENO) == 1);
  }
  if (cmd == "agent") return kpc::agent::RunAgent(args, std::cout, std::cerr);
  std::cerr << "error: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return 2;
}
