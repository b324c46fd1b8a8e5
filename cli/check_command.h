#pragma once
// `kubelet-policy-controller check`: evaluates policy files against /configz dumps, or against
// a kubelet config file plus the files that carry its flags, or against a cluster's nodes, and
// prints a table or JSON. Flags: cli/check_flags.h.
// Exit codes: 0 nothing fails, 1 some rule fails (or could not be evaluated), 2 invalid input.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace kpc::cli {

// `args` are the arguments after "check". `now_unix` decides whether exceptions expired.
// Help and the report go to `out`; warnings and errors to `err`.
int RunCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             int64_t now_unix, bool is_terminal);

}  // namespace kpc::cli
