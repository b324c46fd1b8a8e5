#pragma once
// How `run`, `check` and the top level read their command lines: CLI11 parses into a plain
// flags struct, and its outcomes become values: the flags, a help request (the text to print),
// or an InvalidArgument status naming the flag. Usage errors print the same way for each.
//
// Flag syntax: `--flag value` and `--flag=value` (`--flag=` is an empty value); the word after
// a flag that takes a value is that value, whatever it looks like; boolean flags are `--flag`,
// `--flag=true` or `--flag=false`; a flag given twice takes its last value unless it is
// repeatable; an unknown flag or a stray word is an error. -h/--help returns the help text
// unless a flag's own value is invalid or missing.
// Help text comes from the options themselves: their group, value name, description, default
// (read from the bound variable when the option is added) and environment variable.
//
// Not thread-safe: a CLI::App and the variables bound to it belong to one thread.

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace kpc::cli {

// A parsed command line: the flags, or the help text when -h/--help was given.
template <typename Flags>
struct CommandLine {
  Flags flags;
  std::optional<std::string> help;  // set: print it and exit 0 (`flags` are then not validated)
};

// Sets up `app` the way every command reads flags (see above). `usage` opens the help text
// (usage lines and what the command does); `help_column` is where descriptions start.
void ConfigureApp(CLI::App& app, std::string usage, std::size_t help_column);

// Parses `args` (the words after the command name) into the options bound on `app`.
// Returns the help text when -h/--help was given, nullopt when the flags were read, or an
// InvalidArgument status naming the flag.
StatusOr<std::optional<std::string>> ParseCommandLine(CLI::App& app,
                                                      const std::vector<std::string>& args);

// How a command's help opens and ends, and where its descriptions start (see ConfigureApp).
struct CommandText {
  std::string usage;
  std::string footer;  // may be empty
  std::size_t help_column = 24;
};

// Sets up an app as ConfigureApp does, lets `add` bind the flags, parses `args` as
// ParseCommandLine does and, unless help was asked for, runs `validate` over the result.
StatusOr<std::optional<std::string>> ReadCommandLine(const CommandText& text,
                                                     const std::vector<std::string>& args,
                                                     const std::function<void(CLI::App&)>& add,
                                                     const std::function<Status()>& validate);

// ReadCommandLine into a flags struct: `add` binds its fields, `validate` checks them.
template <typename Flags>
StatusOr<CommandLine<Flags>> ReadFlags(const CommandText& text,
                                       const std::vector<std::string>& args,
                                       void (*add)(CLI::App&, Flags&),
                                       Status (*validate)(const Flags&)) {
  CommandLine<Flags> line;
  auto help = ReadCommandLine(
      text, args, [&](CLI::App& app) { add(app, line.flags); },
      [&] { return validate(line.flags); });
  if (!help.ok()) return help.status();
  line.help = std::move(*help);
  return line;
}

// Prints `error` and the hint to run `<command> --help`; returns the usage exit code, 2.
int ReportUsageError(std::ostream& err, const Status& error, std::string_view command);

// Options with this binary's value rules. Each reads the bound variable's current value as the
// default shown in --help, and names the flag in its errors.
CLI::Option* AddText(CLI::App& app, const std::string& name, std::string& out,
                     const std::string& value_name, const std::string& description);
// Like AddText, but only one of `choices` (or of `aliases`, accepted without being shown).
CLI::Option* AddChoice(CLI::App& app, const std::string& name, std::string& out,
                       const std::string& value_name, const std::vector<std::string>& choices,
                       const std::string& description,
                       const std::vector<std::string>& aliases = {});
// Repeatable: each occurrence appends one value.
CLI::Option* AddRepeated(CLI::App& app, const std::string& name, std::vector<std::string>& out,
                         const std::string& value_name, const std::string& description);
// --name, --name=true, --name=false.
CLI::Option* AddBool(CLI::App& app, const std::string& name, bool& out,
                     const std::string& description);
// A finite number > 0.
CLI::Option* AddPositiveNumber(CLI::App& app, const std::string& name, double& out,
                               const std::string& description);
// A whole number > 0 ("2" or "2.0").
CLI::Option* AddPositiveInt(CLI::App& app, const std::string& name, int& out,
                            const std::string& description);
// A Go duration > 0 ("10s", "1h30m"), stored in nanoseconds.
CLI::Option* AddDuration(CLI::App& app, const std::string& name, int64_t& out_ns,
                         const std::string& description);
// A size in bytes from `min` to `max`: a whole number, or one with a Ki, Mi or Gi suffix
// ("4Mi"), as Kubernetes quantities write it.
CLI::Option* AddByteSize(CLI::App& app, const std::string& name, int64_t& out, int64_t min,
                         int64_t max, const std::string& description);

}  // namespace kpc::cli
