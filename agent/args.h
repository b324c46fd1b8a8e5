#pragma once
// The node agent's command line: `agent remediate|audit-files [FLAGS]`, parsed with CLI11 into
// typed options, or the help text when asked for (`--help`, `-h`, `help`).
// `--restart-command ARG...` takes every argument after it verbatim (also ones that begin with
// '-'); every other value is one argument (`--flag VALUE` or `--flag=VALUE`), repeatable flags
// collect in order, a repeated single flag keeps its last value. Node paths are checked to be
// absolute without "." or ".."; --set values are typed by the field catalog.
// Errors are InvalidArgument naming the flag. Pure (whether --host-root is a directory is left to
// the caller); thread-safe.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/plan.h"
#include "base/status.h"

namespace kpc::agent {

struct AgentOptions {
  std::string command;  // remediate | audit-files
  std::string host_root;
  std::string proc_root = "/proc";
  std::string config_file;               // --config-file (empty: detected)
  std::vector<std::string> flags_files;  // --flags-file (empty: detected)
  std::vector<SetOp> sets;
  std::vector<ModeOp> modes;
  std::vector<OwnerOp> owners;
  std::vector<std::string> files;  // audit-files --file
  bool no_restart = false;
  std::vector<std::string> restart_command;  // empty: the default
  std::string result_file;
  std::optional<std::string> termination_log;  // nullopt: /dev/termination-log when writable
};

struct HelpText {
  std::string text;
};

// What the command line asks for: the help text (print it, exit 0), or a run.
using AgentArgs = std::variant<HelpText, AgentOptions>;

// `args` excludes "agent": {"remediate", "--host-root", "/host", ...}.
StatusOr<AgentArgs> ParseAgentArgs(const std::vector<std::string>& args);

// --set FIELD=VALUE (the first '=' outside brackets and quotes separates them), typed by the
// field catalog; unknown fields are refused.
StatusOr<SetOp> ParseSetArg(const std::string& text);

}  // namespace kpc::agent
