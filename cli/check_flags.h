#pragma once
// The flags of `kubelet-policy-controller check`: their values, how they are read (CLI11, the
// rules of cli/command_line.h), and the checks across flags. No side effects; not thread-safe
// (a CLI::App and what it binds belong to one thread).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/command_line.h"

namespace kpc::cli {

// Defaults are the documented ones (README "`check`: evaluate offline", `check --help`).
struct CheckFlags {
  // Inputs
  std::vector<std::string> policies;  // --policy, -p
  std::string configz;                // a file or a directory
  std::string config_file;
  std::vector<std::string> flags_files;  // later files win
  std::string node;
  std::map<std::string, std::string> node_labels;  // every --node-labels, merged
  bool labels_given = false;                       // --node-labels given (even empty)
  std::optional<int> kubelet_minor;                // from --kubelet-version
  // Live mode
  bool live = false;  // --live, or --kubeconfig given
  std::string kubeconfig;
  std::string context;
  // Output
  std::string output = "table";
  std::string color = "auto";
};

// Adds every `check` flag to `app`, bound to the fields of `flags`, in its help group. Each
// flag checks its own value.
void AddCheckFlags(CLI::App& app, CheckFlags& flags);

// The checks that involve more than one flag: which inputs go together. Pure.
Status ValidateCheckFlags(const CheckFlags& flags);

// `args` are the words after "check". Returns the flags (checked), the help text, or an
// InvalidArgument status naming the flag.
StatusOr<CommandLine<CheckFlags>> ParseCheckFlags(const std::vector<std::string>& args);

}  // namespace kpc::cli
