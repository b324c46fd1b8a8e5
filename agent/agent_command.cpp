#include "agent/agent_command.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <variant>

#include "agent/args.h"
#include "agent/detect.h"
#include "agent/host_fs.h"
#include "agent/plan.h"
#include "agent/result.h"

namespace kpc::agent {
namespace {

using nlohmann::json;

// The restart command's exit code (128 + the signal when killed by one).
StatusOr<int> RunProgram(const std::vector<std::string>& argv) {
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Internal("fork: " + ErrnoText(errno));
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout carries the result JSON only
    ::execvp(cargs[0], cargs.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Internal("waitpid: " + ErrnoText(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return Internal("unexpected wait status " + std::to_string(status));
}

using ProgramRunner = std::function<StatusOr<int>(const std::vector<std::string>& argv)>;

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

RemediationRequest RequestOf(const AgentOptions& o) {
  RemediationRequest req;
  req.sets = o.sets;
  req.modes = o.modes;
  req.owners = o.owners;
  req.create_config_file = !o.config_file.empty();
  req.no_restart = o.no_restart;
  req.restart_command = o.restart_command;
  return req;
}

// Everything the planner looks at: the files it may edit, the files to chmod/chown, and the
// users and groups involved.
NodeSnapshot ReadNodeSnapshot(HostFs& fs, const RemediationRequest& req, const Detection& det) {
  NodeSnapshot node;
  if (!req.sets.empty()) {
    std::vector<std::string> paths;
    for (const auto& [file, flags] : det.file_flags) paths.push_back(file);
    if (!det.files.config_file.empty()) paths.push_back(det.files.config_file);
    paths.insert(paths.end(), det.config_dropins.begin(), det.config_dropins.end());
    for (const auto& p : paths) node.contents.emplace(p, fs.ReadFile(p));
  }
  for (const ModeOp& op : req.modes) node.facts[op.path] = fs.Facts(op.path);
  for (const OwnerOp& op : req.owners) {
    const policy::FileFacts& f = node.facts[op.path] = fs.Facts(op.path);
    node.user_names[f.uid] = fs.UserName(f.uid);
    node.group_names[f.gid] = fs.GroupName(f.gid);
    if (!op.user.empty()) {
      auto uid = node.user_ids[op.user] = fs.LookupUser(op.user);
      if (uid) node.user_names[*uid] = fs.UserName(*uid);
    }
    if (!op.group.empty()) {
      auto gid = node.group_ids[op.group] = fs.LookupGroup(op.group);
      if (gid) node.group_names[*gid] = fs.GroupName(*gid);
    }
  }
  return node;
}

// What the actions achieved so far.
struct Progress {
  bool wrote = false;       // a file was written
  bool wrote_unit = false;  // a systemd unit or drop-in was written
};

void Apply(const EditFile& e, HostFs& fs, AgentResult& r, Progress& p, std::ostream& err) {
  Status s = fs.WriteFileAtomic(e.path, e.content, e.backup);
  if (!s.ok()) {
    r.errors.push_back(s.message());
    for (size_t i : e.changes) r.changes[i].changed = false;
    return;
  }
  err << "agent: wrote " << e.path
      << (e.backup ? " (backup " + e.path + std::string(kBackupSuffix) + ")" : " (new)") << "\n";
  p.wrote = true;
  p.wrote_unit = p.wrote_unit || e.unit;
}

void Apply(const Chmod& c, HostFs& fs, AgentResult& r) {
  Status s = fs.Chmod(c.path, c.mode);
  if (s.ok()) return;
  r.errors.push_back(s.message());
  r.changes[c.change].changed = false;
}

void Apply(const Chown& c, HostFs& fs, AgentResult& r) {
  Status s = fs.Chown(c.path, c.uid, c.gid);
  if (s.ok()) return;
  r.errors.push_back(s.message());
  r.changes[c.change].changed = false;
}

void Apply(const RestartKubelet& restart, const Progress& p, const ProgramRunner& run,
           AgentResult& r, std::ostream& err) {
  if (!p.wrote) return;
  std::vector<std::vector<std::string>> commands;
  if (!restart.daemon_reload.empty() && p.wrote_unit) commands.push_back(restart.daemon_reload);
  commands.push_back(restart.argv);
  for (const auto& argv : commands) {
    err << "agent: running " << Join(argv) << "\n";
    StatusOr<int> rc = run(argv);
    if (!rc.ok() || *rc != 0) {
      r.errors.push_back("restart command \"" + Join(argv) + "\" " +
                         (!rc.ok()     ? "failed: " + rc.status().message()
                          : *rc == 127 ? "could not be run (exit 127: not found?)"
                                       : "exited with " + std::to_string(*rc)));
      return;
    }
  }
  r.restarted = true;
}

// Carries out `plan` in order; the files' state is recorded before the kubelet restarts.
void ApplyPlan(const AgentPlan& plan, HostFs& fs, const ProgramRunner& run, AgentResult& r,
               std::ostream& err) {
  r.changes = plan.changes;
  r.errors = plan.errors;
  r.blocked = plan.blocked;
  if (!plan.blocked && !plan.errors.empty()) {
    err << "agent: nothing changed: " << plan.errors.front() << "\n";
  }
  Progress progress;
  const RestartKubelet* restart = nullptr;
  for (const PlanAction& action : plan.actions) {
    if (const auto* e = std::get_if<EditFile>(&action)) Apply(*e, fs, r, progress, err);
    if (const auto* c = std::get_if<Chmod>(&action)) Apply(*c, fs, r);
    if (const auto* c = std::get_if<Chown>(&action)) Apply(*c, fs, r);
    if (const auto* k = std::get_if<RestartKubelet>(&action)) restart = k;
  }
  for (const auto& path : plan.report_files) r.files[path] = fs.Facts(path);
  if (restart != nullptr) Apply(*restart, progress, run, r, err);
}

void AuditFiles(const AgentOptions& o, HostFs& fs, const Detection& det, AgentResult& r) {
  std::vector<std::string> paths = o.files;
  if (!det.files.config_file.empty()) paths.push_back(det.files.config_file);
  if (!det.files.kubeconfig.empty()) paths.push_back(det.files.kubeconfig);
  paths.insert(paths.end(), det.files.service_files.begin(), det.files.service_files.end());
  paths.insert(paths.end(), det.files.flags_files.begin(), det.files.flags_files.end());
  for (const auto& p : paths) r.files[p] = fs.Facts(p);
}

void WriteOutputs(const AgentOptions& o, const AgentResult& r, std::ostream& out,
                  std::ostream& err) {
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

int UsageError(std::ostream& err, const std::string& message) {
  err << "error: " << message << "\nRun 'kubelet-policy-controller agent --help' for usage.\n";
  return kExitUsage;
}

}  // namespace

int RunAgent(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = ParseAgentArgs(args);
  if (!parsed.ok()) return UsageError(err, parsed.status().message());
  if (const auto* help = std::get_if<HelpText>(&*parsed)) {
    out << help->text;
    return kExitOk;
  }
  const AgentOptions& o = std::get<AgentOptions>(*parsed);
  struct stat st {};
  if (::stat(o.host_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return UsageError(err, "--host-root " + o.host_root + ": not a directory");
  }
  HostFs fs(o.host_root);
  DetectOptions dopts;
  dopts.proc_root = o.proc_root;
  dopts.flags_files = o.flags_files;
  dopts.config_file = o.config_file;
  StatusOr<Detection> detected = DetectKubelet(fs, dopts);
  AgentResult r;
  r.command = o.command;
  if (!detected.ok()) {
    // Nothing is read or changed on a node whose kubelet is ambiguous.
    err << "agent: " << detected.status().message() << "\n";
    r.errors.push_back(detected.status().message());
    WriteOutputs(o, r, out, err);
    return ExitCodeOf(r);
  }
  const Detection& det = *detected;
  for (const auto& w : det.warnings) err << "agent: warning: " << w << "\n";
  r.kubelet = det.files;
  if (o.command == "remediate") {
    const RemediationRequest req = RequestOf(o);
    const AgentPlan plan = PlanAgentRemediation(req, det, ReadNodeSnapshot(fs, req, det));
    ApplyPlan(plan, fs, RunProgram, r, err);
  } else {
    AuditFiles(o, fs, det, r);
  }
  r.ok = r.errors.empty() && !r.blocked;
  WriteOutputs(o, r, out, err);
  return ExitCodeOf(r);
}

}  // namespace kpc::agent
