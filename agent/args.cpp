#include "agent/args.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <set>
#include <utility>

#include "agent/config_edit.h"
#include "agent/host_fs.h"
#include "agent/result.h"

namespace kpc::agent {
namespace {

constexpr const char* kProgram = "kubelet-policy-controller agent";

constexpr const char* kRemediateSynopsis =
    "  kubelet-policy-controller agent remediate --host-root DIR\n"
    "      [--config-file PATH] [--flags-file PATH]...\n"
    "      [--set FIELD=VALUE]... [--file-mode PATH=MODE]... [--file-owner PATH=USER:GROUP]...\n"
    "      [--result-file PATH] [--termination-log PATH] [--proc-root DIR]\n"
    "      [--no-restart | --restart-command ARG...]\n";
constexpr const char* kAuditSynopsis =
    "  kubelet-policy-controller agent audit-files --host-root DIR [--file PATH]...\n"
    "      [--result-file PATH] [--termination-log PATH] [--proc-root DIR]\n";

constexpr const char* kDescription =
    "Runs on one node (in a Job with the node's / mounted at --host-root and hostPID). Paths are\n"
    "as seen on the node. Prints an AgentResult (JSON) on stdout.\n";

constexpr const char* kExitCodes =
    "Exit codes: 0 everything in place, 1 something failed (see \"errors\"), 2 bad usage,\n"
    "3 blocked (e.g. FlagOverride: a flag only on the kubelet's command line).";

// Help groups.
constexpr const char* kNodeGroup = "Node";
constexpr const char* kKubeletGroup = "Kubelet files (default: detected)";
constexpr const char* kChangeGroup = "Changes";
constexpr const char* kRestartGroup = "Restart";
constexpr const char* kFilesGroup = "Files";
constexpr const char* kOutputGroup = "Output";

// The usage lines of the old hand-written help: every flag of a subcommand in one synopsis.
class AgentFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string) const override {
    std::string name = app->get_name();
    if (name == "remediate") return std::string("Usage:\n") + kRemediateSynopsis;
    if (name == "audit-files") return std::string("Usage:\n") + kAuditSynopsis;
    return std::string("Usage:\n") + kRemediateSynopsis + kAuditSynopsis;
  }
};

// The flags as CLI11 collects them, before they are typed.
struct RawArgs {
  std::string host_root, proc_root = "/proc", config_file, result_file, termination_log;
  std::vector<std::string> flags_files, sets, modes, owners, files;
  bool no_restart = false;
  std::string restart_placeholder;  // --restart-command is split off before CLI11 (see below)
};

CLI::Option* Single(CLI::App& app, const std::string& name, std::string& into,
                    const std::string& type, const std::string& help, const char* group) {
  return app.add_option(name, into, help)->type_name(type)->take_last()->group(group);
}

CLI::Option* Repeated(CLI::App& app, const std::string& name, std::vector<std::string>& into,
                      const std::string& type, const std::string& help, const char* group) {
  // One value per occurrence, kept verbatim (no "[a,b]" list syntax).
  return app.add_option(name, into, help)->type_name(type)->allow_extra_args(false)->group(group);
}

void AddNodeFlags(CLI::App& sub, RawArgs& raw) {
  Single(sub, "--host-root", raw.host_root, "DIR", "where the node's root filesystem is mounted",
         kNodeGroup)
      ->required();
  Single(sub, "--proc-root", raw.proc_root, "DIR",
         "where to look for the kubelet process (default /proc)", kNodeGroup);
}

void AddOutputFlags(CLI::App& sub, RawArgs& raw) {
  Single(sub, "--result-file", raw.result_file, "PATH", "also write the full result there",
         kOutputGroup);
  Single(sub, "--termination-log", raw.termination_log, "PATH",
         "write the result, shrunk to 4096 bytes (default\n"
         "/dev/termination-log when it exists and is writable)",
         kOutputGroup);
}

void AddRemediateFlags(CLI::App& sub, RawArgs& raw) {
  Single(sub, "--config-file", raw.config_file, "PATH",
         "the kubelet config file (default: the kubelet's --config);\n"
         "created when given explicitly and missing",
         kKubeletGroup);
  Repeated(sub, "--flags-file", raw.flags_files, "PATH",
           "a file that sets kubelet flags (repeatable; default:\n"
           "detected systemd unit, drop-ins and env files)",
           kKubeletGroup);
  Repeated(sub, "--set", raw.sets, "FIELD=VALUE",
           "set a KubeletConfiguration field, FIELD in rule path syntax\n"
           "(evictionHard[\"memory.available\"], featureGates.X); VALUE is\n"
           "JSON when it parses, else a string, typed by the field catalog",
           kChangeGroup);
  Repeated(sub, "--file-mode", raw.modes, "PATH=MODE", "chmod (octal, e.g. 0600)", kChangeGroup);
  Repeated(sub, "--file-owner", raw.owners, "PATH=USER:GROUP",
           "chown (names from the node's /etc/passwd, /etc/group, or\n"
           "ids; either side may be empty to keep it)",
           kChangeGroup);
  sub.add_flag("--no-restart", raw.no_restart, "do not restart the kubelet")
      ->disable_flag_override()
      ->group(kRestartGroup);
  sub.add_option("--restart-command", raw.restart_placeholder,
                 "the command that restarts the kubelet, run without a shell;\n"
                 "takes every remaining argument, so it must come last\n"
                 "(default: nsenter --target 1 --mount --uts --ipc --net --pid\n"
                 "-- systemctl restart kubelet, preceded by systemctl\n"
                 "daemon-reload when a unit or drop-in changed). The kubelet is\n"
                 "restarted only when a config or flag changed.")
      ->type_name("ARG...")
      ->group(kRestartGroup);
}

std::unique_ptr<CLI::App> BuildApp(RawArgs& raw) {
  auto app = std::make_unique<CLI::App>(kDescription, kProgram);
  app->formatter(std::make_shared<AgentFormatter>());
  app->get_formatter()->column_width(34);
  app->require_subcommand(1);
  app->footer(kExitCodes);
  CLI::App* remediate =
      app->add_subcommand("remediate", "set kubelet config fields and flags, chmod/chown files\n");
  CLI::App* audit = app->add_subcommand("audit-files", "report the state of kubelet files\n");
  for (CLI::App* sub : {remediate, audit}) {
    sub->allow_extras();  // reported below in the words of the flag they name
    sub->footer(kExitCodes);
    AddNodeFlags(*sub, raw);
  }
  AddRemediateFlags(*remediate, raw);
  Repeated(*audit, "--file", raw.files, "PATH", "a file to report (repeatable)", kFilesGroup);
  for (CLI::App* sub : {remediate, audit}) AddOutputFlags(*sub, raw);
  return app;
}

struct SplitArgs {
  std::vector<std::string> for_cli;                         // in order
  std::optional<std::vector<std::string>> restart_command;  // --restart-command and what follows
};

// CLI11 would read an argument that begins with '-' as a flag, so --restart-command's arguments
// are split off first, walking the flags as CLI11 will (a flag that takes a value skips it).
// "--flag=" becomes "--flag" "" so that the empty value is not taken from the next argument.
SplitArgs SplitOffRestartCommand(const CLI::App& sub, const std::vector<std::string>& args) {
  std::set<std::string> takes_value;
  for (const CLI::Option* opt : sub.get_options()) {
    if (opt->get_items_expected_max() == 0) continue;  // a flag without a value
    for (const std::string& n : opt->get_lnames()) takes_value.insert("--" + n);
  }
  const bool has_restart = sub.get_option_no_throw("--restart-command") != nullptr;
  SplitArgs out;
  out.for_cli.push_back(args[0]);
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::string name = a.substr(0, a.find('='));
    if (has_restart && name == "--restart-command") {
      out.restart_command.emplace();
      if (a.size() > name.size()) out.restart_command->push_back(a.substr(name.size() + 1));
      out.restart_command->insert(out.restart_command->end(),
                                  args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (takes_value.count(name) > 0 && a.size() == name.size() + 1) {
      out.for_cli.insert(out.for_cli.end(), {name, ""});
      continue;
    }
    out.for_cli.push_back(a);
    if (takes_value.count(name) > 0 && a.size() == name.size() && i + 1 < args.size()) {
      out.for_cli.push_back(args[++i]);
    }
  }
  return out;
}

// FIELD=VALUE: the first '=' outside brackets and quotes.
size_t SetSeparator(const std::string& s) {
  bool quoted = false;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == '=' && depth == 0) return i;
  }
  return std::string::npos;
}

Status CheckNodePath(const std::string& flag, const std::string& path) {
  Status s = ValidateNodePath(path);
  if (!s.ok()) return InvalidArgument(flag + ": " + s.message());
  return Status::Ok();
}

StatusOr<ModeOp> ParseModeArg(const std::string& value) {
  size_t eq = value.rfind('=');
  if (eq == std::string::npos) return InvalidArgument("--file-mode " + value + ": want PATH=MODE");
  if (Status s = CheckNodePath("--file-mode", value.substr(0, eq)); !s.ok()) return s;
  auto mode = ParseMode(value.substr(eq + 1));
  if (!mode) return InvalidArgument("--file-mode " + value + ": MODE must be octal, e.g. 0600");
  return ModeOp{value.substr(0, eq), *mode};
}

StatusOr<OwnerOp> ParseOwnerArg(const std::string& value) {
  size_t eq = value.rfind('=');
  if (eq == std::string::npos) {
    return InvalidArgument("--file-owner " + value + ": want PATH=USER:GROUP");
  }
  if (Status s = CheckNodePath("--file-owner", value.substr(0, eq)); !s.ok()) return s;
  std::string who = value.substr(eq + 1);
  size_t colon = who.find(':');
  OwnerOp op{value.substr(0, eq), who.substr(0, colon),
             colon == std::string::npos ? "" : who.substr(colon + 1)};
  if (op.user.empty() && op.group.empty()) {
    return InvalidArgument("--file-owner " + value + ": want USER:GROUP");
  }
  return op;
}

// Each raw value through `parse` into `out`; the first error stops.
template <typename T, typename Parse>
Status TypeEach(const std::vector<std::string>& raw, std::vector<T>& out, Parse parse) {
  for (const std::string& v : raw) {
    auto typed = parse(v);
    if (!typed.ok()) return typed.status();
    out.push_back(std::move(*typed));
  }
  return Status::Ok();
}

Status CheckNodePaths(const std::string& flag, const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    if (Status s = CheckNodePath(flag, p); !s.ok()) return s;
  }
  return Status::Ok();
}

StatusOr<AgentOptions> TypeOptions(const CLI::App& sub, const RawArgs& raw,
                                   const std::optional<std::vector<std::string>>& restart) {
  AgentOptions o;
  o.command = sub.get_name();
  if (raw.host_root.empty()) return InvalidArgument("--host-root needs a directory");
  o.host_root = raw.host_root;
  o.proc_root = raw.proc_root;
  o.result_file = raw.result_file;
  if (sub.get_option("--termination-log")->count() > 0) o.termination_log = raw.termination_log;
  if (!raw.config_file.empty()) {
    if (Status s = CheckNodePath("--config-file", raw.config_file); !s.ok()) return s;
  }
  o.config_file = raw.config_file;
  if (Status s = CheckNodePaths("--flags-file", raw.flags_files); !s.ok()) return s;
  if (Status s = CheckNodePaths("--file", raw.files); !s.ok()) return s;
  o.flags_files = raw.flags_files;
  o.files = raw.files;
  if (Status s = TypeEach(raw.sets, o.sets, ParseSetArg); !s.ok()) return s;
  if (Status s = TypeEach(raw.modes, o.modes, ParseModeArg); !s.ok()) return s;
  if (Status s = TypeEach(raw.owners, o.owners, ParseOwnerArg); !s.ok()) return s;
  o.no_restart = raw.no_restart;
  if (restart) {
    if (restart->empty() || restart->front().empty()) {
      return InvalidArgument(
          "--restart-command needs a command (it takes every remaining argument)");
    }
    if (o.no_restart) {
      return InvalidArgument("--no-restart and --restart-command exclude each other");
    }
    o.restart_command = *restart;
  }
  return o;
}

// Arguments CLI11 left over: a flag the subcommand does not have, or a stray word.
Status ExtraArgument(const std::string& command, const std::vector<std::string>& extras) {
  const std::string& first = extras.front();
  if (first.rfind("--", 0) == 0) {
    return InvalidArgument("unknown flag " + first.substr(0, first.find('=')) + " for agent " +
                           command);
  }
  return InvalidArgument("unexpected argument \"" + first + "\"");
}

}  // namespace

StatusOr<SetOp> ParseSetArg(const std::string& value) {
  size_t eq = SetSeparator(value);
  if (eq == std::string::npos) return InvalidArgument("--set " + value + ": want FIELD=VALUE");
  auto path = policy::FieldPath::Parse(value.substr(0, eq));
  if (!path.ok()) return InvalidArgument("--set " + value + ": " + path.status().message());
  auto match = policy::LookupField(*path);
  if (!match) {
    return InvalidArgument("--set " + value + ": " + path->ToString() +
                           " is not a KubeletConfiguration field in the field catalog; the agent "
                           "does not write unknown fields (a kubelet refuses a config file with "
                           "one)");
  }
  if (match->map_key && match->field->flag_syntax != policy::FlagSyntax::kMap &&
      match->field->type != policy::ValueType::kMap) {
    return InvalidArgument("--set " + value + ": not a field");
  }
  auto typed = TypeSetValue(*path, std::string_view(value).substr(eq + 1));
  if (!typed.ok()) return InvalidArgument("--set " + value + ": " + typed.status().message());
  return SetOp{value, *path, *match, *typed};
}

StatusOr<AgentArgs> ParseAgentArgs(const std::vector<std::string>& args) {
  RawArgs raw;
  std::unique_ptr<CLI::App> app = BuildApp(raw);
  if (args.empty()) return InvalidArgument("missing subcommand (remediate or audit-files)");
  const std::string& command = args[0];
  if (command == "-h" || command == "--help" || command == "help") {
    return AgentArgs{HelpText{app->help("", CLI::AppFormatMode::All)}};
  }
  if (command != "remediate" && command != "audit-files") {
    return InvalidArgument("unknown subcommand \"" + command +
                           "\" (want remediate or audit-files)");
  }
  CLI::App* sub = app->get_subcommand(command);
  SplitArgs split = SplitOffRestartCommand(*sub, args);
  std::vector<std::string> reversed(split.for_cli.rbegin(), split.for_cli.rend());
  try {
    app->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return AgentArgs{HelpText{app->help("", CLI::AppFormatMode::All)}};
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(e.what());
  }
  if (!sub->remaining().empty()) return ExtraArgument(command, sub->remaining());
  auto options = TypeOptions(*sub, raw, split.restart_command);
  if (!options.ok()) return options.status();
  return AgentArgs{std::move(*options)};
}

}  // namespace kpc::agent
