#pragma once
// `kubelet-policy-controller run`: the operator, until SIGTERM or SIGINT. Flags:
// cli/run_flags.h. The admission webhooks are another process (cli/webhook_command.h).
#include <ostream>
#include <string>
#include <vector>

namespace kpc::cli {

// `args` are the words after "run". Prints help on `out`, usage errors on `err`; logs through
// spdlog once the flags are read. Returns the exit code: 0 after a signal (or for --help),
// 1 when a server cannot start, 2 for a usage error or an unusable kubeconfig. Installs the
// process's SIGTERM and SIGINT handlers: call it once, from main.
int RunOperator(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace kpc::cli
