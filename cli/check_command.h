#pragma once
// `kubelet-policy-controller check`: evaluates policy files against /configz dumps, or against
// a kubelet config file plus the files that carry its flags, and prints a table or JSON.
// Exit codes: 0 nothing fails, 1 some rule fails (or could not be evaluated), 2 invalid input.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace kpc::cli {

// `args` are the arguments after "check". `now_unix` decides whether exceptions expired.
int RunCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             int64_t now_unix, bool is_terminal);

std::string CheckUsage();

}  // namespace kpc::cli
