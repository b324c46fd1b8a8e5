#include "agent/agent_command.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "agent/config_edit.h"
#include "agent/detect.h"
#include "agent/flags_edit.h"
#include "agent/host_fs.h"
#include "agent/result.h"
#include "policy/catalog.h"
#include "policy/evaluate.h"
#include "policy/field_path.h"

namespace kpc::agent {
namespace {

using nlohmann::json;
using policy::FieldPath;

constexpr const char* kUsage = R"(Usage:
  kubelet-policy-controller agent remediate --host-root DIR
      [--config-file PATH] [--flags-file PATH]...
      [--set FIELD=VALUE]... [--file-mode PATH=MODE]... [--file-owner PATH=USER:GROUP]...
      [--result-file PATH] [--termination-log PATH] [--proc-root DIR]
      [--no-restart | --restart-command ARG...]
  kubelet-policy-controller agent audit-files --host-root DIR [--file PATH]...
      [--result-file PATH] [--termination-log PATH] [--proc-root DIR]

Runs on one node (in a Job with the node's / mounted at --host-root and hostPID). Paths are
as seen on the node. Prints an AgentResult (JSON) on stdout.

  --host-root DIR          where the node's root filesystem is mounted (required)
  --config-file PATH       the kubelet config file (default: the kubelet's --config); created
                           when given explicitly and missing
  --flags-file PATH        a file that sets kubelet flags (repeatable; default: detected
                           systemd unit, drop-ins and env files)
  --set FIELD=VALUE        set a KubeletConfiguration field, FIELD in rule path syntax
                           (evictionHard["memory.available"], featureGates.X); VALUE is JSON
                           when it parses, else a string, typed by the field catalog
  --file-mode PATH=MODE    chmod (octal, e.g. 0600)
  --file-owner PATH=USER:GROUP   chown (names from the node's /etc/passwd, /etc/group, or ids;
                           either side may be empty to keep it)
  --file PATH              (audit-files) a file to report (repeatable)
  --no-restart             do not restart the kubelet
  --restart-command ARG... the command that restarts the kubelet, run without a shell; takes
                           every remaining argument, so it must come last (default:
                           nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl
                           restart kubelet, preceded by systemctl daemon-reload when a unit or
                           drop-in changed). The kubelet is restarted only when a config or flag
                           changed.
  --result-file PATH       also write the full result there
  --termination-log PATH   write the result, shrunk to 4096 bytes (default /dev/termination-log
                           when it exists and is writable)
  --proc-root DIR          where to look for the kubelet process (default /proc)

Exit codes: 0 everything in place, 1 something failed (see "errors"), 2 bad usage,
3 blocked (e.g. FlagOverride: a flag only on the kubelet's command line).
)";

const std::vector<std::string> kNsenter = {"nsenter", "--target", "1",     "--mount", "--uts",
                                           "--ipc",   "--net",    "--pid", "--"};

struct SetOp {
  std::string text;  // as given
  FieldPath path;
  policy::FieldMatch match;
  json value;
};

struct ModeOp {
  std::string path;
  uint32_t mode = 0;
};

struct OwnerOp {
  std::string path;
  std::string user, group;
};

struct Options {
  std::string command;
  std::string host_root;
  std::string config_file;
  std::vector<std::string> flags_files;
  std::vector<SetOp> sets;
  std::vector<ModeOp> modes;
  std::vector<OwnerOp> owners;
  std::vector<std::string> files;
  bool no_restart = false;
  std::vector<std::string> restart_command;
  std::string result_file;
  std::optional<std::string> termination_log;
  std::string proc_root = "/proc";
};

struct UsageError {
  std::string message;
};

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

std::optional<UsageError> ParseArgs(const std::vector<std::string>& args, Options& o, bool& help) {
  if (args.empty()) return UsageError{"missing subcommand (remediate or audit-files)"};
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    help = true;
    return std::nullopt;
  }
  o.command = args[0];
  if (o.command != "remediate" && o.command != "audit-files") {
    return UsageError{"unknown subcommand \"" + o.command + "\" (want remediate or audit-files)"};
  }
  const bool remediate = o.command == "remediate";
  bool restart_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "--help") {
      help = true;
      return std::nullopt;
    }
    if (a.rfind("--", 0) != 0) return UsageError{"unexpected argument \"" + a + "\""};
    std::string name = a, value;
    bool has_value = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (name == "--no-restart" && remediate) {
      if (has_value) return UsageError{"--no-restart takes no value"};
      o.no_restart = true;
      continue;
    }
    if (name == "--restart-command" && remediate) {
      if (has_value) o.restart_command.push_back(value);
      o.restart_command.insert(o.restart_command.end(),
                               args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      if (o.restart_command.empty() || o.restart_command[0].empty()) {
        return UsageError{"--restart-command needs a command (it takes every remaining argument)"};
      }
      restart_given = true;
      break;
    }
    static const std::set<std::string> kCommon = {"--host-root", "--result-file",
                                                  "--termination-log", "--proc-root"};
    static const std::set<std::string> kRemediate = {"--config-file", "--flags-file", "--set",
                                                     "--file-mode", "--file-owner"};
    static const std::set<std::string> kAudit = {"--file"};
    bool known = kCommon.count(name) > 0 ||
                 (remediate ? kRemediate.count(name) > 0 : kAudit.count(name) > 0);
    if (!known) return UsageError{"unknown flag " + name + " for agent " + o.command};
    if (!has_value) {
      if (i + 1 >= args.size()) return UsageError{name + " needs a value"};
      value = args[++i];
    }
    auto node_path = [&](const std::string& flag,
                         const std::string& p) -> std::optional<UsageError> {
      Status s = ValidateNodePath(p);
      if (!s.ok()) return UsageError{flag + ": " + s.message()};
      return std::nullopt;
    };
    if (name == "--host-root") {
      if (value.empty()) return UsageError{"--host-root needs a directory"};
      o.host_root = value;
    } else if (name == "--result-file") {
      o.result_file = value;
    } else if (name == "--termination-log") {
      o.termination_log = value;
    } else if (name == "--proc-root") {
      o.proc_root = value;
    } else if (name == "--config-file") {
      if (auto e = node_path(name, value)) return e;
      o.config_file = value;
    } else if (name == "--flags-file") {
      if (auto e = node_path(name, value)) return e;
      o.flags_files.push_back(value);
    } else if (name == "--file") {
      if (auto e = node_path(name, value)) return e;
      o.files.push_back(value);
    } else if (name == "--set") {
      size_t eq = SetSeparator(value);
      if (eq == std::string::npos) return UsageError{"--set " + value + ": want FIELD=VALUE"};
      auto path = FieldPath::Parse(value.substr(0, eq));
      if (!path.ok()) return UsageError{"--set " + value + ": " + path.status().message()};
      auto match = policy::LookupField(*path);
      if (!match) {
        return UsageError{
            "--set " + value + ": " + path->ToString() +
            " is not a KubeletConfiguration field in the field catalog; the agent does "
            "not write unknown fields (a kubelet refuses a config file with one)"};
      }
      if (match->map_key && match->field->flag_syntax != policy::FlagSyntax::kMap &&
          match->field->type != policy::ValueType::kMap) {
        return UsageError{"--set " + value + ": not a field"};
      }
      auto typed = TypeSetValue(*path, std::string_view(value).substr(eq + 1));
      if (!typed.ok()) return UsageError{"--set " + value + ": " + typed.status().message()};
      o.sets.push_back(SetOp{value, *path, *match, *typed});
    } else if (name == "--file-mode") {
      size_t eq = value.rfind('=');
      if (eq == std::string::npos) return UsageError{"--file-mode " + value + ": want PATH=MODE"};
      if (auto e = node_path(name, value.substr(0, eq))) return e;
      auto mode = ParseMode(value.substr(eq + 1));
      if (!mode) return UsageError{"--file-mode " + value + ": MODE must be octal, e.g. 0600"};
      o.modes.push_back(ModeOp{value.substr(0, eq), *mode});
    } else if (name == "--file-owner") {
      size_t eq = value.rfind('=');
      if (eq == std::string::npos)
        return UsageError{"--file-owner " + value + ": want PATH=USER:GROUP"};
      if (auto e = node_path(name, value.substr(0, eq))) return e;
      std::string who = value.substr(eq + 1);
      size_t colon = who.find(':');
      OwnerOp op{value.substr(0, eq), who.substr(0, colon),
                 colon == std::string::npos ? "" : who.substr(colon + 1)};
      if (op.user.empty() && op.group.empty())
        return UsageError{"--file-owner " + value + ": want USER:GROUP"};
      o.owners.push_back(std::move(op));
    }
  }
  if (o.host_root.empty()) return UsageError{"--host-root is required"};
  if (restart_given && o.no_restart)
    return UsageError{"--no-restart and --restart-command exclude each other"};
  struct stat st {};
  if (::stat(o.host_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return UsageError{"--host-root " + o.host_root + ": not a directory"};
  }
  return std::nullopt;
}

int RunProgram(const std::vector<std::string>& argv, std::string& error) {
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    error = "fork: " + ErrnoText(errno);
    return -1;
  }
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout carries the result JSON only
    ::execvp(cargs[0], cargs.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      error = "waitpid: " + ErrnoText(errno);
      return -1;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string OwnerDisplay(HostFs& fs, uint32_t uid, uint32_t gid) {
  std::string u = fs.UserName(uid), g = fs.GroupName(gid);
  return (u.empty() ? std::to_string(uid) : u) + ":" + (g.empty() ? std::to_string(gid) : g);
}

// A file being edited: its content as read and as it will be written.
struct Edited {
  bool exists = false;
  std::string original;
  std::string text;
  bool is_unit = false;         // a systemd unit or drop-in (needs daemon-reload)
  std::vector<size_t> changes;  // indexes into AgentResult::changes
};

void Remediate(const Options& o, HostFs& fs, const Detection& det, AgentResult& r,
               std::ostream& err) {
  // --- plan: nothing is written until every step is known to be possible ---
  std::map<std::string, Edited> edits;
  std::set<std::string> service(det.files.service_files.begin(), det.files.service_files.end());
  auto load = [&](const std::string& path) -> Edited* {
    auto it = edits.find(path);
    if (it != edits.end()) return &it->second;
    Edited e;
    auto text = fs.ReadFile(path);
    if (!text.ok()) {
      if (text.status().code() != StatusCode::kNotFound) {
        r.errors.push_back(text.status().message());
        return nullptr;
      }
    } else {
      e.exists = true;
      e.original = e.text = *text;
    }
    e.is_unit = service.count(path) > 0;
    return &edits.emplace(path, std::move(e)).first->second;
  };

  std::vector<std::string> blocked;
  for (const SetOp& s : o.sets) {
    bool in_files = false;
    for (const auto& [file, flags] : det.file_flags)
      in_files = in_files || FlagsOverrideField(flags, s.match);
    // A flag only on the running kubelet's command line overrides whatever the agent writes,
    // unless it already gives the wanted value.
    std::optional<json> running = det.pid ? FlagsValue(det.process_flags, s.match) : std::nullopt;
    bool overrides = det.pid && FlagsOverrideField(det.process_flags, s.match);
    if (overrides && !in_files && !(running && TypedEqual(*running, s.value, s.match.type))) {
      blocked.push_back(s.path.ToString() + " is overridden by the kubelet flag --" +
                        s.match.field->flag + " on the running kubelet's command line (pid " +
                        std::to_string(*det.pid) +
                        "), and no flags file the agent can edit sets it");
    }
  }
  if (!blocked.empty()) {
    std::string msg;
    for (const auto& b : blocked) msg += (msg.empty() ? "" : "; ") + b;
    r.blocked = Blocked{"FlagOverride", msg +
                                            "; remove the flag where the kubelet's command line is "
                                            "defined, then remediate again"};
    return;
  }

  std::vector<std::string> unfixable;  // flags the agent cannot rewrite: FlagOverride
  const std::string& config = det.files.config_file;
  for (const SetOp& s : o.sets) {
    bool in_files = false;
    for (const auto& [file, flags] : det.file_flags) {
      if (!FlagsOverrideField(flags, s.match)) continue;
      in_files = true;
      Edited* e = load(file);
      if (e == nullptr) continue;
      auto fe = SetFlagInFile(e->text, file, s.match, s.value);
      if (!fe.ok()) {
        // The flag overrides the file and cannot be rewritten safely: retrying will not help.
        if (fe.status().code() == StatusCode::kInvalidArgument) {
          unfixable.push_back(fe.status().message());
        } else {
          r.errors.push_back(fe.status().message());
        }
        continue;
      }
      e->text = fe->text;
      Change c;
      c.kind = "flag";
      c.field = s.path.ToString();
      c.flag = s.match.field->flag;
      c.file = file;
      c.from = fe->from;
      c.to = fe->to;
      c.changed = fe->changed;
      e->changes.push_back(r.changes.size());
      r.changes.push_back(std::move(c));
    }
    if (config.empty()) {
      if (!in_files) {
        r.errors.push_back(
            "cannot set " + s.path.ToString() +
            ": the kubelet has no config file (no --config found); pass --config-file");
      }
      continue;
    }
    Edited* e = load(config);
    if (e == nullptr) continue;
    std::string note;
    if (!e->exists && e->text.empty()) {
      if (o.config_file.empty()) {
        r.errors.push_back(
            "the kubelet config file " + config +
            " (from the kubelet's --config) does not exist; pass --config-file to create it");
        continue;
      }
      e->text = NewConfigFileContent(DetectConfigFormat("", config));
      note = "file created";
    }
    // The edit of one config file, applied to its buffer and recorded as a change.
    auto record_config_edit = [&](Edited* target, const std::string& file, const auto& edit,
                                  const std::string& change_note) {
      target->text = edit.text;
      Change c;
      c.kind = "config";
      c.field = s.path.ToString();
      c.file = file;
      if (edit.from) c.from = policy::DisplayValue(*edit.from);
      c.to = policy::DisplayValue(s.value);
      c.changed = edit.changed;
      c.note = change_note;
      target->changes.push_back(r.changes.size());
      r.changes.push_back(std::move(c));
    };
    // Drop-ins of --config-dir are applied over the config file: one that sets the field would
    // override the value written there, so it gets the value too.
    for (const std::string& dropin : det.config_dropins) {
      Edited* d = load(dropin);
      if (d == nullptr || !d->exists) continue;
      auto parsed = policy::ParseKubeletConfigFile(d->text, dropin);
      if (!parsed.ok()) {
        r.errors.push_back(parsed.status().message());
        continue;
      }
      if (s.path.Find(*parsed) == nullptr) continue;
      auto de = SetConfigField(d->text, dropin, s.path, s.value, s.match.type);
      if (!de.ok()) {
        r.errors.push_back(de.status().message());
        continue;
      }
      record_config_edit(d, dropin, *de, de->note);
    }
    auto ce = SetConfigField(e->text, config, s.path, s.value, s.match.type);
    if (!ce.ok()) {
      r.errors.push_back(ce.status().message());
      continue;
    }
    record_config_edit(e, config, *ce, note.empty() ? ce->note : (ce->note.empty() ? note : note + "; " + ce->note));
  }

  struct OwnerPlan {
    std::string path;
    uid_t uid;
    gid_t gid;
  };
  std::vector<OwnerPlan> owner_plans;
  for (const OwnerOp& op : o.owners) {
    auto facts = fs.Facts(op.path);
    if (!facts.error.empty()) {
      r.errors.push_back(op.path + ": " + facts.error);
      continue;
    }
    if (!facts.exists) {
      r.errors.push_back("cannot chown " + op.path + ": it does not exist");
      continue;
    }
    OwnerPlan p{op.path, facts.uid, facts.gid};
    if (!op.user.empty()) {
      auto uid = fs.LookupUser(op.user);
      if (!uid) {
        r.errors.push_back("cannot chown " + op.path + ": no user \"" + op.user +
                           "\" in the node's /etc/passwd");
        continue;
      }
      p.uid = *uid;
    }
    if (!op.group.empty()) {
      auto gid = fs.LookupGroup(op.group);
      if (!gid) {
        r.errors.push_back("cannot chown " + op.path + ": no group \"" + op.group +
                           "\" in the node's /etc/group");
        continue;
      }
      p.gid = *gid;
    }
    owner_plans.push_back(p);
  }
  for (const ModeOp& op : o.modes) {
    auto facts = fs.Facts(op.path);
    if (!facts.error.empty()) {
      r.errors.push_back(op.path + ": " + facts.error);
    } else if (!facts.exists) {
      r.errors.push_back("cannot chmod " + op.path + ": it does not exist");
    }
  }
  for (const auto& [path, e] : edits) r.files[path] = fs.Facts(path);
  if (!unfixable.empty()) {
    std::string msg;
    for (const auto& u : unfixable) msg += (msg.empty() ? "" : "; ") + u;
    r.blocked = Blocked{"FlagOverride", msg};
    for (Change& c : r.changes) c.changed = false;  // nothing was written
    return;
  }
  if (!r.errors.empty()) {
    for (Change& c : r.changes) c.changed = false;  // nothing was written
    err << "agent: nothing changed: " << r.errors.front() << "\n";
    return;
  }

  // --- apply ---
  bool kubelet_changed = false, units_changed = false;
  for (auto& [path, e] : edits) {
    if (e.exists && e.text == e.original) continue;
    Status s = fs.WriteFileAtomic(path, e.text, /*backup=*/e.exists);
    if (!s.ok()) {
      r.errors.push_back(s.message());
      for (size_t i : e.changes) r.changes[i].changed = false;
      continue;
    }
    err << "agent: wrote " << path
        << (e.exists ? " (backup " + path + std::string(kBackupSuffix) + ")" : " (new)") << "\n";
    kubelet_changed = true;
    units_changed = units_changed || e.is_unit;
  }
  for (const ModeOp& op : o.modes) {
    auto facts = fs.Facts(op.path);
    Change c;
    c.kind = "mode";
    c.path = op.path;
    c.from = FormatMode(facts.mode);
    c.to = FormatMode(op.mode);
    if (facts.mode != op.mode) {
      Status s = fs.Chmod(op.path, op.mode);
      if (s.ok()) {
        c.changed = true;
      } else {
        r.errors.push_back(s.message());
      }
    }
    r.changes.push_back(std::move(c));
  }
  for (const OwnerPlan& p : owner_plans) {
    auto facts = fs.Facts(p.path);
    Change c;
    c.kind = "owner";
    c.path = p.path;
    c.from = OwnerDisplay(fs, facts.uid, facts.gid);
    c.to = OwnerDisplay(fs, p.uid, p.gid);
    if (facts.uid != p.uid || facts.gid != p.gid) {
      Status s = fs.Chown(p.path, p.uid, p.gid);
      if (s.ok()) {
        c.changed = true;
      } else {
        r.errors.push_back(s.message());
      }
    }
    r.changes.push_back(std::move(c));
  }
  for (const ModeOp& op : o.modes) r.files[op.path] = fs.Facts(op.path);
  for (const OwnerPlan& p : owner_plans) r.files[p.path] = fs.Facts(p.path);
  for (const auto& [path, e] : edits) r.files[path] = fs.Facts(path);

  // --- restart ---
  if (!kubelet_changed || o.no_restart) return;
  std::vector<std::vector<std::string>> commands;
  if (!o.restart_command.empty()) {
    commands.push_back(o.restart_command);
  } else {
    if (units_changed) {
      auto reload = kNsenter;
      reload.insert(reload.end(), {"systemctl", "daemon-reload"});
      commands.push_back(reload);
    }
    auto restart = kNsenter;
    restart.insert(restart.end(), {"systemctl", "restart", "kubelet"});
    commands.push_back(restart);
  }
  for (const auto& argv : commands) {
    err << "agent: running " << Join(argv) << "\n";
    std::string error;
    int rc = RunProgram(argv, error);
    if (rc != 0) {
      r.errors.push_back("restart command \"" + Join(argv) + "\" " +
                         (rc < 0      ? "failed: " + error
                          : rc == 127 ? "could not be run (exit 127: not found?)"
                                      : "exited with " + std::to_string(rc)));
      return;
    }
  }
  r.restarted = true;
}

void AuditFiles(const Options& o, HostFs& fs, const Detection& det, AgentResult& r) {
  std::vector<std::string> paths = o.files;
  if (!det.files.config_file.empty()) paths.push_back(det.files.config_file);
  if (!det.files.kubeconfig.empty()) paths.push_back(det.files.kubeconfig);
  paths.insert(paths.end(), det.files.service_files.begin(), det.files.service_files.end());
  paths.insert(paths.end(), det.files.flags_files.begin(), det.files.flags_files.end());
  for (const auto& p : paths) r.files[p] = fs.Facts(p);
}

void WriteOutputs(const Options& o, const AgentResult& r, std::ostream& out, std::ostream& err) {
  const json full = ToJson(r);
  out << full.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  out.flush();
  if (!o.result_file.empty()) {
    std::ofstream f(o.result_file, std::ios::trunc);
    f << full.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    if (!f) err << "agent: cannot write --result-file " << o.result_file << "\n";
  }
  std::string log = o.termination_log.value_or("/dev/termination-log");
  if (!o.termination_log && ::access(log.c_str(), W_OK) != 0)
    return;  // not in a pod: skip silently
  std::ofstream f(log, std::ios::trunc);
  f << FitToLimit(r, 4096);
  if (!f) err << "agent: cannot write the termination log " << log << "\n";
}

}  // namespace

int RunAgent(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Options o;
  bool help = false;
  if (auto e = ParseArgs(args, o, help)) {
    err << "error: " << e->message << "\nRun 'kubelet-policy-controller agent --help' for usage.\n";
    return kExitUsage;
  }
  if (help) {
    out << kUsage;
    return kExitOk;
  }
  HostFs fs(o.host_root);
  DetectOptions dopts;
  dopts.proc_root = o.proc_root;
  dopts.flags_files = o.flags_files;
  dopts.config_file = o.config_file;
  Detection det = DetectKubelet(fs, dopts);
  for (const auto& w : det.warnings) err << "agent: warning: " << w << "\n";
  AgentResult r;
  r.command = o.command;
  r.kubelet = det.files;
  if (o.command == "remediate") {
    Remediate(o, fs, det, r, err);
  } else {
    AuditFiles(o, fs, det, r);
  }
  r.ok = r.errors.empty() && !r.blocked;
  WriteOutputs(o, r, out, err);
  return ExitCodeOf(r);
}

}  // namespace kpc::agent
