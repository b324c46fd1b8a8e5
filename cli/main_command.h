#pragma once
// The binary's command line: `kubelet-policy-controller <command> [flags]`. The first word
// picks the command (run, webhook, check, agent, version, help; or -h/--help, --version), which gets
// every word after it unchanged. Without a word: usage and exit code 2; an unknown command:
// an error naming it, usage, exit code 2.

#include <ostream>
#include <string>
#include <vector>

#include "base/clock.h"

namespace kpc::cli {

// `args` exclude the program name. `clock` is the time `check` judges exceptions by;
// `stdout_is_terminal` lets `check` colour its table. Returns the exit code.
int RunMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            const Clock& clock, bool stdout_is_terminal);

}  // namespace kpc::cli
